"""Seconds and peak memory of ``phyjudge compare``, ``agree`` and ``leaderboard`` on two
reports of a million results each (the issue's target: compare and leaderboard under 20 s).

    python benchmarks/bench_compare.py [--results 1000000] [--keep DIR]

Writes two PhyGround-shaped ``scores.json`` files (compact JSON, so that a million rows stay
under the 64 MiB a report may hold): every row has SA, every other one PTV, every third one
a law (gravity, collision, buoyancy or shadow), the scores drawn at random with a fixed
seed; run B is run A moved by -1, 0 or +1 on each score. Each command then runs in a fresh
process (as a user runs it), and the script prints its wall time and peak RSS. A script
that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAWS = ("gravity", "collision", "buoyancy", "shadow")
#: Runs one ``phyjudge`` command in this process and reports its peak RSS (Linux: KiB).
CHILD = """
import resource, sys
from pytest_phyjudge.cli.main import main
code = main(sys.argv[1:])
use = resource.getrusage(resource.RUSAGE_SELF)
print(f"{code} {use.ru_maxrss} {use.ru_utime + use.ru_stime}", file=sys.stderr)
"""


def write_report(path: Path, count: int, seed: int, base: list[int] | None) -> list[int]:
    """A report of ``count`` rows; returns its scores (one per row and axis, in order)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    drawn = rng.integers(1, 6, size=count * 3).tolist()
    if base is not None:
        steps = rng.integers(-1, 2, size=len(base)).tolist()
        drawn = [min(5, max(1, s + d)) for s, d in zip(base, steps, strict=True)]
    with path.open("w", encoding="utf-8") as out:
        out.write('{"meta":{"video_model":' + json.dumps(path.stem) + '},"results":[')
        for i in range(count):
            sa, ptv, law = drawn[3 * i : 3 * i + 3]
            row = f'{{"video":"v{i}","SA":{sa}'
            if i % 2 == 0:
                row += f',"PTV":{ptv}'
            if i % 3 == 0:
                row += f',"physical":{{"laws":{{"{LAWS[i // 3 % 4]}":{{"score":{law}}}}}}}'
            out.write(("," if i else "") + row + "}")
        out.write("]}\n")
    return drawn


def measure(args: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak RSS (MiB) and exit code of ``phyjudge ARGS`` in a
    fresh process (CPU time too: on a shared machine the wall time says more about the
    neighbours)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "? 0 0"
    code, peak, cpu = last.split()[:3]
    if code != "0":
        print(done.stderr, file=sys.stderr)
    return seconds, float(cpu), int(peak) / 1024, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1_000_000, help="rows per report")
    parser.add_argument("--keep", type=Path, help="write the reports here (kept)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = options.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        a, b = folder / "run-a.json", folder / "run-b.json"
        started = time.perf_counter()
        scores = write_report(a, options.results, 0, None)
        write_report(b, options.results, 1, scores)
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 2**20:.1f} MiB" for p in (a, b))
        print(
            f"{options.results:,} results per report ({sizes}), written in "
            f"{time.perf_counter() - started:.1f} s"
        )
        env_note = f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        print(f"command         wall s   CPU s  peak RSS  exit   ({env_note})")
        for name, command in (
            ("compare", ["compare", str(a), str(b), "--format", "json"]),
            ("leaderboard", ["leaderboard", str(a), str(b), "--format", "json"]),
            ("agree", ["agree", str(a), str(b), "--format", "json"]),
        ):
            seconds, cpu, peak, code = measure(command)
            print(f"{name:<14} {seconds:7.1f} {cpu:7.1f}  {peak:5.0f} MiB  {code:>4}")


if __name__ == "__main__":
    main()
