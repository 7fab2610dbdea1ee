"""Judgments per second through the remote backend against loopback servers on 127.0.0.1,
and the client's own overhead per request.

    python benchmarks/bench_remote.py [--videos 8] [--service-ms 200]

Three servers, all real HTTP (``pytest_phyjudge.deploy.server.JudgeServer``):

* ``tiny``: the tiny random judge on the CPU, one request at a time (what ``phyjudge serve``
  does with one model), so throughput is bounded by the model, whatever the concurrency;
* ``batching``: a scripted judge (canned replies, no model) that takes ``--service-ms`` per
  request and answers requests in parallel, as a batching server like vLLM does; two
  replicas, to show the client spreading its requests;
* ``instant``: the scripted judge answering at once, for the client's overhead: the time
  a request takes at the client minus the time the server spent handling it (JSON and data
  URL building, HTTP, parsing the reply; the clip's encoding is reported apart).

Each judgment is one (video, axis) request of 4 axes per video, at concurrency 1, 4 and 8.
A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

AXES = ["SA", "PTV", "gravity", "collision"]
CAPTION = "A ball rolls down a ramp and knocks over a block."


def _clips(folder: Path, count: int) -> list[Path]:
    from pytest_phyjudge.testing import write_test_video

    return [
        write_test_video(folder / f"clip{i}.mp4", frames=12, fps=6, size=(320, 192), seed=i)
        for i in range(count)
    ]


def _throughput(urls: list[str], clips: list[Path], concurrency: int) -> tuple[float, int]:
    """Judgments per second over ``clips``, and the requests sent."""
    from pytest_phyjudge.engine.video import sampled_clip
    from pytest_phyjudge.judges.remote.judge import plan_remote

    for clip in clips:  # encode the clips first: the figure is about requests
        sampled_clip(clip)
    judge = plan_remote(urls, concurrency=concurrency).load()
    try:
        started = time.perf_counter()
        judged = 0
        # Videos one after another, their axes concurrently (as the plugin judges a case),
        # with several videos in flight to fill the concurrency.
        from concurrent.futures import ThreadPoolExecutor

        videos_in_flight = max(1, concurrency // len(AXES))
        with ThreadPoolExecutor(videos_in_flight) as pool:
            for results in pool.map(lambda c: judge.score_many(c, CAPTION, AXES), clips):
                judged += len(results)
        seconds = time.perf_counter() - started
    finally:
        judge.close()
    return judged / seconds, judge.requests


def _overhead(url: str, server, clip: Path, requests: int) -> tuple[float, float]:
    """Client milliseconds per request beyond the server's handling, and the clip's
    one-off encoding time in milliseconds."""
    from pytest_phyjudge.engine.video import _sampled_clip, decode_video, sampled_clip
    from pytest_phyjudge.judges.remote.judge import plan_remote

    decode_video(clip)
    _sampled_clip.cache_clear()
    started = time.perf_counter()
    sampled_clip(clip)
    encode_ms = (time.perf_counter() - started) * 1000
    judge = plan_remote(url, concurrency=1).load()
    try:
        part = judge.video_part(clip)
        prompt = judge.rubric.render("gravity", CAPTION)
        body = judge.request_body(prompt.system, prompt.user, part)
        judge.complete(body)  # warm the connection
        server.handling_seconds = 0.0
        latencies = []
        for _ in range(requests):
            started = time.perf_counter()
            judge.complete(body)
            latencies.append(time.perf_counter() - started)
    finally:
        judge.close()
    client = statistics.mean(latencies) - server.handling_seconds / requests
    return client * 1000, encode_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--service-ms", type=float, default=200.0)
    args = parser.parse_args()

    import torch

    from pytest_phyjudge import ScriptedJudge
    from pytest_phyjudge.deploy.server import JudgeServer
    from pytest_phyjudge.testing import load_tiny_judge

    torch.set_num_threads(max(1, torch.get_num_threads()))
    folder = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    clips = _clips(folder, args.videos)
    n = len(clips) * len(AXES)
    print(f"{len(clips)} clips x {len(AXES)} axes = {n} judgments per row")

    def slow(axis: str, caption: str, video: Path) -> int:
        time.sleep(args.service_ms / 1000)
        return 4

    tiny = load_tiny_judge(folder / "tiny")
    with (
        JudgeServer(tiny) as tiny_server,
        JudgeServer(ScriptedJudge(slow, name="batching"), serial=False) as b1,
        JudgeServer(ScriptedJudge(slow, name="batching"), serial=False) as b2,
    ):
        print(f"\n{'server':<34} {'concurrency':>11} {'judgments/s':>12} {'requests':>9}")
        rows = [
            ("tiny judge, 1 replica, serial", [tiny_server.url]),
            (f"batching {args.service_ms:.0f} ms, 1 replica", [b1.url]),
            (f"batching {args.service_ms:.0f} ms, 2 replicas", [b1.url, b2.url]),
        ]
        for name, urls in rows:
            for concurrency in (1, 4, 8):
                before = (b1.requests, b2.requests)
                rate, requests = _throughput(urls, clips, concurrency)
                split = ""
                if len(urls) == 2:
                    split = f"  ({b1.requests - before[0]} + {b2.requests - before[1]})"
                print(f"{name:<34} {concurrency:>11} {rate:>12.2f} {requests:>9}{split}")

    with JudgeServer(ScriptedJudge({"*": 4}, name="instant"), serial=False) as instant:
        for clip_size, clip in (("320x192", clips[0]),):
            client_ms, encode_ms = _overhead(instant.url, instant, clip, requests=50)
            print(
                f"client overhead per request ({clip_size} clip, {len(clips[0].read_bytes())} "
                f"bytes): {client_ms:.1f} ms; encoding the sampled clip once: {encode_ms:.0f} ms"
            )
        real = sorted(
            (Path(__file__).resolve().parents[2] / "shared/phyground/videos").glob("*.mp4")
        )
        if real:
            client_ms, encode_ms = _overhead(instant.url, instant, real[0], requests=20)
            from pytest_phyjudge.engine.video import sampled_clip

            size = len(sampled_clip(real[0]))
            print(
                f"client overhead per request (PhyGround clip {real[0].name}, sampled clip "
                f"{size / 1e6:.1f} MB): {client_ms:.1f} ms; encoding it once: {encode_ms:.0f} ms"
            )


if __name__ == "__main__":
    main()
