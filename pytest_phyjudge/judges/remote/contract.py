"""What a judge server and its clients agree on: the name the judge is served under, where
the API key comes from, and the file that says which judge a merged checkpoint is.

The remote judge reads these and the deployment tools (``pytest_phyjudge.deploy``) write
them; they live here, on the client's side, so that the judges never import deploy/.
"""

from __future__ import annotations

#: The name the judge is served under (vLLM's ``--served-model-name``, and ``phyjudge serve``'s).
SERVED_MODEL_NAME = "phyjudge"
#: The servers' API key (vLLM's --api-key), read from the environment, never from a flag.
API_KEY_ENV = "PHYJUDGE_API_KEY"
#: Written by ``phyjudge merge`` beside the merged weights: the adapter, its revision and
#: sha256, and the base; a server's clients read it to name the judge they talk to.
PROVENANCE_FILE = "phyjudge_provenance.json"
