"""What a suite's diffusers ``pipeline:`` costs on the CPU, with the tiny random Wan pipeline
(pytest_phyjudge.testing.pipelines) and the tiny random judge: clips per minute at batch 1
and batch 4, a rerun that reuses every clip, and the peak RSS of generate-then-judge (the
pipeline released before the judge loads) against both held at once. Prints figures and
saves them to benchmarks/tally/generate-speed.txt; it is not a test:

    python benchmarks/generate_speed.py

Every model here has random weights: the figures measure cost, never quality.
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

CLIPS = 8
TALLY = Path(__file__).resolve().parent / "tally" / "generate-speed.txt"
PROMPTS = ("A ball rolls down a ramp.", "A glass falls off a table.")


def _jobs(folder: Path, count: int):
    from pytest_phyjudge.generation.clips import ClipJob
    from pytest_phyjudge.suites.model import PipelineSpec
    from pytest_phyjudge.testing.pipelines import TINY_PARAMS

    spec = PipelineSpec(id=str(folder), folder=True, device="cpu", params=TINY_PARAMS)
    return [ClipJob(f"c{i}", spec, PROMPTS[i % 2], i) for i in range(count)]


def per_minute(folder: Path, clips_dir: Path, batch: int) -> float:
    """Clips made per minute at ``batch`` prompts a call (the pipeline already loaded)."""
    from pytest_phyjudge.generation.clips import ClipMaker

    maker = ClipMaker(clips_dir, batch=batch, regenerate=True)
    maker.make(_jobs(folder, batch))  # load and warm up
    started = time.perf_counter()
    maker.make(_jobs(folder, CLIPS))
    seconds = time.perf_counter() - started
    maker.release()
    return CLIPS / seconds * 60


def rerun_seconds(folder: Path, clips_dir: Path) -> float:
    """A new session's time to find every clip made (keys, the folder's digest remembered)."""
    from pytest_phyjudge.generation.clips import ClipMaker

    maker = ClipMaker(clips_dir)
    started = time.perf_counter()
    maker.make(_jobs(folder, CLIPS))
    seconds = time.perf_counter() - started
    assert maker.stats.reused == CLIPS and maker.stats.made == 0, maker.stats
    return seconds


_CHILD = """
import json, resource, sys, re
from pathlib import Path
from pytest_phyjudge import load_judge
from pytest_phyjudge.judges.base import ClipRequest
from pytest_phyjudge.generation.clips import ClipMaker
sys.path.insert(0, {bench!r})
from generate_speed import _jobs

pipeline, judge_dir, clips = Path({pipeline!r}), Path({judge!r}), Path({clips!r})
together = {together}
maker = ClipMaker(clips, regenerate=True)
jobs = _jobs(pipeline, 4)
def rss_mib():
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\\s+(\\d+)", text).group(1)) / 1024

if together:  # the judge loads while the pipeline is still held
    maker.make(jobs[:1])
    before_judge = rss_mib()
    judge = load_judge(judge_dir, device="cpu")
    maker.make(jobs[1:])
else:
    maker.make(jobs)
    maker.release()
    before_judge = rss_mib()
    judge = load_judge(judge_dir, device="cpu")
judge.score_clips([ClipRequest(maker.result(j), j.prompt, ["SA"], None) for j in jobs])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"peak_mib": peak, "before_judge_mib": before_judge}}))
"""


def peak_rss(pipeline: Path, judge: Path, clips: Path, together: bool) -> dict[str, float]:
    """Peak RSS (MiB) of a fresh process that generates 4 clips and judges them, and its
    RSS when the judge starts loading."""
    code = _CHILD.format(
        bench=str(Path(__file__).resolve().parent),
        pipeline=str(pipeline),
        judge=str(judge),
        clips=str(clips),
        together=together,
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy()
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from pytest_phyjudge.testing import build_tiny_judge
    from pytest_phyjudge.testing.pipelines import build_tiny_pipeline

    lines = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    cuda = torch.cuda.is_available()
    say(
        f"generate_speed: tiny random Wan pipeline (5 frames, 32x32, 2 steps) on the CPU, "
        f"{os.cpu_count()} cores, torch {torch.__version__}; "
        + (
            "a CUDA GPU is present but not measured here"
            if cuda
            else "no CUDA GPU in this session: no GPU figures"
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        pipeline = build_tiny_pipeline(root / "pipeline")
        say(f"build the tiny pipeline: {time.perf_counter() - started:.1f} s")
        judge = build_tiny_judge(root / "judge")
        for batch in (1, 4):
            rate = per_minute(pipeline, root / f"clips-{batch}", batch)
            say(f"batch {batch}: {rate:.0f} clips per minute ({CLIPS} clips)")
        say(f"rerun reusing all {CLIPS} clips: {rerun_seconds(pipeline, root / 'clips-4'):.3f} s")
        # Memory: a pipeline of about 400 MB (a wide feed-forward; as fast), so that what
        # releasing it saves shows above the runtime's own few hundred MiB.
        heavy = build_tiny_pipeline(root / "heavy", ffn_dim=1_000_000)
        weights = sum(p.stat().st_size for p in heavy.rglob("*.safetensors")) / 2**20
        say(f"memory, with a {weights:.0f} MiB random Wan pipeline and the tiny judge:")
        for together, name in ((False, "generate, release, then judge"), (True, "both held")):
            mib = peak_rss(heavy, judge, root / "rss", together)
            say(
                f"  {name}: peak RSS {mib['peak_mib']:.0f} MiB, "
                f"{mib['before_judge_mib']:.0f} MiB when the judge starts loading"
            )
    TALLY.parent.mkdir(parents=True, exist_ok=True)
    TALLY.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"saved to {TALLY}")


if __name__ == "__main__":
    main()
