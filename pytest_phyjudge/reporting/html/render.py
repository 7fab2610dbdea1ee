"""Writes the HTML report folder (index.html, assets, clip previews, sheets) with Jinja2,
from a scores.json document, for the pytest plugin and ``phyjudge report`` alike.

Threat model: the document (and the clips and sheets it names) may come from anyone, and
the folder is published as a CI artifact. So every file goes through the folder's
``OwnedFolder`` (``pytest_phyjudge._outputs``: only files it wrote are replaced or pruned,
nothing through a symlink, a folder of someone else's files is refused), clips and sheets
are decoded and encoded again (never copied: a sheet that is no image, too big, special or
outside the report's folder shows as missing with the reason), every string is escaped by
Jinja's autoescape after its control characters are shown (:func:`_shown`: a bidi override
must not reorder the page) and every ``href``/``src`` passes :func:`~.model.local_url`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_phyjudge._escape import page_text
from pytest_phyjudge._outputs import OwnedFolder
from pytest_phyjudge.reporting.html.media import (
    Executor,
    MediaRefused,
    make_previews,
    reencode_image,
)
from pytest_phyjudge.reporting.html.model import CaseView, checked, file_url, local_url, report_view
from pytest_phyjudge.reporting.html.rating import rating_cases, rating_data
from pytest_phyjudge.scores import ScoresDocument

HERE = Path(__file__).parent
ASSETS = ("report.css", "report.js", "rating.css", "rating.js")
MEDIA, SHEETS = "media", "sheets"


@dataclass(frozen=True)
class SheetLink:
    """A case's contact sheet in the folder (its URL), or why it is not shown."""

    url: str | None = None
    error: str | None = None


def _sheet(case: CaseView, base: Path, folder: OwnedFolder) -> SheetLink:
    """The case's contact sheet inside the folder, so the folder is whole on its own (a CI
    artifact of it keeps every link): a sheet this folder wrote is linked where it is; any
    other is decoded and saved again as ``sheets/<sha256>.png``."""
    recorded = case.sheet
    if recorded is None or recorded == "":
        return SheetLink()
    if not isinstance(recorded, str) or "\x00" in recorded:
        return SheetLink(error=f"the contact sheet {recorded!r} is not a path")
    source = Path(recorded) if Path(recorded).is_absolute() else base / recorded
    own = folder.name_of(source)
    if own is not None:
        folder.keep(own)
        return SheetLink(url=file_url(own))
    try:
        png = reencode_image(source, base)
    except MediaRefused as why:
        return SheetLink(error=f"the contact sheet {recorded!r} {why}")
    name = f"{SHEETS}/{hashlib.sha256(png).hexdigest()[:24]}.png"
    if not folder.owns(name):
        folder.write_bytes(name, png)
    folder.keep(name)
    return SheetLink(url=file_url(name))


def _shown(value: Any) -> Any:
    """Every ``{{ }}`` of the page as Jinja prints it: a string's control characters shown
    as escapes (:func:`~pytest_phyjudge._escape.page_text`); markup the template made
    (``tojson``'s block, which escapes them itself) and numbers as they are."""
    return page_text(value) if type(value) is str else value


def write_html_report(
    document: ScoresDocument | Mapping[str, Any],
    out: str | Path,
    *,
    base: str | Path,
    title: str | None = None,
    leave: Iterable[Path] = (),
    workers: int | None = None,
    executor: Executor = "process",
    clip_roots: Sequence[str | Path] | None = None,
) -> Path:
    """Write ``out/index.html`` and what it needs for the run in ``document`` (a document a
    reader returned, or a parsed one, checked first); paths in the document are relative to
    ``base`` (the folder scores.json is, or would be, in). Raises InputError for a document
    the reader refuses, FolderNotOwned (an InputError) for a folder holding files it did not
    write (but for ``leave``: the run's own scores.json and sheets), OSError for one it
    cannot write. The clips' previews are encoded ``workers`` at a time (default: one per
    core), on threads or processes (``executor``); with ``clip_roots``, only clips inside
    those folders are shown (a report from elsewhere names files it may not reveal), the
    others with the reason."""
    import jinja2

    out, base = Path(out), Path(base)
    document = checked(document)
    view = report_view(document, base, title)
    folder = OwnedFolder.open(out, what="HTML report folder", leave=leave)
    made = make_previews(
        [case.video for case in view.cases],
        folder,
        MEDIA,
        workers=workers,
        executor=executor,
        within=clip_roots,
    )
    previews = {case.anchor: preview for case, preview in zip(view.cases, made, strict=True)}
    sheets = {case.anchor: _sheet(case, base, folder) for case in view.cases}
    clips = {anchor: preview.video for anchor, preview in previews.items()}
    rating = rating_data(rating_cases(document, view.cases, clips))
    for name in ASSETS:
        folder.write_bytes(f"assets/{name}", (HERE / "assets" / name).read_bytes())
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        finalize=_shown,
    )
    env.filters["url"] = local_url
    page = env.get_template("index.html.j2").render(
        view=view, previews=previews, sheets=sheets, rating=rating
    )
    folder.write_bytes("index.html", page.encode("utf-8"))
    folder.finish()
    return out / "index.html"
