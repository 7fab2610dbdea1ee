"""Small browser-playable copies of the clips and their poster frames, so a report folder
stays small enough for a CI artifact and plays in any browser from disk."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor as Executor_
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pytest_phyjudge._exceptions import describe_error
from pytest_phyjudge._files import lies_within, not_a_file
from pytest_phyjudge._outputs import FolderNotOwned, OwnedFolder
from pytest_phyjudge.engine.video import sha256_file
from pytest_phyjudge.reporting.sheets import open_video, probe_clip

if TYPE_CHECKING:
    from PIL import Image

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
    """Re-encode ``source`` into ``target`` one frame at a time (decode, scale, encode: a
    long or large clip never sits in memory whole), and its middle frame into ``poster``."""
    import av

    name, container_format, _, options = encoder
    total, _ = probe_clip(source)
    # faststart: the MP4 index goes first, so playback starts before the file is read.
    muxer = {"movflags": "+faststart"} if container_format == "mp4" else {}
    middle: Image.Image | None = None
    with contextlib.ExitStack() as stack:
        inp = stack.enter_context(open_video(source))
        stream = inp.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        out = video = last = None
        size = (0, 0)
        for index, frame in enumerate(inp.decode(stream)):
            if out is None:
                size = preview_size(frame.width, frame.height)
                out = stack.enter_context(
                    av.open(str(target), mode="w", format=container_format, options=muxer)
                )
                video = out.add_stream(name, rate=Fraction(rate).limit_denominator(1001000))
                video.width, video.height, video.pix_fmt = *size, "yuv420p"
                video.options = dict(options)
            small = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            if index == total // 2:
                middle = small.to_image()
            last = small
            small.pts, small.time_base = index, video.codec_context.time_base or 1 / rate
            out.mux(video.encode(small))
        if out is None or last is None:
            raise ValueError("it has no frames")
        if middle is None:  # fewer frames than packets: the last one
            middle = last.to_image()
        out.mux(video.encode())
    middle.convert("RGB").save(poster, format="JPEG", quality=82)


def make_preview(source: str | Path | None, folder: OwnedFolder, prefix: str = "media") -> Preview:
    """The preview of ``source`` under ``prefix/`` in ``folder`` (see :func:`make_previews`)."""
    return make_previews([source], folder, prefix, workers=1)[0]


#: How previews are encoded side by side: on processes (the default: measured faster, see
#: ``benchmarks/tally/report-speed.txt``; started fresh, never forked from a run with torch's
#: threads) or threads (PyAV lets FFmpeg decode and encode without the GIL, but scaling and
#: the Python between frames hold it).
Executor = Literal["thread", "process"]
#: Fewer clips than this are encoded on threads: a fresh process takes about as long to
#: start as a clip takes to encode.
PROCESS_MIN_CLIPS = 8


def preview_workers() -> int:
    """Clips encoded at once: one per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class _Job:
    """One clip content to encode: its files' names, where they are written meanwhile (the
    folder's ``writing`` blocks, held open until the encoding ends) and its outcome."""

    path: Path
    video: str
    poster: str
    stack: contextlib.ExitStack
    temps: tuple[Path, Path]
    future: Future[None] | None = None


def make_previews(
    sources: Sequence[str | Path | None],
    folder: OwnedFolder,
    prefix: str = "media",
    *,
    workers: int | None = None,
    executor: Executor = "process",
    within: Sequence[str | Path] | None = None,
) -> list[Preview]:
    """The preview of each of ``sources`` under ``prefix/`` in ``folder``, made once per
    clip content: files are named by the clip's sha256, so a clip shown twice is encoded
    once and a rerun into the same folder re-encodes nothing (a file there is reused only
    when the folder's manifest says it wrote it). The clips are encoded side by side on
    ``workers`` (default: one per core); the folder is only touched from this thread. A
    missing or undecodable clip gives a Preview that says why, never an exception; so does
    a clip outside every folder of ``within`` (links followed) when it is given: a report
    read from elsewhere shows only clips where its reader allows (never a file it merely
    names, say a private video on the runner)."""
    encoder = None
    found: list[Preview | _Job] = []
    jobs: dict[str, _Job] = {}
    for source in sources:
        if source is None:
            found.append(Preview(error="no clip was recorded for this case"))
            continue
        path = Path(source)
        if within is not None and not lies_within(path, within):
            shown = ", ".join(repr(os.path.realpath(root)) for root in within)
            found.append(
                Preview(
                    error=f"the clip {str(path)!r} lies outside {shown}, the "
                    "folders clips are shown from (phyjudge report --clips DIR "
                    "adds one)"
                )
            )
            continue
        kind = not_a_file(path)
        if kind is not None or not path.is_file():
            what = f"is {kind}, not a video file" if kind else "is missing"
            found.append(Preview(error=f"the clip {str(path)!r} {what}"))
            continue
        try:
            encoder = encoder or pick_encoder()
            key = f"{sha256_file(path)[:20]}-v{PREVIEW_VERSION}"
            video, poster = f"{prefix}/{key}.{encoder[1]}", f"{prefix}/{key}.jpg"
            if key in jobs:
                found.append(jobs[key])
            elif folder.owns(video) and folder.owns(poster):
                folder.keep(video)
                folder.keep(poster)
                found.append(Preview(video=video, poster=poster, mime=encoder[2]))
            else:
                stack = contextlib.ExitStack()
                temps = (stack.enter_context(folder.writing(video)),)
                temps += (stack.enter_context(folder.writing(poster)),)
                jobs[key] = _Job(path, video, poster, stack, temps)  # type: ignore[arg-type]
                found.append(jobs[key])
        except FolderNotOwned:
            _abandon(jobs.values())
            raise  # the folder, not the clip: the whole report stops with the reason
        except Exception as exc:  # a report keeps every case: the clip's trouble is shown
            found.append(_refused(path, exc))
    if jobs and encoder is not None:
        _encode_all(list(jobs.values()), encoder, workers or preview_workers(), executor)
    done = {id(job): _finish(job, encoder) for job in jobs.values()}  # type: ignore[arg-type]
    return [done[id(item)] if isinstance(item, _Job) else item for item in found]


