"""How long ``phyjudge cache import`` takes on a large export, and how much memory it needs.

Writes an export of N judgments (default 1,000,000: one judge record, then N judgment lines
whose keys reproduce from their content, as ``phyjudge cache export`` writes them), then runs
``phyjudge cache import`` on it in a child process and prints its wall seconds and peak RSS.
The import checks every record (key recomputed, reply parsed, prompt against its axis) and
streams in batches, so the peak should stay flat as N grows. A script that prints figures,
not a test:

    python benchmarks/bench_cache_import.py                 # 1,000,000 lines
    python benchmarks/bench_cache_import.py --lines 100000  # to see that memory stays flat
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.engine.rubric import load_rubric
from pytest_phyjudge.judges.cache.record import JudgeRecord
from pytest_phyjudge.judges.cache.trust import key_maker, keyed, prompt_hasher

IDENTITY = JudgeIdentity(kind="tiny", adapter="tiny-judge", base="tiny-base", adapter_sha256="w")
SETTINGS = {"fps": 2.0, "max_pixels": 230400, "max_new_tokens": 64, "scoring": "greedy"}
AXES = ("SA", "PTV", "persistence", "gravity")

_CHILD = """
import resource, sys, time
from pytest_phyjudge.cli.main import main
started = time.perf_counter()
code = main(["cache", "import", sys.argv[1], "--cache", sys.argv[2]])
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"{code} {seconds:.2f} {usage.ru_utime + usage.ru_stime:.2f} {usage.ru_maxrss}")
"""


def write_export(path: Path, lines: int) -> None:
    """An export of ``lines`` judgments of distinct clips, cycling over a few axes."""
    record = JudgeRecord(IDENTITY, load_rubric(None))
    make_key = key_maker(IDENTITY, SETTINGS)
    hashers = {axis: prompt_hasher(record, axis) for axis in AXES}
    judge = IDENTITY.to_dict()
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"judge_record": record.to_dict()}, sort_keys=True) + "\n")
        for number in range(lines):
            axis, clip = AXES[number % len(AXES)], number // len(AXES)
            video = hashlib.sha256(str(clip).encode()).hexdigest()
            # Each clip its own prompt (the worst case: no prompt is rendered twice).
            caption = f"Ball number {clip} falls onto a table."
            prompt = hashers[axis](caption)
            assert prompt is not None
            score = 1 + number % 5
            judgment = {
                "key": axis,
                "score": score,
                "raw": f'{{"{axis}": {score}}}',
                "video": f"clips/{clip}.mp4",
                "video_sha256": video,
                "prompt_sha256": prompt,
                "judge": judge,
                "seconds": 1.5,
                "caption": caption,
                "probs": None,
                "expected": None,
                "cached": False,
                "extra": {},
                "greedy": None,
            }
            line = {
                "key": make_key(video, prompt),
                "judgment": judgment,
                "settings": keyed(SETTINGS),
                "judge_id": record.id,
            }
            out.write(json.dumps(line, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="judgments in the export")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        export = Path(folder) / "judgments.jsonl"
        started = time.perf_counter()
        write_export(export, args.lines)
        size = export.stat().st_size / 2**20
        print(
            f"export: {args.lines:,} judgments, {size:.0f} MiB, written in "
            f"{time.perf_counter() - started:.1f} s"
        )
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(export), str(Path(folder) / "cache")],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not done.stdout.strip():
            sys.exit(f"the import failed:\n{done.stdout}\n{done.stderr}")
        code, seconds, cpu, peak_kb = done.stdout.split()[-4:]
        database = (Path(folder) / "cache" / "judgments.sqlite3").stat().st_size / 2**20
        print(
            f"import: exit {code}, {float(seconds):.1f} s wall "
            f"({args.lines / float(seconds):,.0f} lines/s), {float(cpu):.1f} s CPU, peak RSS "
            f"{int(peak_kb) / 1024:.0f} MiB, database {database:.0f} MiB"
        )
        print(f"child's own lines: {done.stderr.strip().splitlines()[-1]}")
        mine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"(this process, which wrote the export: peak RSS {mine:.0f} MiB)")


if __name__ == "__main__":
    main()
