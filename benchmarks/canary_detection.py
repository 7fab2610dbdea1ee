"""What ``phyjudge canary check`` catches, measured with the format-trained tiny judge on real
PhyGround clips; how often it raises a false alarm; what a check costs.

The trusted setup: the tiny judge (CPU, float32) whose adapter carries PhyGround's published
prompt template (as PhyJudge-9B's does; the tiny judge's own is the bundled rubric's text),
sampling 2 frames per second at 262144 pixels per frame (twice the smallest budget the video
processor takes, so that half of it is a budget a judge can be set to). Its canaries are
recorded once (``canary record``: the 3 general metrics and each prompt's laws), then checked
(``canary check``, default tolerances) against each impostor:

  a  the same judge again                     f  a scripted judge answering 4 to everything
  b  every lora_B weight zeroed (a copy)       g  phyjudge serve's server claiming judge A
  c  the bundled rubric, not the template         (its /v1/models) while judge B (b) answers
  d  1 frame per second instead of 2           g0 the same server honest (A claims A)
  e  half the pixel budget (131072)

Then the same judge checked ``--repeats`` times (the false-alarm rate), and one check of 8
clips on all 16 axes (the six real clips and two renamed copies, recorded and then checked).
A script that prints figures, not a test (tests/test_canary_detection.py is the test):

    nice python benchmarks/canary_detection.py                     # 6 clips, 20 repeats
    nice python benchmarks/canary_detection.py --repeat-clips 2    # the repeats on 2 clips
    nice python benchmarks/canary_detection.py --clips 2 --repeats 5 --no-cost
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pytest_phyjudge.canary.model import CanaryFile, CanaryItem, relative_clip
from pytest_phyjudge.canary.record import Ask, observe
from pytest_phyjudge.deploy.server import JudgeServer
from pytest_phyjudge.engine.axes import ALL_AXES
from pytest_phyjudge.engine.video import sha256_file
from pytest_phyjudge.judges.local.loading import load_judge
from pytest_phyjudge.judges.settings import JudgeSettings
from pytest_phyjudge.testing.impostors import (
    ANSWERS_FOUR,
    Check,
    ClaimingServer,
    check_canaries,
    run_canary_command,
    tiny_adapters,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "phyground"
PROMPTS = SHARED / "humaneval_prompts.json"
TEMPLATE = SHARED / "adapter-files" / "subq+human.yaml"
#: The trusted setup's pixel budget, and half of it (the smallest the processor takes).
PIXELS, HALF_PIXELS = 262144, 131072


def _record(videos: Path, out: Path, *judge: str) -> float:
    started = time.monotonic()
    code, _, err = run_canary_command(
        "record", "--videos", str(videos), "--prompts", str(PROMPTS), "--out", str(out), *judge
    )
    if code:
        raise SystemExit(f"canary record failed ({code}):\n{err}")
    return time.monotonic() - started


def _row(name: str, check: Check, seconds: float) -> str:
    caught = "yes" if check.caught else "NO"
    verdict = check.verdict.split(":", 1)[0].lower()
    return (
        f"{name:<44} {caught:>6}  {verdict:<42} {check.agreement:>5.2f} {check.mean_diff:>8.3f} "
        f"{check.max_tv:>6.3f} {check.calls:>5} {seconds:>7.1f}"
    )


def _timed(canaries: Path, *options: str) -> tuple[Check, float]:
    started = time.monotonic()
    check = check_canaries(canaries, *options)
    return check, time.monotonic() - started


def _cost(folder: Path, clips: list[Path], local: list[str]) -> str:
    """Record 8 clips x 16 axes (6 real, 2 renamed copies), then check them: the check's cost."""
    videos = folder / "cost-videos"
    videos.mkdir()
    captions = {}
    for group in json.loads(PROMPTS.read_text())["prompts"]:
        captions[group["video"]] = group["prompt"]
    chosen = [*clips, *clips][:8]
    paths = []
    for index, clip in enumerate(chosen):
        name = clip.name if index < len(clips) else f"copy{index}-{clip.name}"
        shutil.copyfile(clip, videos / name)
        paths.append((videos / name, captions[clip.stem.split("__", 1)[1]]))
    asks = [Ask(path, caption, axis) for path, caption in paths for axis in ALL_AXES]
    out = folder / "cost.json"
    settings = JudgeSettings(adapter=local[1], device="cpu", max_pixels=PIXELS)
    seen = observe(settings, asks, clock=time.monotonic)
    items = tuple(
        CanaryItem(
            relative_clip(out, ask.clip),
            sha256_file(ask.clip),
            ask.caption,
            ask.axis,
            answer.prompt_sha256,
            answer.reading,
        )
        for ask, answer in zip(asks, seen.answers, strict=True)
    )
    document = CanaryFile(seen.setup, items, datetime.now(UTC).isoformat(timespec="seconds"))
    out.write_text(json.dumps(document.to_dict()))
    check, seconds = _timed(out, *local)
    return (
        f"cost of one check, 8 clips x 16 axes = {len(items)} canaries: {check.calls} judge calls "
        f"(greedy and distribution), {check.seconds:.1f} s judging, {seconds:.1f} s in all "
        f"(recording them took {seen.seconds:.1f} s); verdict: {check.verdict.split(':')[0]}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=6, help="real clips to record (1-6)")
    parser.add_argument("--repeats", type=int, default=20, help="checks of the same judge")
    parser.add_argument(
        "--repeat-clips",
        type=int,
        help="clips of the canaries checked --repeats times (default: --clips; recorded anew "
        "when fewer)",
    )
    parser.add_argument("--served-clips", type=int, default=2, help="clips of the serve cases")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--no-cost", action="store_true", help="skip the 8 x 16 cost check")
    args = parser.parse_args(argv)
    clips = sorted((SHARED / "videos").glob("*.mp4"))
    if not clips or not TEMPLATE.is_file():
        raise SystemExit(f"needs the PhyGround clips and template under {SHARED}")
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPU cores (load average "
        f"{load:.1f} at the start; the machine is shared), torch on {args.threads} thread(s)"
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="canary-detection-") as tmp:
        folder = Path(tmp)
        adapters = tiny_adapters(folder, TEMPLATE)
        reference, zeroed, bundled = adapters.reference, adapters.zeroed, adapters.bundled
        videos = folder / "videos"
        videos.mkdir()
        for clip in clips[: args.clips]:
            shutil.copyfile(clip, videos / clip.name)
        canaries = folder / "canaries.json"
        local = ["--adapter-dir", str(reference), "--device", "cpu", "--max-pixels", str(PIXELS)]
        seconds = _record(videos, canaries, *local)
        count = len(json.loads(canaries.read_text())["items"])
        print(
            f"recorded {count} canaries on {args.clips} real PhyGround clips in {seconds:.1f} s "
            "(the tiny judge with PhyGround's template, CPU float32, fps 2, "
            f"{PIXELS} pixels per frame)"
        )
        print(
            f"{'case':<44} {'caught':>6}  {'verdict':<42} {'agree':>5} {'mean|dE|':>8} "
            f"{'maxTV':>6} {'calls':>5} {'seconds':>7}"
        )
        cases = [
            ("a  the same judge", local),
            ("b  every lora_B zeroed (a copy)", [*local[:1], str(zeroed), *local[2:]]),
            ("c  the bundled rubric, not the template", [*local[:1], str(bundled), *local[2:]]),
            ("d  1 fps instead of 2", [*local, "--fps", "1"]),
            ("e  half the pixel budget", [*local[:-1], str(HALF_PIXELS)]),
            ("f  scripted, answering 4 to everything", ["--judge", ANSWERS_FOUR]),
        ]
        for name, options in cases:
            check, seconds = _timed(canaries, *options)
            print(_row(name, check, seconds), flush=True)
        print(_served(folder, videos, reference, zeroed, args.served_clips), flush=True)
        repeat_clips = args.repeat_clips or args.clips
        if repeat_clips < args.clips:
            canaries = folder / "repeat.json"
            _record(videos, canaries, *local, "--limit", str(repeat_clips))
            count = len(json.loads(canaries.read_text())["items"])
        false, times = [], []
        for _ in range(args.repeats):
            check, seconds = _timed(canaries, *local)
            times.append(seconds)
            false.append(check.caught)
        print(
            f"false alarms: {sum(false)} of {args.repeats} checks of the same judge on "
            f"{repeat_clips} clips ({count} canaries each, {min(times):.1f}-{max(times):.1f} s "
            "a check)",
            flush=True,
        )
        if not args.no_cost:
            print(_cost(folder, clips, local), flush=True)
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


def _served(folder: Path, videos: Path, reference: Path, zeroed: Path, clips: int) -> str:
    """Canaries of the first ``clips`` clips recorded over HTTP on judge A (each axis a
    request of its own, the clip sent along), checked on the honest server and on the one
    that claims A while B (the zeroed LoRA) answers."""
    honest = load_judge(reference, device="cpu", max_pixels=PIXELS)
    impostor = load_judge(zeroed, device="cpu", max_pixels=PIXELS)
    canaries = folder / "served.json"
    rows = []
    try:
        with JudgeServer(honest) as server:
            remote = ["--url", server.url, "--max-pixels", str(PIXELS)]
            seconds = _record(videos, canaries, *remote, "--limit", str(clips))
            count = len(json.loads(canaries.read_text())["items"])
            rows.append(
                f"(serve: {count} canaries of {clips} clips recorded over HTTP on judge A in "
                f"{seconds:.1f} s)"
            )
            check, seconds = _timed(canaries, *remote)
            rows.append(_row("g0 serve: A claims A (honest)", check, seconds))
            with ClaimingServer(impostor, claimed=server) as liar:
                liar_remote = ["--url", liar.url, "--max-pixels", str(PIXELS)]
                check, seconds = _timed(canaries, *liar_remote)
                rows.append(_row("g  serve: claims A, serves B (lora_B zeroed)", check, seconds))
    finally:
        honest.close()
        impostor.close()
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
