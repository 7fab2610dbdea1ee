"""Helpers for testing with pytest-phyjudge on a CPU: a tiny test judge and synthetic clips.

The tiny judge has the real PhyJudge layout (a Qwen3.5 base folder, a LoRA adapter folder with
``adapter_config.json``, ``subq+human.yaml`` and ``infer.py``), so the real loading path runs
end to end in seconds. Its weights are random, or (``ensure_tiny_judge``, the default for
``--phyjudge-judge tiny``) trained only to reply in PhyJudge's format: ITS SCORES ARE
MEANINGLESS. Use it for dry runs of suites and for testing the plumbing, never to judge a
video. It needs the ``[local]`` extra; the clips need only the core install.
"""

from __future__ import annotations

from pytest_phyjudge.testing.clips import write_mp4, write_test_video
from pytest_phyjudge.testing.tiny import build_tiny_judge, ensure_tiny_judge, load_tiny_judge

__all__ = [
    "build_tiny_judge",
    "ensure_tiny_judge",
    "load_tiny_judge",
    "write_mp4",
    "write_test_video",
]
