"""Writes the HTML report folder (index.html, assets, clip previews, sheets) with Jinja2,
from a scores.json document, for the pytest plugin and ``phyjudge report`` alike."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_phyjudge.reporting.html.media import make_preview
from pytest_phyjudge.reporting.html.model import CaseView, report_view

HERE = Path(__file__).parent
ASSETS = ("report.css", "report.js")
MEDIA, SHEETS = "media", "sheets"


def _sheet(case: CaseView, base: Path, out: Path) -> str | None:
    """The case's contact sheet inside ``out`` (copied there unless it is already), so the
    folder is whole on its own: a CI artifact of it keeps every link."""
    if not case.sheet:
        return None
    source = Path(case.sheet) if Path(case.sheet).is_absolute() else base / case.sheet
    if not source.is_file():
        return None
    inside = out.resolve() in source.resolve().parents
    target = source if inside else out / SHEETS / source.name
    if not inside:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return Path(os.path.relpath(target.resolve(), out.resolve())).as_posix()


def _prune(folder: Path, keep: set[str]) -> None:
    """Drop previews of clips no longer in the report (a rerun reuses the others)."""
    if folder.is_dir():
        for old in folder.iterdir():
            if old.is_file() and f"{folder.name}/{old.name}" not in keep:
                old.unlink(missing_ok=True)


def write_html_report(
    document: Mapping[str, Any], out: str | Path, *, base: str | Path, title: str | None = None
) -> Path:
    """Write ``out/index.html`` and what it needs for the run in ``document``; paths in the
    document are relative to ``base`` (the folder scores.json is, or would be, in)."""
    import jinja2

    out, base = Path(out), Path(base)
    view = report_view(document, base, title)
    out.mkdir(parents=True, exist_ok=True)
    previews = {case.anchor: make_preview(case.video, out, MEDIA) for case in view.cases}
    sheets = {case.anchor: _sheet(case, base, out) for case in view.cases}
    _prune(out / MEDIA, {p for pr in previews.values() for p in (pr.video, pr.poster) if p})
    (out / "assets").mkdir(exist_ok=True)
    for name in ASSETS:
        shutil.copyfile(HERE / "assets" / name, out / "assets" / name)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    page = env.get_template("index.html.j2").render(view=view, previews=previews, sheets=sheets)
    target = out / "index.html"
    partial = out / ".index.html.partial"
    partial.write_text(page, encoding="utf-8")
    partial.replace(target)
    return target
