"""Hostile command lines and clips, tried through ``phyjudge``'s ``main`` and the frame
reader every judge uses."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from tally.model import Probe, expect
from tally.probes import _file, cli

# --------------------------------------------------------------------------- command lines


def _prompts(folder: Path) -> str:
    path = folder / "prompts.json"
    path.write_text(
        json.dumps({"prompts": [{"video": "a", "prompt": "p", "physical_laws": ["gravity"]}]})
    )
    (folder / "videos").mkdir(exist_ok=True)
    return str(path)


def _taken(folder: Path) -> str:
    (folder / "taken").write_text("a file")
    return str(folder / "taken" / "scores.json")


def _fifo(folder: Path) -> str:
    os.mkfifo(folder / "pipe.json")
    return str(folder / "pipe.json")


def _videos(folder: Path) -> str:
    (folder / "videos").mkdir(exist_ok=True)
    return str(folder / "videos")


def _clip_file(folder: Path) -> str:
    from pytest_phyjudge.testing import write_test_video

    return str(write_test_video(folder / "v.mp4"))


def _merged(folder: Path) -> str:
    (folder / "merged").mkdir(exist_ok=True)
    (folder / "merged" / "config.json").write_text("{}")
    return str(folder / "merged")


BATCH = ("score-dir", "--videos", _videos, "--prompts", _prompts, "--out")
SCORE = ("score", "--video", _clip_file, "--caption", "c", "--law", "gravity")

ARGS: dict[str, tuple[tuple[str | Callable[[Path], str], ...], str]] = {
    "max_pixels_1": ((*SCORE, "--max-pixels", "1"), "--max-pixels"),
    "max_pixels_neg": ((*SCORE, "--max-pixels", "-5"), "--max-pixels"),
    "max_pixels_word": ((*SCORE, "--max-pixels", "lots"), "--max-pixels"),
    "max_pixels_huge": ((*SCORE, "--max-pixels", "9" * 5000), "--max-pixels"),
    "fps_zero": ((*SCORE, "--fps", "0"), "--fps"),
    "fps_nan": ((*SCORE, "--fps", "nan"), "--fps"),
    "fps_inf": ((*SCORE, "--fps", "inf"), "--fps"),
    "tokens_zero": ((*SCORE, "--max-new-tokens", "0"), "--max-new-tokens"),
    "url_bracket": ((*SCORE, "--url", "http://[::1"), "http://[::1"),
    "url_scheme": ((*SCORE, "--url", "ftp://host"), "ftp://host"),
    "url_empty": ((*SCORE, "--url", ","), "--url"),
    "url_spaces": ((*SCORE, "--url", "http://a b"), "http://a b"),
    "url_port_huge": ((*SCORE, "--url", "http://h:99999"), "http://h:99999"),
    "timeout_zero": ((*SCORE, "--url", "http://h:1", "--timeout", "0"), "--timeout"),
    "timeout_nan": ((*SCORE, "--url", "http://h:1", "--timeout", "nan"), "--timeout"),
    "timeout_neg": ((*SCORE, "--url", "http://h:1", "--timeout", "-1"), "--timeout"),
    "retries_neg": ((*SCORE, "--url", "http://h:1", "--retries", "-1"), "--retries"),
    "concurrency_zero": ((*SCORE, "--url", "http://h:1", "--concurrency", "0"), "--concurrency"),
    "device_bad": ((*SCORE, "--device", "tpu:9"), "tpu:9"),
    "dtype_bad": ((*SCORE, "--dtype", "int4"), "int4"),
    "judge_spec_code": ((*SCORE, "--judge", "__import__('os').system"), "--judge"),
    "judge_spec_missing": ((*SCORE, "--judge", "no_such_mod:make"), "no_such_mod"),
    "law_unknown": (
        ("score", "--video", _file("v.mp4", b"x"), "--caption", "c", "--law", "levitation"),
        "levitation",
    ),
    "video_missing": (
        ("score", "--video", "nope.mp4", "--caption", "c", "--law", "gravity", "--judge", "tiny"),
        "nope.mp4",
    ),
    "video_folder": (
        ("score", "--video", ".", "--caption", "c", "--law", "gravity", "--judge", "tiny"),
        "directory",
    ),
    "video_fifo": (
        ("score", "--video", _fifo, "--caption", "c", "--law", "gravity", "--judge", "tiny"),
        "pipe.json",
    ),
    "video_dev_zero": (
        ("score", "--video", "/dev/zero", "--caption", "c", "--law", "gravity", "--judge", "tiny"),
        "/dev/zero",
    ),
    "media_root_bad": (
        (*SCORE, "--url", "http://h:1", "--media-root", "/nope=x=y"),
        "--media-root",
    ),
    "out_under_file": ((*BATCH, _taken), "taken"),
    "out_is_folder": ((*BATCH, _videos), "is a folder"),
    "prompts_fifo": (
        ("score-dir", "--videos", ".", "--prompts", _fifo, "--out", "o.json"),
        "a pipe",
    ),
    "prompts_dev_zero": (
        ("score-dir", "--videos", ".", "--prompts", "/dev/zero", "--out", "o.json"),
        "a device",
    ),
    "prompts_etc": (("score-dir", "--videos", ".", "--prompts", "/etc", "--out", "o.json"), "/etc"),
    "videos_missing": (
        ("score-dir", "--videos", "nope", "--prompts", _prompts, "--out", "o.json"),
        "nope",
    ),
    "cache_under_file": (("cache", "info", "--cache", _taken), "taken"),
    "export_to_folder": (("cache", "export", ".", "--cache", "c"), "."),
    "import_missing": (("cache", "import", "nope.jsonl", "--cache", "c"), "nope.jsonl"),
    "import_dev_zero": (("cache", "import", "/dev/zero", "--cache", "c"), "/dev/zero"),
    "serve_port_huge": (("serve-command", "--model", _merged, "--port", "70000"), "70000"),
}


def command_lines() -> Iterator[Probe]:
    cls = "command-line arguments"
    for name, (argv, shown) in ARGS.items():
        yield Probe(cls, f"cli_{name}", cli(*argv), expect("returned", names=(shown,)))


def _clip(make: Callable[[Path], None]) -> Callable[[Path], str]:
    """Sample a bad clip's frames as every judge does before judging it."""

    def run(folder: Path) -> str:
        from pytest_phyjudge.engine.frames import read_frames
        from pytest_phyjudge.engine.video import check_video_file, sha256_file

        path = folder / "clip.mp4"
        make(path)
        check_video_file(path)
        sha256_file(path)
        frames = read_frames(path, fps=2.0, max_pixels=360 * 640)
        return f"read {len(frames.frames)} frames"

    return run


def _real(**options: object) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        from pytest_phyjudge.testing import write_test_video

        write_test_video(path, **options)

    return make


def _truncated(keep: float) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        _real()(path)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return make


CLIPS: dict[str, Callable[[Path], None]] = {
    "zero_bytes": lambda p: p.write_bytes(b""),
    "text_renamed": lambda p: p.write_text("this is not a video"),
    "truncated_half": _truncated(0.5),
    "truncated_header": _truncated(0.02),
    "tiny_8x8": _real(size=(8, 8)),
    "one_frame": _real(frames=1),
    "sparse_huge": lambda p: os.truncate(p.open("wb").name, 300 * 1024**2),
    "png_renamed": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64),
    "random_bytes": lambda p: p.write_bytes(os.urandom(4096)),
    "symlink_loop": lambda p: (
        p.symlink_to(p.with_name("o.mp4")),
        p.with_name("o.mp4").symlink_to(p),
    ),
}


def clips() -> Iterator[Probe]:
    cls = "bad clips"
    for name, make in CLIPS.items():
        yield Probe(cls, f"clip_{name}", _clip(make), expect("error", names="clip.mp4"))
