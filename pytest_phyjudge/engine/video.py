"""Video files as the judge sees them: checked, hashed, and sampled through qwen-vl-utils
(or, without the ``[local]`` extra, by the same rules with PyAV)."""

from __future__ import annotations

import difflib
import itertools
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import VideoError
from pytest_phyjudge.engine.adapter import file_sha256
from pytest_phyjudge.engine.extras import VIDEO_MODULES, local_available, require_local
from pytest_phyjudge.engine.frames import (
    IMAGE_PATCH_SIZE,
    MIN_FRAMES,
    MIN_SIDE,
    SampledFrames,
    check_frame_size,
    model_seq_len,
    probe_container,
    read_frames,
    too_few_frames,
    undecodable,
    warn_if_too_long,
)

#: The reference script's sampling: 2 frames a second, at most 360x640 pixels a frame.
DEFAULT_FPS = 2.0
DEFAULT_MAX_PIXELS = 360 * 640
#: Decoded clips kept in memory (a 5 s clip at 360x640 is about 30 MB as float frames).
DECODED_CACHE_SIZE = 8
#: qwen-vl-utils reads its video backend from this variable once, when first imported.
_READER_ENV = "FORCE_QWENVL_VIDEO_READER"


#: Names of a folder read at most for a did-you-mean (a huge folder is not listed whole).
_NAMES_READ = 5000


def similar_video(path: str | Path) -> str:
    """`` Did you mean 'DIR/x.mp4'?`` for the closest file name beside a missing ``path``
    (another case, a typo, a ``<generator>__`` prefix), or nothing when none is close or the
    folder cannot be listed."""
    p = Path(path)
    try:
        with os.scandir(p.parent if str(p.parent) else ".") as entries:
            names = [e.name for e in itertools.islice(entries, _NAMES_READ) if e.is_file()]
    except OSError:
        return ""
    close = [n for n in names if n.lower() == p.name.lower()]
    close = close or difflib.get_close_matches(p.name, names, n=1, cutoff=0.6)
    close = close or [n for n in names if n.endswith(p.name) or p.stem in n]
    return f" Did you mean {str(p.parent / sorted(close)[0])!r}?" if close else ""


