"""Small browser-playable copies of the clips and their poster frames, so a report folder
stays small enough for a CI artifact and plays in any browser from disk."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pytest_phyjudge._exceptions import describe_error
from pytest_phyjudge.engine.video import sha256_file
from pytest_phyjudge.reporting.sheets import open_video

#: The tallest preview: 360p keeps a report of dozens of clips at a few MB.
MAX_HEIGHT = 360
MAX_WIDTH = 640
#: Encoders in order of preference, with the container and MIME type each goes in. H.264 in
#: MP4 plays in every mainstream browser (Debian's Chromium included); VP9 in WebM in every
#: Chromium and Firefox build, when an FFmpeg lacks libx264.
ENCODERS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("libx264", "mp4", "video/mp4", {"crf": "28", "preset": "veryfast"}),
    ("libvpx-vp9", "webm", "video/webm", {"crf": "36", "b": "0", "deadline": "realtime"}),
)
#: Bump when the encoding changes, so that cached previews of the old kind are made again.
PREVIEW_VERSION = 1


@dataclass(frozen=True)
class Preview:
    """A clip's preview files (relative to the report folder), or why there is none."""

    video: str | None = None
    poster: str | None = None
    mime: str | None = None
    error: str | None = None


def pick_encoder() -> tuple[str, str, str, dict[str, str]]:
    """The first encoder of :data:`ENCODERS` that this PyAV's FFmpeg has."""
    import av

    for encoder in ENCODERS:
        try:
            av.codec.Codec(encoder[0], "w")
        except Exception:  # av raises UnknownCodecError (a ValueError) or FFmpegError
            continue
        return encoder
    names = ", ".join(e[0] for e in ENCODERS)
    raise RuntimeError(f"PyAV's FFmpeg has none of the encoders {names}; install a PyAV wheel.")


def preview_size(width: int, height: int) -> tuple[int, int]:
    """The clip's size scaled down (never up) to fit 640x360, both sides even (yuv420p)."""
    scale = min(1.0, MAX_HEIGHT / height, MAX_WIDTH / width)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _encode(source: Path, target: Path, poster: Path, encoder: tuple[str, ...]) -> None:
    import av

    name, container_format, _, options = encoder
    with open_video(source) as inp:
        stream = inp.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        frames = list(inp.decode(stream))
    if not frames:
        raise ValueError("it has no frames")
    width, height = preview_size(frames[0].width, frames[0].height)
    partial = target.with_name(f".{target.name}.partial")
    # faststart: the MP4 index goes first, so playback starts before the file is read.
    muxer = {"movflags": "+faststart"} if container_format == "mp4" else {}
    with av.open(str(partial), mode="w", format=container_format, options=muxer) as out:
        video = out.add_stream(name, rate=Fraction(rate).limit_denominator(1001000))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = dict(options)
        for index, frame in enumerate(frames):
            small = frame.reformat(width=width, height=height, format="yuv420p")
            small.pts, small.time_base = index, video.codec_context.time_base or 1 / rate
            out.mux(video.encode(small))
        out.mux(video.encode())
    middle = frames[len(frames) // 2].reformat(width=width, height=height).to_image()
    middle.convert("RGB").save(poster, format="JPEG", quality=82)
    partial.replace(target)


def make_preview(source: str | Path | None, folder: Path, prefix: str = "media") -> Preview:
    """The preview of ``source`` under ``folder/prefix``, made once per clip content: files
    are named by the clip's sha256, so a rerun into the same folder re-encodes nothing.
    A missing or undecodable clip gives a Preview that says why, never an exception."""
    if source is None:
        return Preview(error="no clip was recorded for this case")
    path = Path(source)
    if not path.is_file():
        return Preview(error=f"the clip {str(path)!r} is missing")
    try:
        encoder = pick_encoder()
        key = f"{sha256_file(path)[:20]}-v{PREVIEW_VERSION}"
        media = folder / prefix
        media.mkdir(parents=True, exist_ok=True)
        video = media / f"{key}.{encoder[1]}"
        poster = media / f"{key}.jpg"
        if not (video.is_file() and poster.is_file()):
            _encode(path, video, poster, encoder)
    except Exception as exc:  # a report keeps every case: the clip's trouble is shown instead
        why = describe_error(exc)
        return Preview(error=f"the clip {str(path)!r} could not be re-encoded ({why})")
    return Preview(
        video=f"{prefix}/{video.name}", poster=f"{prefix}/{poster.name}", mime=encoder[2]
    )
