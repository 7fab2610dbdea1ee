"""Clips per minute with several clips per batch (``--batch-clips N``): the same clips judged
on all 16 axes one clip per ``score_clips`` call, then N clips per call, with distribution
scoring (e) and with greedy replies verified (d, the check forced to succeed as in
``bench_axes.py``, since random weights never verify). Prints figures; it is not a test:

    python benchmarks/bench_clips.py                     # tiny shape, 4 PhyGround clips
    python benchmarks/bench_clips.py --shape medium      # hidden 512, 8 layers

Every model here has random weights: the figures measure cost, never quality.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_axes import (
    CAPTION,
    DEFAULT_CLIP,
    SHAPES,
    Counter,
    ForcedVerification,
    _peak_memory,
    _tiny_like,
)


def _per_minute(judge: Any, clips: list[Path], size: int, runs: int) -> tuple[float, float, int]:
    """Clips judged per minute of wall time and per minute of this process's CPU time
    (medians of ``runs``), ``size`` clips per call; and the forward calls of one pass."""
    from pytest_phyjudge.engine.axes import ALL_AXES

    batches = [clips[i : i + size] for i in range(0, len(clips), size)]
    counter = Counter(judge)
    times, cpu = [], []
    for run in range(runs + 1):  # the first run warms up (and decodes the clips once)
        counter.reset()
        started, cpu_started = time.perf_counter(), time.process_time()
        for batch in batches:
            judge.score_clips([(clip, CAPTION, ALL_AXES) for clip in batch])
        if run:
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
    counter.handle.remove()
    per_minute = len(clips) * 60
    return per_minute / statistics.median(times), per_minute / statistics.median(cpu), counter.calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=list(SHAPES), default="tiny")
    parser.add_argument("--clips", type=int, default=4, help="PhyGround clips to judge")
    parser.add_argument("--batch", type=int, default=4, help="clips per call (N)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    clips = sorted(DEFAULT_CLIP.parent.glob("*.mp4"))[: args.clips]
    if len(clips) < args.clips:
        print(f"need {args.clips} clips in {DEFAULT_CLIP.parent}", file=sys.stderr)
        return 2
    from pytest_phyjudge.judges.local import judge as local

    judge = _tiny_like(args.shape, *SHAPES[args.shape], args.device)
    judge.config = dataclasses.replace(judge.config, max_new_tokens=8)
    print(
        f"model: {args.shape} (random weights), device {args.device}, {len(clips)} PhyGround "
        f"clips x 16 axes, median of {args.runs} runs"
    )
    print(f"{'way':<26}{'N':>3}{'clips/min':>11}{'per CPU-min':>13}{'fwd calls':>11}  peak memory")
    real_verify = local.verified_replies
    for name, scoring, forced in (
        ("e batch + distribution", "distribution", False),
        ("d if verified", "greedy", True),
    ):
        judge.config = dataclasses.replace(judge.config, scoring=scoring)
        local.verified_replies = ForcedVerification(judge) if forced else real_verify
        rates, cpu_rates = {}, {}
        for size in (1, args.batch):
            rates[size], cpu_rates[size], calls = _per_minute(judge, clips, size, args.runs)
            memory = _peak_memory(args.device)
            print(
                f"{name:<26}{size:>3}{rates[size]:>11.1f}{cpu_rates[size]:>13.1f}{calls:>11}"
                f"  {memory}"
            )
        print(
            f"{'':<26}N={args.batch} vs N=1: {rates[args.batch] / rates[1]:.2f}x clips/min, "
            f"{cpu_rates[args.batch] / cpu_rates[1]:.2f}x per CPU-minute"
        )
    local.verified_replies = real_verify
    return 0


if __name__ == "__main__":
    sys.exit(main())
