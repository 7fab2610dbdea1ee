"""Contact sheets: a case's frames (every sample's) in one PNG, read with PyAV (no model stack)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_phyjudge._exceptions import VideoError
from pytest_phyjudge._outputs import OwnedFolder, file_part
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


def sheet_name(nodeid: str, key: tuple[str | None, ...] | None = None) -> str:
    """A file name for a case's sheet, readable and safe on every filesystem, and unique by
    construction: the readable part is cut and its characters replaced, so the sha256 of the
    full case key (``case_key``; the node id when none is given) follows it."""
    stem = file_part(nodeid)
    full = json.dumps(list(key) if key is not None else [nodeid], ensure_ascii=True)
    return f"{stem}-{hashlib.sha256(full.encode()).hexdigest()[:16]}.png"


def case_nodeid(check: Check) -> str:
    """The node id of the check's case (a suite item's id without its axis), or its test's."""
    if check.case and check.nodeid.endswith(f"::{check.axis}"):
        return check.nodeid[: -len(check.axis) - 2]
    return check.nodeid


def case_key(check: Check) -> tuple[str | None, ...]:
    """What one sheet (and one row of ``scores.json``) covers: a suite case, by its node id
    (two suite files of one name in two folders are two cases), or one clip and caption of a
    test function."""
    if check.case:
        return ("case", case_nodeid(check))
    return ("video", check.nodeid, check.video, check.caption)


def case_clips(check: Check) -> list[tuple[str, Path]]:
    """The case's clips with their labels: every sample's, or its one clip."""
    if check.samples is None:
        return [("", Path(check.video))] if check.video else []
    clips = []
    for sample in check.samples:
        seed = "" if sample.get("seed") is None else f", seed {sample['seed']}"
        if sample.get("video"):
            clips.append((f"sample {sample['sample']}{seed}", Path(sample["video"])))
    return clips


def case_title(check: Check) -> str:
    """The sheet's heading: the case, its judge, and the whole caption."""
    judge = f"   judge: {check.judge.describe(portable=True)}" if check.judge is not None else ""
    return f"{case_nodeid(check)}{judge}\n{check.caption}"


def sheet_for_case(check: Check, folder: OwnedFolder, prefix: str = "") -> str | None:
    """Write the sheet of ``check``'s case (all its samples) into ``folder`` (under
    ``prefix``), named by its case key; its name in the folder, or None when no clip of it
    is a file. Raises what
    reading a video or writing the PNG raised, and FolderNotOwned for a name it may not write."""
    clips = [(label, path) for label, path in case_clips(check) if path.is_file()]
    if not clips:
        return None
    fps = (check.settings or {}).get("fps") or DEFAULT_FPS
    name = prefix + sheet_name(case_nodeid(check), case_key(check))
    sheet = draw_contact_sheet(clips, title=case_title(check), fps=float(fps))
    with folder.writing(name) as temp:
        sheet.save(temp, format="PNG")
    return name


# --------------------------------------------------------------------------- reading frames


def open_video(path: Path) -> Any:
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


def probe_clip(path: Path) -> tuple[int, float]:
    """How many frames the clip has and how long it lasts (seconds), from its packets
    (container headers often lack or misstate the frame count)."""
    import av

    with open_video(path) as container:
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
    total, _ = probe_clip(path)
    count = min(count, total)
    # The middle frame of each of ``count`` equal spans: evenly spaced, never the same twice.
    wanted = {int((i + 0.5) * total / count) for i in range(count)} if count else set()
    images: list[Image.Image] = []
    with open_video(path) as container:
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
    _, seconds = probe_clip(video)
    return max(MIN_FRAMES, min(MAX_FRAMES, round(seconds * fps)))


Clips = str | Path | Sequence[tuple[str, str | Path]]


def _labelled(video: Clips) -> list[tuple[str, Path]]:
    if isinstance(video, (str, Path)):
        return [("", Path(video))]
    return [(label, Path(path)) for label, path in video]


def write_contact_sheet(
    video: Clips,
    out: str | Path,
    *,
    title: str,
    fps: float = DEFAULT_FPS,
    columns: int = COLUMNS,
    thumb_width: int = THUMB_WIDTH,
) -> Path:
    """Write about ``fps`` evenly spaced frames a second of ``video`` as a grid PNG to
    ``out``, each labelled with its time in the clip, under ``title`` (wrapped to fit).
    ``video`` is one clip, or several ``(label, clip)`` pairs (a case's samples): each
    then starts a new row, under its label."""
    sheet = draw_contact_sheet(
        video, title=title, fps=fps, columns=columns, thumb_width=thumb_width
    )
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    sheet.save(partial, format="PNG")
    partial.replace(target)
    return target


def draw_contact_sheet(
    video: Clips,
    *,
    title: str,
    fps: float = DEFAULT_FPS,
    columns: int = COLUMNS,
    thumb_width: int = THUMB_WIDTH,
) -> Image.Image:
    """The contact sheet of :func:`write_contact_sheet` as an image, written nowhere."""
    from PIL import Image, ImageDraw, ImageFont

    clips = [(label, _frames(path, _frame_count(path, fps))) for label, path in _labelled(video)]
    width, height = clips[0][1][0].size
    thumb_height = max(1, round(height * thumb_width / width))
    columns = max(1, min(columns, max(len(frames) for _, frames in clips)))
    font = ImageFont.load_default()
    cell_w, cell_h = thumb_width + _PAD, thumb_height + _LINE + _PAD
    sheet_width = _PAD + columns * cell_w
    title_lines = _wrap(title, font, sheet_width - 2 * _PAD)
    top = _PAD + len(title_lines) * _LINE + _PAD
    blocks = [
        (_LINE if label else 0) + -(-len(frames) // columns) * cell_h for label, frames in clips
    ]
    sheet = Image.new("RGB", (sheet_width, top + sum(blocks)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, line in enumerate(title_lines):
        draw.text((_PAD, _PAD + i * _LINE), line, fill=(240, 240, 240), font=font)
    for (label, frames), block in zip(clips, blocks, strict=True):
        if label:
            draw.text((_PAD, top), label, fill=(250, 210, 120), font=font)
        first = top + (_LINE if label else 0)
        for index, frame in enumerate(frames):
            row, col = divmod(index, columns)
            x, y = _PAD + col * cell_w, first + row * cell_h
            thumb = frame.convert("RGB").resize((thumb_width, thumb_height), Image.BILINEAR)
            sheet.paste(thumb, (x, y))
            time = frame.info.get("time")
            stamp = f"#{index}" if time is None else f"#{index}  t={time:.2f}s"
            draw.text((x, y + thumb_height + 1), stamp, fill=(200, 200, 200), font=font)
        top += block
    return sheet
