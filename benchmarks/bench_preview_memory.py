"""Peak memory of the HTML report's clip preview: a long, large clip must stream through
the re-encoder (decode, scale, encode one frame at a time), not sit in memory.

    python benchmarks/bench_preview_memory.py [--seconds 60] [--size 1280x720] [--fps 24]

Writes a nearly static clip of that length (small on disk, like the 63 KB clip of issue
19), then writes the HTML report of one case showing it in a fresh process, and prints
that process's wall time and peak resident memory (``ru_maxrss``). Run it with another
checkout first on ``PYTHONPATH`` to compare.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from pytest_phyjudge.reporting.html import write_html_report
clip, out = sys.argv[1], sys.argv[2]
start = time.perf_counter()
document = {"meta": {}, "results": [{"video": "clip", "video_path": clip, "SA": 4}]}
write_html_report(document, out, base=Path(clip).parent)
seconds = time.perf_counter() - start
page = (Path(out) / "index.html").read_text()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mib": peak, "playable": "<video" in page}))
"""


def write_clip(path: Path, seconds: int, width: int, height: int, fps: int) -> None:
    """A clip of a small square moving over grey, encoded as it is drawn (never held)."""
    import av
    import numpy as np

    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        image = np.full((height, width, 3), 96, dtype=np.uint8)
        for index in range(seconds * fps):
            image[:] = 96
            x = (index * 4) % (width - 32)
            image[height // 2 : height // 2 + 32, x : x + 32] = (230, 80, 40)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=24)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        start = time.perf_counter()
        write_clip(clip, args.seconds, width, height, args.fps)
        made = time.perf_counter() - start
        print(
            f"clip: {args.seconds} s, {width}x{height}, {args.fps} fps, "
            f"{clip.stat().st_size / 1024:.0f} KB (written in {made:.1f} s)"
        )
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(clip), str(Path(tmp) / "site")],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"preview: {result['seconds']:.1f} s, peak RSS {result['peak_mib']:.0f} MiB, "
            f"playable: {result['playable']}"
        )


if __name__ == "__main__":
    main()