def _refused(path: Path, exc: BaseException) -> Preview:
    return Preview(error=f"the clip {str(path)!r} could not be re-encoded ({describe_error(exc)})")


def _encode_all(
    jobs: list[_Job], encoder: tuple[str, ...], workers: int, executor: Executor
) -> None:
    """Start every job's encoding, ``workers`` at a time (in this thread for one)."""
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            future: Future[None] = Future()
            try:
                _encode(job.path, *job.temps, encoder)
                future.set_result(None)
            except Exception as exc:
                future.set_exception(exc)
            job.future = future
        return
    if len(jobs) < PROCESS_MIN_CLIPS:  # starting processes would cost about a clip's time
        executor = "thread"
    with _pool(executor, min(workers, len(jobs))) as pool:
        for job in jobs:
            job.future = pool.submit(_encode, job.path, *job.temps, encoder)
        wait([job.future for job in jobs if job.future is not None])


def _pool(executor: Executor, workers: int) -> Executor_:
    """A pool of ``workers``: processes started fresh (spawn), or threads where processes
    cannot be started here (no semaphores in a sandbox, say)."""
    if executor == "process":
        import multiprocessing

        try:
            return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        except (OSError, NotImplementedError, ImportError):
            pass
    return ThreadPoolExecutor(workers, thread_name_prefix="phyjudge-preview")


def _finish(job: _Job, encoder: tuple[str, str, str, dict[str, str]]) -> Preview:
    """The job's files renamed into place, or removed with the reason shown instead."""
    assert job.future is not None
    error = job.future.exception()
    if error is None:
        job.stack.close()
        return Preview(video=job.video, poster=job.poster, mime=encoder[2])
    job.stack.__exit__(type(error), error, error.__traceback__)  # the temporary files go
    return _refused(job.path, error)


def _abandon(jobs: Iterable[_Job]) -> None:
    error = RuntimeError("abandoned")
    for job in jobs:
        job.stack.__exit__(RuntimeError, error, None)


# --------------------------------------------------------------------------- images

#: A contact sheet is a few MB at most; a file over this is refused before it is read.
MAX_IMAGE_BYTES = 32 * 1024 * 1024
#: A sheet of 16 thumbnails per sample is under 2 Mpx; this leaves room for many samples.
MAX_IMAGE_PIXELS = 40_000_000


class MediaRefused(Exception):
    """Why a file named by a report is not shown: the end of a sentence naming the file."""


def reencode_image(path: str | Path, within: str | Path) -> bytes:
    """The PNG bytes of the image at ``path``, decoded with Pillow and encoded again (never
    its own bytes), provided it lies inside ``within`` (after following links), is a regular
    file of at most :data:`MAX_IMAGE_BYTES` and a PNG or JPEG of at most
    :data:`MAX_IMAGE_PIXELS`. The checks come before the file is opened, so a pipe, a device
    or a file elsewhere is never read; MediaRefused says which check failed."""
    import io
    import os
    import stat
    import warnings

    from PIL import Image

    real = Path(os.path.realpath(path))
    if not lies_within(real, [within]):
        raise MediaRefused(
            f"lies outside {os.path.realpath(within)!r}, the folder of the report that lists "
            "it (only files there are shown)"
        )
    kind = not_a_file(real)
    if kind is not None:
        raise MediaRefused(f"is {kind}, not an image")
    try:
        size = os.stat(real).st_size
    except FileNotFoundError:
        raise MediaRefused("is missing") from None
    if size > MAX_IMAGE_BYTES:
        raise MediaRefused(f"is larger than {MAX_IMAGE_BYTES // 2**20} MiB, more than a sheet")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise MediaRefused(f"cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):  # swapped since the check
            raise MediaRefused("is no longer a regular file")
        data = file.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise MediaRefused(f"is larger than {MAX_IMAGE_BYTES // 2**20} MiB, more than a sheet")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=("PNG", "JPEG")) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise MediaRefused(
                        f"has {image.width}x{image.height} pixels, more than "
                        f"{MAX_IMAGE_PIXELS:,} (a sheet has a few million)"
                    )
                image.load()
                rgb = image.convert("RGB")
    except MediaRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRefused(
            f"declares more pixels than {MAX_IMAGE_PIXELS:,} (a decompression bomb, or no sheet)"
        ) from None
    except Exception as exc:  # Pillow raises many kinds for a file that is no image
        raise MediaRefused(f"is not a PNG or JPEG image ({type(exc).__name__})") from None
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return out.getvalue()
