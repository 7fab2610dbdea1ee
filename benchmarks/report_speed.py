"""Speed of ``phyjudge report`` on a large report: clips per second of the HTML report's
previews, one at a time and side by side (threads, processes).

    nice python benchmarks/report_speed.py [--cases 500] [--clips DIR] [--before CHECKOUT]

Writes a scores.json of ``--cases`` cases over the real clips in ``--clips`` (default the
PhyGround sample, ``/work/shared/phyground/videos``), each case its own copy of a clip with
one distinct trailing byte (so no two share a preview: every case is encoded, as in a
report of that many generated clips; FFmpeg ignores the byte). Then, each in a fresh
process, reads it and writes the report as ``phyjudge report`` does: with one worker (the
encoding of earlier versions, one clip after another), with a worker per core on threads,
and on processes; ``--before`` also times another checkout (e.g. the main branch) as it is.
Prints the wall time and clips per second of each, and the cores it had.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from pathlib import Path
from pytest_phyjudge.reporting.html import write_html_report
from pytest_phyjudge.scores import read_scores
scores, out, workers, executor = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
start = time.perf_counter()
document = read_scores(scores)
kwargs = {} if workers == "as-is" else {"workers": int(workers), "executor": executor}
write_html_report(document, out, base=Path(scores).parent, **kwargs)
seconds = time.perf_counter() - start
page = (Path(out) / "index.html").read_text()
print(json.dumps({"seconds": seconds, "playable": page.count("<video")}))
"""


def write_cases(folder: Path, clips: list[Path], cases: int) -> Path:
    """``cases`` distinct clip files (copies with a distinct trailing byte) and the
    scores.json listing them."""
    results = []
    for index in range(cases):
        clip = clips[index % len(clips)]
        copy = folder / "clips" / f"case{index:04d}.mp4"
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes(clip.read_bytes() + index.to_bytes(4, "big"))
        results.append(
            {"video": f"case{index:04d}", "prompt": "p", "video_path": str(copy), "SA": 3}
        )
    scores = folder / "scores.json"
    scores.write_text(json.dumps({"meta": {}, "results": results}))
    return scores


def run(checkout: Path, scores: Path, out: Path, workers: str, executor: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    args = [sys.executable, "-c", CHILD, str(scores), str(out), workers, executor]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--clips", type=Path, default=Path("/work/shared/phyground/videos"))
    parser.add_argument("--before", type=Path, help="another checkout to time as it is")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--modes",
        default="before,one,threads,processes",
        help="which to time, of before (needs --before), one, threads, processes",
    )
    args = parser.parse_args()
    clips = sorted(args.clips.glob("*.mp4"))
    if not clips:
        raise SystemExit(f"no .mp4 in {args.clips}")
    print(f"{args.cases} cases over {len(clips)} clips of {args.clips}; {args.workers} cores")
    every = {
        "before": (f"before ({args.before})", args.before, "as-is", "-"),
        "one": ("one at a time", HERE, "1", "thread"),
        "threads": (f"{args.workers} threads", HERE, str(args.workers), "thread"),
        "processes": (f"{args.workers} processes", HERE, str(args.workers), "process"),
    }
    wanted = args.modes.split(",")
    if args.before is None and "before" in wanted:
        wanted.remove("before")
    modes = [every[name] for name in wanted]
    with tempfile.TemporaryDirectory() as tmp:
        scores = write_cases(Path(tmp), clips, args.cases)
        for index, (name, checkout, workers, executor) in enumerate(modes):
            found = run(checkout, scores, Path(tmp) / f"html{index}", workers, executor)
            rate = args.cases / found["seconds"]
            print(
                f"{name:>28}: {found['seconds']:7.1f} s, {rate:5.2f} clips/s "
                f"({found['playable']} playable)",
                flush=True,
            )


if __name__ == "__main__":
    main()
