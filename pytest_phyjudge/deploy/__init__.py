"""Deployment tools, for the machine that serves the judge rather than the one that judges:
``phyjudge merge`` (the LoRA folded into its base), the ``vllm serve`` lines for the merged
checkpoint, and ``phyjudge serve`` (the in-process judge behind a small OpenAI-compatible
server). They use the judges; the judges never import them."""
