"""The judge's frame sampling without torch: qwen-vl-utils' rules (how many frames, which ones,
what size) on PyAV + numpy + Pillow, so a light install sends a judge server the same frames."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError, VideoError

#: Qwen3.5's vision patch size; qwen-vl-utils' default of 14 breaks the processor.
IMAGE_PATCH_SIZE = 16
#: The vision tower merges 2x2 patches, so frame sides are multiples of 16 * 2.
SPATIAL_MERGE_SIZE = 2
#: Frames go to the vision tower in pairs: a video needs at least, and a multiple of, this many.
MIN_FRAMES = 2
# qwen-vl-utils' limits (vision_process.py), kept under its names' meaning.
_FPS_MIN_FRAMES = 4
_FPS_MAX_FRAMES = 768
_VIDEO_MIN_TOKENS = 128
_VIDEO_MAX_TOKENS = 768
_MAX_RATIO = 200
#: qwen-vl-utils caps a clip's pixels by the model's context, read from this variable.
_SEQ_LEN_ENV = "MODEL_SEQ_LEN"
#: The fewest pixels a sampled frame has (128 merged patches of 32x32): a smaller
#: ``max_pixels`` cannot be met.
MIN_FRAME_PIXELS = _VIDEO_MIN_TOKENS * (IMAGE_PATCH_SIZE * SPATIAL_MERGE_SIZE) ** 2
_DEFAULT_SEQ_LEN = 128000


@dataclass(frozen=True)
class SampledFrames:
    """The frames the judge sees of one clip: ``frames`` is a uint8 array (T, H, W, 3);
    ``indices`` are their positions in the source, which has ``total_frames`` at ``source_fps``."""

    path: Path
    frames: Any
    indices: tuple[int, ...]
    source_fps: float
    total_frames: int

    @property
    def timestamps(self) -> list[float]:
        """Seconds into the source clip of each sampled frame."""
        return [i / (self.source_fps or 1.0) for i in self.indices]


#: Video tokens a clip may become before a served judge runs out of context: the 32,768
#: tokens ``phyjudge serve-command`` gives vLLM (--max-model-len), less room for the prompt.
VIDEO_TOKEN_BUDGET = 30_000


class VideoTokenWarning(UserWarning):
    """A clip becomes more video tokens than a served judge's context holds."""


