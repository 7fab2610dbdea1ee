"""Contact sheets: the frames the judge saw of a failed video, in a grid, with timestamps.

A reviewer looks at one PNG instead of replaying a clip, and sees the same frames (same fps,
same resolution) as the judge did, not what a video player shows.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from pytest_phyjudge.engine.video import DEFAULT_FPS, DEFAULT_MAX_PIXELS, decode_video

THUMB_WIDTH = 240
COLUMNS = 4
_PAD = 6
_CAPTION = 14
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def sheet_name(nodeid: str, axis: str) -> str:
    """A file name for the sheet of one check, readable and safe on every filesystem."""
    stem = _UNSAFE.sub("_", nodeid).strip("_")[-120:] or "check"
    if not stem.endswith(axis):
        stem = f"{stem}__{axis}"
    return f"{stem}.png"


def write_contact_sheet(
    video: str | Path,
    out: str | Path,
    *,
    title: str,
    fps: float = DEFAULT_FPS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    columns: int = COLUMNS,
    thumb_width: int = THUMB_WIDTH,
) -> Path:
    """Decode ``video`` as the judge does (``fps``, ``max_pixels``) and write the frames as
    a grid PNG to ``out``, each labelled with its time in the clip, under ``title``."""
    from PIL import Image, ImageDraw, ImageFont

    with contextlib.redirect_stderr(io.StringIO()):  # qwen-vl-utils prints its backend
        decoded = decode_video(video, fps=fps, max_pixels=max_pixels)
    frames = decoded.frames.clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
    stamps = decoded.timestamps
    count = len(frames)
    height, width = frames.shape[1:3]
    thumb_height = max(1, round(height * thumb_width / width))
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    font = ImageFont.load_default()
    title_lines = title.splitlines() or [""]
    top = _PAD + len(title_lines) * _CAPTION + _PAD
    cell_w, cell_h = thumb_width + _PAD, thumb_height + _CAPTION + _PAD
    sheet = Image.new("RGB", (_PAD + columns * cell_w, top + rows * cell_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, line in enumerate(title_lines):
        draw.text((_PAD, _PAD + i * _CAPTION), line, fill=(240, 240, 240), font=font)
    for index, frame in enumerate(frames):
        row, col = divmod(index, columns)
        x, y = _PAD + col * cell_w, top + row * cell_h
        thumb = Image.fromarray(frame).resize((thumb_width, thumb_height), Image.BILINEAR)
        sheet.paste(thumb, (x, y))
        stamp = f"#{index}  t={stamps[index]:.2f}s" if index < len(stamps) else f"#{index}"
        draw.text((x, y + thumb_height + 1), stamp, fill=(200, 200, 200), font=font)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    sheet.save(partial, format="PNG")
    partial.replace(target)
    return target
