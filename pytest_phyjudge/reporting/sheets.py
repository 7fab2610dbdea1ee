"""Contact sheets: a failed clip's frames in one PNG, read with PyAV (no model stack)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_phyjudge._exceptions import VideoError
from pytest_phyjudge.reporting.checks import Check

if TYPE_CHECKING:
    from PIL import Image, ImageFont

    Font = ImageFont.ImageFont | ImageFont.FreeTypeFont

THUMB_WIDTH = 240
COLUMNS = 4
#: Frames shown per second of clip: the judge's default sampling rate, so a sheet shows
#: about as many frames as the judge saw (not the same pixels: sheets are thumbnails).
DEFAULT_FPS = 2.0
#: A short clip still shows this many frames (when it has them), as the judge sees at least 4.
MIN_FRAMES = 4
#: A long clip is shown sparser rather than on a sheet nobody can read.
MAX_FRAMES = 16
_PAD = 6
_LINE = 14
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def sheets_dir(report: Path | None) -> Path | None:
    """Contact sheets go beside the JSON report, in ``<report stem>-sheets/``."""
    if report is None:
        return None
    return report.parent / f"{report.stem}-sheets"


def sheet_name(nodeid: str, axis: str) -> str:
    """A file name for the sheet of one check, readable and safe on every filesystem."""
    stem = _UNSAFE.sub("_", nodeid).strip("_")[-120:] or "check"
    if not stem.endswith(axis):
        stem = f"{stem}__{axis}"
    return f"{stem}.png"


def check_title(check: Check) -> str:
    """The sheet's heading: the test, the verdict and judge, and the whole caption."""
    verdict = "no score" if check.score is None else f"{check.score} < {check.min_score}"
    if check.summary is not None:
        summary = check.summary
        verdict = f"{summary['met']}/{summary['n']} samples reach {check.min_score}"
    judge = f"   judge: {check.judge.describe()}" if check.judge is not None else ""
    return f"{check.nodeid}\n{check.axis}: {verdict}{judge}\n{check.caption}"


def sheet_for_check(check: Check, folder: Path, suffix: str = "") -> Path | None:
    """Write the sheet of a failed check into ``folder``; None when its video is no file.
    Raises what reading the video or writing the PNG raised."""
    if check.video is None or not Path(check.video).is_file():
        return None
    fps = (check.settings or {}).get("fps") or DEFAULT_FPS
    out = folder / sheet_name(check.nodeid, check.axis + suffix)
    return write_contact_sheet(check.video, out, title=check_title(check), fps=float(fps))


# --------------------------------------------------------------------------- reading frames


def _open(path: Path) -> Any:
    """The container of ``path``; PyAV's errors become a VideoError naming the file."""
    import av

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise VideoError(
            f"Video {str(path)!r} cannot be read as a video ({exc}). Check that the file is a "
            "complete video (an .mp4 the generator finished writing).",
            path=path,
        ) from exc
    if not container.streams.video:
        container.close()
        raise VideoError(
            f"Video {str(path)!r} has no video stream (is it an audio file?). Point the test "
            "at the video file.",
            path=path,
        )
    return container


def _probe(path: Path) -> tuple[int, float]:
    """How many frames the clip has and how long it lasts (seconds), from its packets
    (container headers often lack or misstate the frame count)."""
    import av

    with _open(path) as container:
        stream = container.streams.video[0]
        try:
            frames = sum(1 for packet in container.demux(stream) if packet.size)
        except av.error.FFmpegError as exc:
            raise _damaged(path, exc) from exc
        rate = stream.average_rate or stream.guessed_rate
    return frames, (frames / float(rate) if rate else 0.0)


def _damaged(path: Path, exc: Exception) -> VideoError:
    return VideoError(
        f"Video {str(path)!r} is damaged: reading it failed ({exc}). Re-create the file.",
        path=path,
    )


def _frames(path: str | Path, count: int) -> list[Image.Image]:
    """``count`` evenly spaced frames of the clip as RGB images (fewer if it has fewer), each
    with its time in the clip in ``image.info["time"]``."""
    import av

    path = Path(path)
    total, _ = _probe(path)
    count = min(count, total)
    # The middle frame of each of ``count`` equal spans: evenly spaced, never the same twice.
    wanted = {int((i + 0.5) * total / count) for i in range(count)} if count else set()
    images: list[Image.Image] = []
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    image = frame.to_image()
                    image.info["time"] = frame.time
                    images.append(image)
                    if len(images) == len(wanted):
                        break
        except av.error.FFmpegError as exc:
            raise _damaged(path, exc) from exc
    if not images:
        raise VideoError(f"Video {str(path)!r} has no frames. Re-create the file.", path=path)
    return images


# --------------------------------------------------------------------------- drawing


def _split_word(word: str, font: Font, width: int) -> list[str]:
    """A word wider than a line (a long node id, a path) in pieces that fit."""
    pieces = []
    while len(word) > 1 and font.getlength(word) > width:
        cut = len(word) - 1
        while cut > 1 and font.getlength(word[:cut]) > width:
            cut -= 1
        pieces.append(word[:cut])
        word = word[cut:]
    return [*pieces, word]


def _wrap(text: str, font: Font, width: int) -> list[str]:
    """``text`` in lines no wider than ``width`` pixels, broken at spaces where it can,
    keeping its own line breaks: a long caption is shown whole, never cut."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            *whole, word = _split_word(word, font, width)
            if whole:
                lines += [line, *whole] if line else whole
                line = ""
            candidate = f"{line} {word}" if line else word
            if line and font.getlength(candidate) > width:
                lines.append(line)
                candidate = word
            line = candidate
        lines.append(line)
    return lines


def _frame_count(video: Path, fps: float) -> int:
    _, seconds = _probe(video)
    return max(MIN_FRAMES, min(MAX_FRAMES, round(seconds * fps)))


def write_contact_sheet(
    video: str | Path,
    out: str | Path,
    *,
    title: str,
    fps: float = DEFAULT_FPS,
    columns: int = COLUMNS,
    thumb_width: int = THUMB_WIDTH,
) -> Path:
    """Write about ``fps`` evenly spaced frames a second of ``video`` as a grid PNG to
    ``out``, each labelled with its time in the clip, under ``title`` (wrapped to fit)."""
    from PIL import Image, ImageDraw, ImageFont

    video = Path(video)
    frames = _frames(video, _frame_count(video, fps))
    count = len(frames)
    width, height = frames[0].size
    thumb_height = max(1, round(height * thumb_width / width))
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    font = ImageFont.load_default()
    cell_w, cell_h = thumb_width + _PAD, thumb_height + _LINE + _PAD
    sheet_width = _PAD + columns * cell_w
    title_lines = _wrap(title, font, sheet_width - 2 * _PAD)
    top = _PAD + len(title_lines) * _LINE + _PAD
    sheet = Image.new("RGB", (sheet_width, top + rows * cell_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, line in enumerate(title_lines):
        draw.text((_PAD, _PAD + i * _LINE), line, fill=(240, 240, 240), font=font)
    for index, frame in enumerate(frames):
        row, col = divmod(index, columns)
        x, y = _PAD + col * cell_w, top + row * cell_h
        thumb = frame.convert("RGB").resize((thumb_width, thumb_height), Image.BILINEAR)
        sheet.paste(thumb, (x, y))
        time = frame.info.get("time")
        stamp = f"#{index}" if time is None else f"#{index}  t={time:.2f}s"
        draw.text((x, y + thumb_height + 1), stamp, fill=(200, 200, 200), font=font)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    sheet.save(partial, format="PNG")
    partial.replace(target)
    return target
