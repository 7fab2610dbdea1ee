"""How many CPU threads torch should use for the judge on a small CI runner: the same 16-axis
judgment of one clip with each thread count, on a quiet machine and beside busy processes.

Prints the median wall seconds per thread count and load, and the ratio against torch's
default. It is a script that prints figures, not a test:

    python benchmarks/bench_threads.py                      # tiny judge, the PhyGround clip
    python benchmarks/bench_threads.py --shape medium --busy 0 1 2

Every model here has random weights: the figures measure cost, never quality.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_axes import CAPTION, DEFAULT_CLIP, SHAPES, _tiny_like

#: A process that keeps one core busy, as a neighbouring CI job would.
_BUSY_LOOP = "while True: pass"


def _median_seconds(judge: object, clip: Path, axes: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        judge.score_many(clip, CAPTION, axes)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _with_busy(count: int, measure: object) -> float:
    """``measure()`` while ``count`` busy loops run beside it."""
    loops = [subprocess.Popen([sys.executable, "-c", _BUSY_LOOP]) for _ in range(count)]
    try:
        time.sleep(0.5 if loops else 0)
        return measure()  # type: ignore[operator]
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--video", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="busy loops beside")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    args = parser.parse_args(argv)

    import torch

    from pytest_phyjudge.engine.axes import ALL_AXES

    if not args.video.is_file():
        print(f"no clip at {args.video}; pass --video PATH", file=sys.stderr)
        return 2
    default = torch.get_num_threads()
    hidden, layers = SHAPES[args.shape]
    judge = _tiny_like(args.shape, hidden, layers, "cpu")
    judge.config = dataclasses.replace(judge.config, max_new_tokens=args.max_new_tokens)
    axes = list(ALL_AXES)
    judge.score_many(args.video, CAPTION, axes)  # warm up, and decode the clip once
    print(f"shape {args.shape}, {os.cpu_count()} cores, torch default {default} threads, "
          f"load average {os.getloadavg()[0]:.1f} before the runs")  # fmt: skip
    print(f"{'busy':>4} {'threads':>7} {'seconds':>8} {'vs default':>10}")
    for busy in args.busy:
        figures = {}
        for threads in sorted({default, *args.threads}):
            torch.set_num_threads(threads)
            figures[threads] = _with_busy(
                busy, lambda: _median_seconds(judge, args.video, axes, args.runs)
            )
        for threads, seconds in figures.items():
            ratio = figures[default] / seconds
            print(f"{busy:>4} {threads:>7} {seconds:>8.2f} {ratio:>9.2f}x")
    torch.set_num_threads(default)
    return 0


if __name__ == "__main__":
    sys.exit(main())
