"""The light sampler (PyAV + numpy + Pillow) against the judge's own: same frames, same size."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_phyjudge import JudgeLoadError, VideoError
from pytest_phyjudge.engine import video
from pytest_phyjudge.engine.frames import frame_count, read_frames, sample_indices, smart_resize
from pytest_phyjudge.engine.video import decode_video, sample_frames, sampled_clip
from pytest_phyjudge.testing import write_test_video

MAX_PIXELS = 360 * 640
#: Bicubic resampling in Pillow and in torchvision differ by rounding, not by content.
MAX_MEAN_ABS_DIFF = 1.0


def _as_uint8(decoded: video.DecodedVideo) -> np.ndarray:
    return decoded.frames.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


@pytest.fixture
def light(monkeypatch: pytest.MonkeyPatch) -> None:
    """An install without the judge's video stack, as far as sample_frames can tell."""
    monkeypatch.setitem(sys.modules, "qwen_vl_utils", None)
    video._sampled_clip.cache_clear()
    yield
    video._sampled_clip.cache_clear()


@pytest.mark.local
@pytest.mark.parametrize(
    ("frames", "fps", "size"),
    [(12, 6, (64, 64)), (40, 24, (320, 192)), (31, 30, (640, 360)), (8, 2, (96, 48))],
    ids=["tiny-upscaled", "wide", "downscaled-odd-count", "two-fps"],
)
def test_read_frames_picks_the_judges_frames(tmp_path: Path, frames, fps, size):
    clip = write_test_video(tmp_path / "clip.mp4", frames=frames, fps=fps, size=size, seed=7)
    reference = decode_video(clip, fps=2.0, max_pixels=MAX_PIXELS)
    light = read_frames(clip, fps=2.0, max_pixels=MAX_PIXELS)
    expected = _as_uint8(reference)
    assert light.frames.shape == expected.shape and light.frames.dtype == np.uint8
    assert list(light.indices) == list(reference.metadata["frames_indices"])
    assert light.source_fps == reference.metadata["fps"]
    assert light.total_frames == reference.metadata["total_num_frames"]
    assert light.timestamps == pytest.approx(reference.timestamps)
    difference = np.abs(light.frames.astype(int) - expected.astype(int)).mean()
    assert difference < MAX_MEAN_ABS_DIFF, difference


@pytest.mark.local
def test_real_clips_sample_alike(phyground_videos: list[Path]):
    for clip in phyground_videos[:2]:
        expected = _as_uint8(decode_video(clip))
        got = read_frames(clip, fps=2.0, max_pixels=MAX_PIXELS).frames
        assert got.shape == expected.shape
        assert np.abs(got.astype(int) - expected.astype(int)).mean() < MAX_MEAN_ABS_DIFF


@pytest.mark.local
def test_frame_positions_are_torch_linspace_rounded():
    import torch

    for total in (2, 3, 7, 12, 93, 97, 150, 241, 1000):
        for count in {2, 4, frame_count(total, 24.0, 2.0), frame_count(total, 29.97, 2.0)}:
            if count <= total:
                expected = torch.linspace(0, total - 1, count).round().long().tolist()
                assert sample_indices(total, count) == expected, (total, count)


@pytest.mark.local
def test_frame_count_and_size_follow_qwen_vl_utils():
    from qwen_vl_utils import vision_process as vision

    for total, source_fps in [(12, 6.0), (93, 16.0), (3, 30.0), (2000, 24.0), (97, 25.0)]:
        element = {"fps": 2.0}
        assert frame_count(total, source_fps, 2.0) == vision.smart_nframes(
            element, total_frames=total, video_fps=source_fps
        )
    for height, width in [(64, 64), (720, 1280), (1080, 1920), (360, 641), (17, 3000)]:
        assert smart_resize(
            height, width, factor=32, min_pixels=131072, max_pixels=MAX_PIXELS
        ) == vision.smart_resize(height, width, 32, min_pixels=131072, max_pixels=MAX_PIXELS)


@pytest.mark.local
def test_sample_frames_is_decode_video_where_the_extra_is_installed(synthetic_video: Path):
    sampled = sample_frames(synthetic_video)
    assert np.array_equal(sampled.frames, _as_uint8(decode_video(synthetic_video)))


def test_sampled_clip_without_the_local_extra(light, synthetic_video: Path, tmp_path: Path):
    """A light install sends the PyAV-sampled frames, losslessly, in the judge's count and size."""
    light_frames = sample_frames(synthetic_video).frames
    sent = tmp_path / "sent.mp4"
    sent.write_bytes(sampled_clip(synthetic_video))
    received = read_frames(sent, fps=2.0, max_pixels=MAX_PIXELS)
    assert received.source_fps == 2.0
    assert np.array_equal(received.frames, light_frames)
    with pytest.raises(JudgeLoadError, match=r"pytest-phyjudge\[local\]"):
        decode_video(synthetic_video)


@pytest.mark.parametrize(
    "sample",
    [read_frames, pytest.param(decode_video, marks=pytest.mark.local)],
    ids=["read_frames", "decode_video"],
)
@pytest.mark.parametrize("kind", ["sparse", "text", "one-frame", "truncated"])
def test_files_that_are_not_clips_are_clean_video_errors(tmp_path: Path, kind: str, sample):
    path = tmp_path / f"{kind}.mp4"
    if kind == "sparse":
        with open(path, "wb") as fh:
            fh.truncate(1 << 20)  # a megabyte of holes: a download that never arrived
        words = "cannot be decoded"
    elif kind == "text":
        path.write_text("not a video")
        words = "cannot be decoded"
    elif kind == "one-frame":
        write_test_video(path, frames=1)
        words = "has 1 frame"
    else:
        whole = write_test_video(tmp_path / "whole.mp4", frames=24).read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
        words = "cannot be decoded"
    with pytest.raises(VideoError, match=words) as info:
        sample(path, fps=2.0, max_pixels=MAX_PIXELS)
    assert info.value.path == path
