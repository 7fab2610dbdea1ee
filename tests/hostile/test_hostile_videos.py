"""Videos that are not what they seem get a message that names what is wrong with them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_phyjudge import VideoError
from pytest_phyjudge.engine.frames import read_frames
from pytest_phyjudge.engine.video import check_video_file, decode_video
from pytest_phyjudge.testing import write_test_video


def test_a_pipe_or_a_device_is_not_called_an_empty_file(tmp_path: Path) -> None:
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(VideoError, match="is not a regular file") as caught:
            check_video_file(path)
        assert "zero-byte" not in str(caught.value) and str(path) in str(caught.value)


def test_frames_smaller_than_a_vision_patch_are_named(tmp_path: Path) -> None:
    clip = write_test_video(tmp_path / "tiny.mp4", size=(8, 8), frames=12)
    with pytest.raises(
        VideoError, match=r"is 8x8 pixels; the judge needs frames of at least 32x32"
    ):
        read_frames(clip, fps=2.0, max_pixels=360 * 640)


@pytest.mark.local
def test_frames_smaller_than_a_vision_patch_are_named_by_the_reference_sampler(
    tmp_path: Path,
) -> None:
    clip = write_test_video(tmp_path / "tiny.mp4", size=(8, 8), frames=12)
    with pytest.raises(VideoError, match=r"is 8x8 pixels") as caught:
        decode_video(clip)
    assert "torchvision" not in str(caught.value)


def test_a_clip_too_long_for_a_served_judge_says_so_with_the_numbers() -> None:
    from pytest_phyjudge.engine.frames import VIDEO_TOKEN_BUDGET, video_tokens

    # Ten minutes at 2 fps, sized as qwen-vl-utils sizes them for a long clip.
    assert video_tokens(1200, 192, 352) > VIDEO_TOKEN_BUDGET
    assert video_tokens(10, 352, 640) == 5 * 11 * 20


def test_a_long_clip_warns_once_with_its_token_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pytest_phyjudge.engine.frames as frames

    clip = write_test_video(tmp_path / "long.mp4", size=(64, 64), frames=24, fps=6)
    monkeypatch.setattr(frames, "VIDEO_TOKEN_BUDGET", 10)  # a tiny context, for the test
    with pytest.warns(frames.VideoTokenWarning, match=r"becomes [\d,]+ video tokens \(8 frames"):
        read_frames(clip, fps=2.0, max_pixels=360 * 640)


def test_a_huge_file_that_is_no_video_is_refused_before_it_is_hashed(tmp_path: Path) -> None:
    """A sparse 20 GB file of zeros: refused at once, not read whole to hash it."""
    import time

    from pytest_phyjudge.engine.video import sha256_file

    huge = tmp_path / "huge.mp4"
    with open(huge, "wb") as fh:
        fh.truncate(20 * 1024**3)
    started = time.monotonic()
    with pytest.raises(VideoError, match="cannot be decoded"):
        sha256_file(huge)
    assert time.monotonic() - started < 60  # hashing it would read 20 GB
