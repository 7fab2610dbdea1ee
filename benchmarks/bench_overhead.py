"""What the plugin adds to a run whose judgments are all cached: 1,000 (case, axis) items
replayed from the judgment cache, against 1,000 trivial Python tests.

    python benchmarks/bench_overhead.py [--items 1000] [--runs 3]

The first run records the judgments with the tiny judge (distribution scoring); the timed
runs replay them (--phyjudge-cache-mode only, no model loaded). Prints median wall seconds
of each and the difference. A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AXES = ("SA", "PTV", "persistence", "gravity")


def _write_project(folder: Path, items: int) -> None:
    from pytest_phyjudge.testing import write_test_video

    write_test_video(folder / "clips" / "ball.mp4", frames=8)
    cases = items // len(AXES)
    lines = ["videos: clips/ball.mp4", "defaults: {min_score: 1}", "cases:"]
    lines += [
        f"  - {{id: c{i:04d}, prompt: Ball number {i} falls., laws: [gravity]}}"
        for i in range(cases)
    ]
    (folder / "many.phyjudge.yaml").write_text("\n".join(lines) + "\n")
    tests = [f"def test_{i:04d}():\n    assert {i} == {i}\n" for i in range(items)]
    (folder / "test_trivial.py").write_text("\n".join(tests))


def _pytest(folder: Path, *args: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"pytest {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    _write_project(folder, args.items)
    judge = ["--phyjudge-judge", "tiny", "--phyjudge-scoring", "distribution"]
    started = time.perf_counter()
    _pytest(folder, "many.phyjudge.yaml", *judge)
    record = time.perf_counter() - started
    replay = [
        _pytest(folder, "many.phyjudge.yaml", *judge, "--phyjudge-cache-mode", "only")
        for _ in range(args.runs)
    ]
    trivial = [_pytest(folder, "test_trivial.py") for _ in range(args.runs)]
    r, t = statistics.median(replay), statistics.median(trivial)
    print(f"{args.items} items, median of {args.runs} runs (pytest in a subprocess, wall)")
    print(f"  recording run (tiny judge, distribution): {record:8.2f} s")
    print(f"  replay of {args.items} cached items:       {r:8.2f} s")
    print(f"  {args.items} trivial tests:                {t:8.2f} s")
    print(
        f"  plugin overhead:                        {r - t:+8.2f} s "
        f"({(r - t) / args.items * 1000:.2f} ms an item)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
