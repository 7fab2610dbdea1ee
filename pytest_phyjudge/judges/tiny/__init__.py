"""The tiny judge, the CPU dry run behind ``--phyjudge-judge tiny`` and ``--judge tiny``: a
small model of PhyJudge's real layout (a Qwen3.5 base folder, a LoRA adapter folder with
``adapter_config.json``, ``subq+human.yaml`` and ``infer.py``), so the real loading and
scoring path runs end to end in seconds. Trained only to reply in PhyJudge's format
(``training/``): ITS SCORES ARE MEANINGLESS. Use it for dry runs of suites and for testing
the plumbing, never to judge a video. Building it needs the ``[local]`` extra.

One entry point, ``ensure_tiny_judge(folder)``: the adapter folder, built once per machine
under the recipe's build key (``recipe.py``) and copied into ``folder``.
"""

from __future__ import annotations

from pytest_phyjudge.judges.tiny.build import ensure_tiny_judge, machine_folder

__all__ = ["ensure_tiny_judge", "machine_folder"]