def video_tokens(count: int, height: int, width: int) -> int:
    """The video tokens ``count`` sampled frames of ``height`` x ``width`` become: one per
    merged 32x32 patch of each pair of frames."""
    side = IMAGE_PATCH_SIZE * SPATIAL_MERGE_SIZE
    return (count // MIN_FRAMES) * (height // side) * (width // side)


def warn_if_too_long(path: Path, count: int, height: int, width: int, fps: float) -> None:
    """Say so, with the numbers, when a clip will not fit a served judge's context."""
    tokens = video_tokens(count, height, width)
    if tokens > VIDEO_TOKEN_BUDGET:
        warnings.warn(
            VideoTokenWarning(
                f"Video {str(path)!r} becomes {tokens:,} video tokens ({count} frames at "
                f"{fps:g} fps, {width}x{height}), past the {VIDEO_TOKEN_BUDGET:,} that fit the "
                "32,768-token context of a judge served by 'phyjudge serve-command': the server "
                "will refuse it. Trim the clip, lower --fps, or serve with a larger "
                "--max-model-len."
            ),
            stacklevel=3,
        )


def undecodable(path: Path, exc: BaseException) -> VideoError:
    """The error for a file that no decoder can read (whichever decoder tried)."""
    detail = str(exc).splitlines()[0] if str(exc) else "no detail"
    return VideoError(
        f"Video {str(path)!r} cannot be decoded ({type(exc).__name__}: {detail}). It is not a "
        "video, or it is truncated or corrupt; re-encode it, e.g. 'ffmpeg -i IN -c:v libx264 "
        "OUT.mp4'.",
        path=path,
    )


#: The smallest frame side the judge reads: one merged vision patch (16 pixels, in pairs).
MIN_SIDE = IMAGE_PATCH_SIZE * SPATIAL_MERGE_SIZE


#: The most pixels a clip's frame may have: 8K UHD (7680x4320). The reference sampler
#: (decord) decodes each sampled frame whole before it scales it down to ``max_pixels``, so
#: a few KB of black 16384x16384 frames would take gigabytes; no generator renders larger.
MAX_FRAME_PIXELS = 7680 * 4320


def check_frame_size(path: Path, width: int, height: int) -> None:
    """A VideoError for frames smaller than one merged vision patch, which the reference
    sampler (decord) cannot resize, or larger than MAX_FRAME_PIXELS, which it cannot decode
    in bounded memory; both samplers refuse them alike."""
    if min(width, height) < MIN_SIDE:
        raise VideoError(
            f"Video {str(path)!r} is {width}x{height} pixels; the judge needs frames of at "
            f"least {MIN_SIDE}x{MIN_SIDE} (one merged vision patch). Render the clip larger.",
            path=path,
        )
    if width * height > MAX_FRAME_PIXELS:
        raise VideoError(
            f"Video {str(path)!r} is {width}x{height} pixels; the judge reads frames of at "
            "most 7680x4320 (8K UHD), and scales each down to its max_pixels setting anyway. "
            "Scale the clip down, e.g. 'ffmpeg -i IN -vf scale=1280:-2 OUT.mp4'.",
            path=path,
        )


def too_few_frames(path: Path, frames: int) -> VideoError:
    """The error for a clip shorter than the pair of frames the vision tower needs."""
    return VideoError(
        f"Video {str(path)!r} has {frames} frame(s); the judge needs at least {MIN_FRAMES} "
        "(it reads frames in pairs). Give it a real clip.",
        path=path,
    )


def frame_count(total_frames: int, source_fps: float, fps: float) -> int:
    """How many frames qwen-vl-utils samples at ``fps``: about ``fps`` a second, at least 4,
    never more than the clip has, rounded down to an even number."""
    low = math.ceil(_FPS_MIN_FRAMES / MIN_FRAMES) * MIN_FRAMES
    high = math.floor(min(_FPS_MAX_FRAMES, total_frames) / MIN_FRAMES) * MIN_FRAMES
    wanted = total_frames / source_fps * fps
    count = min(min(max(wanted, low), high), total_frames)
    return math.floor(count / MIN_FRAMES) * MIN_FRAMES


def sample_indices(total_frames: int, count: int) -> list[int]:
    """``count`` evenly spaced frame positions from the first to the last, rounded half to
    even; computed in float32 from both ends, as ``torch.linspace(...).round()`` does."""
    import numpy as np

    if count == 1:
        return [0]
    end = np.float32(total_frames - 1)
    step = end / np.float32(count - 1)
    steps = np.arange(count)
    from_start = step * steps.astype(np.float32)
    from_end = end - step * (count - 1 - steps).astype(np.float32)
    values = np.where(steps < count // 2, from_start, from_end)
    return [int(i) for i in np.rint(values)]


def _round_to(value: float, factor: int) -> int:
    return round(value / factor) * factor


def smart_resize(
    height: int, width: int, *, factor: int, min_pixels: int, max_pixels: float
) -> tuple[int, int]:
    """The frame size closest to ``height`` x ``width`` with both sides multiples of
    ``factor`` and the area within [min_pixels, max_pixels] (qwen-vl-utils' rule)."""
    if max(height, width) / min(height, width) > _MAX_RATIO:
        raise ValueError(f"aspect ratio above {_MAX_RATIO}: {width}x{height}")
    h_bar = max(factor, _round_to(height, factor))
    w_bar = max(factor, _round_to(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def model_seq_len() -> int:
    """The context length qwen-vl-utils reads from ``MODEL_SEQ_LEN`` (as it reads it,
    ``int(float(...))``); an InputError naming the variable for a value that is no number,
    which qwen-vl-utils would otherwise fail on with a bare ValueError when imported."""
    raw = os.environ.get(_SEQ_LEN_ENV)
    if raw is None:
        return _DEFAULT_SEQ_LEN
    try:
        return int(float(raw))
    except (ValueError, OverflowError):
        raise InputError(
            f"${_SEQ_LEN_ENV} is {raw[:40]!r}; qwen-vl-utils reads it as the judge's context "
            f"length in tokens, a number such as {_DEFAULT_SEQ_LEN}. Fix it, or unset it."
        ) from None


def frame_size(height: int, width: int, count: int, max_pixels: int) -> tuple[int, int]:
    """The (height, width) qwen-vl-utils resizes ``count`` frames of a clip to: at least
    128 and at most 768 merged patches a frame, within ``max_pixels`` and the context."""
    factor = IMAGE_PATCH_SIZE * SPATIAL_MERGE_SIZE
    min_pixels = _VIDEO_MIN_TOKENS * factor * factor
    seq_len = model_seq_len()
    total_pixels = seq_len * factor * factor * 0.9
    cap = max(
        min(_VIDEO_MAX_TOKENS * factor * factor, total_pixels / count * MIN_FRAMES),
        int(min_pixels * 1.05),
    )
    limit = min(max_pixels, cap)
    if limit < min_pixels:
        raise ValueError(f"max_pixels={max_pixels} is below the {min_pixels} a frame needs")
    return smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=limit)


def _count_frames(container: Any, stream: Any) -> int:
    """The clip's frame count: the container's, or its packets' where it keeps none."""
    if stream.frames:
        return int(stream.frames)
    total = sum(1 for packet in container.demux(stream) if packet.size)
    container.seek(0, stream=stream)
    return total


def _decode_wanted(
    container: Any, stream: Any, wanted: list[int], size: tuple[int, int]
) -> dict[int, Any]:
    """Decode up to the last wanted frame, keeping the wanted ones resized (bicubic,
    antialiased as torchvision's resize is) to ``size`` = (height, width)."""
    import numpy as np
    from PIL import Image

    keep, last, kept = set(wanted), max(wanted), {}
    height, width = size
    for position, frame in enumerate(container.decode(stream)):
        if position in keep:
            image = frame.to_image().convert("RGB")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BICUBIC)
            kept[position] = np.asarray(image, dtype=np.uint8)
        if position >= last:
            break
    return kept


def probe_container(path: Path) -> None:
    """A VideoError unless ``path`` opens as a container with a video stream (PyAV reads
    its header only: cheap whatever the file's size)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("the file holds no video stream")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise undecodable(path, exc) from exc


def read_frames(path: str | Path, *, fps: float, max_pixels: int) -> SampledFrames:
    """Sample ``path`` by qwen-vl-utils' rules with PyAV: the judge's frame count, positions and
    size; pixels within resampling error of ``decode_video``'s. VideoError when it cannot."""
    import av
    import numpy as np

    p = Path(path)
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise ValueError("the file holds no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            check_frame_size(p, stream.width, stream.height)
            total = _count_frames(container, stream)
            if total < MIN_FRAMES:
                raise too_few_frames(p, total)
            source_fps = float(stream.average_rate or stream.guessed_rate or 0) or 1.0
            count = frame_count(total, source_fps, fps)
            wanted = sample_indices(total, count)
            size = frame_size(stream.height, stream.width, count, max_pixels)
            kept = _decode_wanted(container, stream, wanted, size)
    except VideoError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise undecodable(p, exc) from exc
    if len(kept) < len(set(wanted)):
        raise undecodable(p, EOFError(f"only {len(kept)} of {count} wanted frames decoded"))
    frames = np.stack([kept[i] for i in wanted])
    warn_if_too_long(p, len(wanted), frames.shape[1], frames.shape[2], fps)
    return SampledFrames(p, frames, tuple(wanted), source_fps, total)
