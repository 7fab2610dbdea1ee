"""Helpers for testing with pytest-phyjudge on a CPU: synthetic clips, and the tiny judge.

The tiny judge is a product feature (``pytest_phyjudge.judges.tiny``, behind
``--phyjudge-judge tiny``); its builder and loader are re-exported here, where tests have
always found them. Its weights are random (``build_tiny_judge``), or (``ensure_tiny_judge``,
the default for ``--phyjudge-judge tiny``) trained only to reply in PhyJudge's format: ITS
SCORES ARE MEANINGLESS. It needs the ``[local]`` extra; the clips need only the core install.
"""

from __future__ import annotations

from pytest_phyjudge.judges.tiny.build import build_tiny_judge, ensure_tiny_judge, load_tiny_judge
from pytest_phyjudge.testing.clips import write_mp4, write_test_video

__all__ = [
    "build_tiny_judge",
    "ensure_tiny_judge",
    "load_tiny_judge",
    "write_mp4",
    "write_test_video",
]
