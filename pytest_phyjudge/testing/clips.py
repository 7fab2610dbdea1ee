"""Synthetic clips for tests, written with ``write_mp4`` (engine/mp4.py: PyAV, no ffmpeg
binary), which is re-exported here for the tests that write their own frames."""

from __future__ import annotations

from pathlib import Path

from pytest_phyjudge.engine.mp4 import DEFAULT_CRF, write_mp4

__all__ = ["DEFAULT_CRF", "write_mp4", "write_test_video"]


def write_test_video(
    path: str | Path,
    *,
    frames: int = 12,
    fps: int = 6,
    size: tuple[int, int] = (64, 64),
    seed: int = 0,
) -> Path:
    """Write a small H.264 mp4 of a square moving across a noisy background (for tests)."""
    import numpy as np

    width, height = size
    rng = np.random.default_rng(seed)
    clip = rng.integers(0, 60, size=(frames, height, width, 3), dtype=np.uint8)
    side = max(4, min(width, height) // 5)
    for i in range(frames):
        x = int((width - side) * i / max(frames - 1, 1))
        y = height // 2 - side // 2
        clip[i, y : y + side, x : x + side] = (230, 80, 40)
    return write_mp4(path, clip, fps=fps)