def check_video_file(path: str | Path) -> Path:
    """Cheap checks that ``path`` could be a video: it exists, is a file and is not empty."""
    p = Path(path)
    try:
        p.stat()
    except (FileNotFoundError, NotADirectoryError):
        pass  # said below, with the current directory
    except OSError as exc:  # a name too long, a loop of links, no permission
        raise VideoError(
            f"Video {str(p)!r} cannot be looked up ({exc.strerror or exc}). Check the path.",
            path=p,
        ) from None
    if not p.exists():
        raise VideoError(
            f"Video {str(p)!r} does not exist.{similar_video(p)} Check the path (relative "
            f"paths are taken from the current directory, {os.getcwd()!r}).",
            path=p,
        )
    if p.is_dir():
        raise VideoError(
            f"Video {str(p)!r} is a directory, not a video file. Point at one .mp4 file, or "
            "use 'phyjudge score-dir' for a folder of videos.",
            path=p,
        )
    if not p.is_file():
        raise VideoError(
            f"Video {str(p)!r} is not a regular file (a pipe, a device or a socket); point at "
            "an .mp4 file on disk.",
            path=p,
        )
    try:
        with open(p, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise VideoError(
            f"Video {str(p)!r} cannot be read ({exc.strerror or exc}). Check its permissions, "
            "or copy it somewhere this process can read.",
            path=p,
        ) from exc
    if p.stat().st_size == 0:
        raise VideoError(
            f"Video {str(p)!r} is an empty (zero-byte) file: the generator or copy that made "
            "it did not finish. Re-create the file.",
            path=p,
        )
    return p


@lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(Path(path))


#: Files larger than this are checked to be videos before their bytes are hashed, so that a
#: huge file that is no video (a sparse disk image, say) is refused at once, not read whole.
PROBE_BEFORE_HASHING = 256 * 1024 * 1024


def sha256_file(path: str | Path) -> str:
    """sha256 of a file's bytes, memoised by (path, size, mtime) so reruns cost a stat."""
    p = check_video_file(path)
    st = p.stat()
    if st.st_size > PROBE_BEFORE_HASHING:
        probe_container(p)
    return _sha256_cached(str(p.resolve()), st.st_size, st.st_mtime_ns)


def video_element(path: str | Path, *, fps: float, max_pixels: int) -> dict[str, Any]:
    """The chat-message item for a video, with the judge's sampling settings."""
    return {"type": "video", "video": str(Path(path)), "fps": fps, "max_pixels": max_pixels}


@dataclass(frozen=True)
class DecodedVideo:
    """Frames sampled for the judge (T, C, H, W float tensor) and their source metadata."""

    path: Path
    frames: Any
    metadata: dict[str, Any]

    @property
    def timestamps(self) -> list[float]:
        """Seconds into the source clip of each sampled frame."""
        fps = float(self.metadata.get("fps") or 1.0)
        return [i / fps for i in self.metadata.get("frames_indices", [])]


def require_sampler(what: str) -> None:
    """Import what the judge's exact sampling needs (qwen-vl-utils on decord), or raise the
    JudgeLoadError that says how to install it; ``what`` names the caller's purpose."""
    os.environ.setdefault(_READER_ENV, "decord")  # before qwen-vl-utils' first import
    model_seq_len()  # which qwen-vl-utils reads on import, and fails on unnamed
    require_local(what, VIDEO_MODULES)


def _header_size(path: Path) -> tuple[int, int] | None:
    """The (width, height) the clip's header gives, read with PyAV without decoding a frame;
    None when PyAV cannot tell (decord then names the problem)."""
    import av

    try:
        with av.open(str(path)) as container:
            streams = container.streams.video
            return (streams[0].width, streams[0].height) if streams else None
    except Exception:  # PyAV raises its own errors (and OSError) for what it cannot open
        return None


def _probe(path: Path) -> int:
    """Open ``path`` with decord and return its frame count; VideoError when it cannot."""
    import decord

    size = _header_size(path)
    if size is not None and all(size):  # before decord decodes a frame of any size whole
        check_frame_size(path, *size)
    try:
        reader = decord.VideoReader(str(path))
        frames = len(reader)
        if frames:
            reader[frames - 1]  # a truncated file often fails only at its end
        height, width = reader[0].shape[:2] if frames else (MIN_SIDE, MIN_SIDE)
    except Exception as exc:  # decord raises its own DECORDError and RuntimeError
        raise undecodable(path, exc) from exc
    check_frame_size(path, width, height)
    if frames < MIN_FRAMES:
        raise too_few_frames(path, frames)
    return frames


def decode_video(
    path: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DecodedVideo:
    """Sample a video exactly as the reference script does: decord through qwen-vl-utils
    (the ``[local]`` extra; JudgeLoadError without it).

    Decoded clips are kept in a small LRU keyed by (path, size, mtime, fps, max_pixels), so
    a clip judged on several axes, or by several tests, is decoded once per session.
    """
    p = check_video_file(path)
    require_sampler("Decoding a video the judge's way (decode_video)")
    st = p.stat()
    return _decode(str(p.resolve()), st.st_size, st.st_mtime_ns, float(fps), int(max_pixels))


@lru_cache(maxsize=DECODED_CACHE_SIZE)
def _decode(path: str, size: int, mtime_ns: int, fps: float, max_pixels: int) -> DecodedVideo:
    p = Path(path)
    _probe(p)
    from qwen_vl_utils import process_vision_info

    messages = [{"role": "user", "content": [video_element(p, fps=fps, max_pixels=max_pixels)]}]
    try:
        _, videos, _ = process_vision_info(
            messages,
            return_video_kwargs=True,
            return_video_metadata=True,
            image_patch_size=IMAGE_PATCH_SIZE,
        )
    except Exception as exc:
        raise VideoError(
            f"Video {str(p)!r} could not be sampled at fps={fps}, max_pixels={max_pixels} "
            f"({type(exc).__name__}: {exc}). Check that the clip is a normal H.264/MP4 video.",
            path=p,
        ) from exc
    frames, metadata = videos[0]
    warn_if_too_long(p, frames.shape[0], frames.shape[2], frames.shape[3], fps)
    return DecodedVideo(path=p, frames=frames, metadata=dict(metadata))


def sample_frames(
    path: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> SampledFrames:
    """The frames the judge sees of ``path`` as uint8 (T, H, W, 3), in any install.

    With the ``[local]`` extra these are ``decode_video``'s own frames, so an in-process judge
    and a server sent them see identical pixels; without it, PyAV samples by the same rules
    (same count, positions and size; pixels within resampling error).
    """
    p = check_video_file(path)
    return _sample(p, fps=fps, max_pixels=max_pixels, exact=local_available(VIDEO_MODULES))


def _sample(p: Path, *, fps: float, max_pixels: int, exact: bool) -> SampledFrames:
    if not exact:
        return read_frames(p, fps=fps, max_pixels=max_pixels)
    decoded = decode_video(p, fps=fps, max_pixels=max_pixels)
    frames = decoded.frames.round().clamp(0, 255).byte().permute(0, 2, 3, 1).contiguous().numpy()
    meta = decoded.metadata
    return SampledFrames(
        path=p,
        frames=frames,
        indices=tuple(int(i) for i in meta["frames_indices"]),
        source_fps=float(meta["fps"]),
        total_frames=int(meta["total_num_frames"]),
    )


#: A lossless H.264 in RGB: the frames a server decodes are the frames sampled here.
SAMPLED_CODEC = "libx264rgb"
SAMPLED_CLIPS_CACHED = 4


def sampled_clip(
    path: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> bytes:
    """The frames the judge samples from ``path`` (see ``sample_frames``), re-encoded as an
    MP4 at ``fps``.

    This is what a judge server is sent instead of the original clip: only the frames it
    would keep, already sized, losslessly coded (H.264 in RGB, so no colour subsampling).
    A server sampling this clip at ``fps`` reads back exactly these pixels. Encoded clips are
    kept in a small LRU, so the many axes of one video are encoded once.
    """
    p = check_video_file(path)
    st = p.stat()
    exact = local_available(VIDEO_MODULES)
    return _sampled_clip(
        str(p.resolve()), st.st_size, st.st_mtime_ns, float(fps), int(max_pixels), exact
    )


@lru_cache(maxsize=SAMPLED_CLIPS_CACHED)
def _sampled_clip(
    path: str, size: int, mtime_ns: int, fps: float, max_pixels: int, exact: bool
) -> bytes:
    import io
    from fractions import Fraction

    import av

    frames = _sample(Path(path), fps=fps, max_pixels=max_pixels, exact=exact).frames
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream(SAMPLED_CODEC, rate=Fraction(fps).limit_denominator(1000))
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "rgb24"
        stream.options = {"qp": "0", "preset": "ultrafast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()
