"""The HTML report and contact sheets (issue 19, items 1-3): folders that hold a user's
files or symlinks out, sheets and clips that are secrets, devices, FIFOs, huge non-images
or URLs, two cases sharing a sheet's file name, and names that try to be HTML.

Clean is judged on the outcome: every file of the user's (inside the folder or where a
symlink points) is intact, no byte of a secret is in the report folder or printed, the
folder did not grow by a huge input's bytes, and no HTML in it is live (``javascript:``,
a fetch from the web, an injected handler). A refusal is as clean as a safe report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tally import kit
from tally.model import NotClean, Probe, expect
from tally.probes import cli

REPORT = "report folder: user files"
SHEETS = "report: sheets and clips"
NAMES = "report: hostile names (HTML)"
ANY = expect("returned", "error")
QUICK = 20.0


# --------------------------------------------------------------------------- user files


def _report_into(prepare: Callable[[Path], list[Path]], site: str = "site") -> Probe:
    """``phyjudge report scores.json --html SITE`` after ``prepare`` made the user's files
    (returned, to be kept intact)."""

    state: dict[str, Any] = {}

    def run(folder: Path) -> str:
        scores = kit.write_scores(folder)
        state["before"] = kit.snapshot(*prepare(folder))
        return cli("report", str(scores), "--html", str(folder / site))(folder)

    def check(folder: Path, text: str) -> str | None:
        return kit.changed(state["before"]) or kit.live_html(folder / site)

    return run, check  # type: ignore[return-value]


def _elsewhere(folder: Path, *names: str) -> list[Path]:
    return kit.user_files(folder / "elsewhere", *names)


def _link(folder: Path, rel: str, target: Path) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def _with_link(rel: str, *names: str, file: bool = False) -> Callable[[Path], list[Path]]:
    def prepare(folder: Path) -> list[Path]:
        made = _elsewhere(folder, *names)
        _link(folder, rel, made[0] if file else folder / "elsewhere")
        return made

    return prepare


FOLDERS: dict[str, Callable[[Path], list[Path]]] = {
    "media_holds_user_files": lambda f: kit.user_files(
        f, "site/media/logo.png", "site/media/talk.mp4"
    ),
    "sheets_holds_user_file": lambda f: kit.user_files(f, "site/sheets/architecture.png"),
    "assets_holds_user_file": lambda f: kit.user_files(f, "site/assets/custom.css"),
    "site_holds_index_html": lambda f: kit.user_files(f, "site/index.html"),
    "site_holds_notes": lambda f: kit.user_files(f, "site/notes.txt", "site/docs/guide.md"),
    "media_symlink_out": _with_link("site/media", "keep.mp4", "keep.jpg"),
    "sheets_symlink_out": _with_link("site/sheets", "keep.png"),
    "assets_symlink_out": _with_link("site/assets", "report.css", "report.js"),
    "index_symlink_out": _with_link("site/index.html", "page.html", file=True),
    "asset_file_symlink_out": _with_link("site/assets/report.css", "style.css", file=True),
    "site_symlink_to_user_folder": _with_link("site", "index.html", "media/a.mp4"),
    "site_is_user_file": lambda f: kit.user_files(f, "site"),
}


def report_folders() -> Iterator[Probe]:
    for name, prepare in FOLDERS.items():
        run, check = _report_into(prepare)  # type: ignore[misc]
        yield Probe(REPORT, f"html_{name}", run, ANY, check, QUICK)
    for name, rels, args in (
        (
            "pytest_html_sheets_user_file",
            ("docs/sheets/architecture.png",),
            ("--phyjudge-html", "docs"),
        ),
        (
            "pytest_html_media_user_file",
            ("docs/media/talk.mp4", "docs/media/logo.png"),
            ("--phyjudge-html", "docs"),
        ),
        ("pytest_html_index_user_file", ("docs/index.html",), ("--phyjudge-html", "docs")),
        (
            "pytest_report_sheets_user_file",
            ("out/scores-sheets/mine.png", "out/notes.md"),
            ("--phyjudge-report", "out/scores.json"),
        ),
    ):
        yield Probe(
            REPORT,
            name,
            _pytest_into(lambda f, rels=rels: kit.user_files(f, *rels), args),
            ANY,
            None,
            40.0,
        )
    for name, rel, args in (
        ("pytest_html_media_symlink_out", "docs/media", ("--phyjudge-html", "docs")),
        (
            "pytest_report_sheets_symlink_out",
            "out/scores-sheets",
            ("--phyjudge-report", "out/scores.json"),
        ),
    ):
        yield Probe(
            REPORT, name, _pytest_into(_with_link(rel, "keep.png", "a.png"), args), ANY, None, 40.0
        )


def _pytest_into(
    prepare: Callable[[Path], list[Path]], args: tuple[str, ...]
) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        kit.suite(folder)
        before = kit.snapshot(*prepare(folder))
        code, out = kit.run_pytest(folder, "--phyjudge-judge", "judges:make", *args)
        problem = kit.changed(before)
        if problem:
            raise NotClean(problem)
        return f"exit {code}\n{out}"

    return run


# --------------------------------------------------------------------------- sheets and clips


def _png(path: Path, colour: tuple[int, int, int] = (200, 30, 30), text: str | None = None) -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if text:
        info.add_text("Comment", text)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), colour).save(path, pnginfo=info)


def _sheet_probe(
    name: str, make: Callable[[Path, str], str], field: str = "sheet", limit: float = QUICK
) -> Probe:
    """scores.json whose first case's ``field`` is what ``make(folder, token)`` returns."""
    state: dict[str, Any] = {}

    def run(folder: Path) -> str:
        token = kit.secret(folder, "private/secret.txt")
        state["token"] = token
        value = make(folder, token)
        state["outside"] = kit.snapshot(
            *[p for p in (folder / "private").rglob("*") if p.is_file()]
        )

        def change(data: dict[str, Any]) -> None:
            row = kit.rows(data)[0]
            row[field] = value
            for check in (row.get("checks") or {}).values():
                if field == "sheet" and isinstance(check, dict):
                    check["sheet"] = value

        scores = kit.write_scores(folder, change)
        return cli("report", str(scores), "--html", str(folder / "site"))(folder)

    def check(folder: Path, text: str) -> str | None:
        site = folder / "site"
        return (
            kit.leak(state["token"], text, site)
            or _passwd(site)
            or kit.too_big(site)
            or kit.live_html(site)
            or kit.changed(state["outside"])
        )

    return Probe(SHEETS, name, run, ANY, check, limit)


def _passwd(site: Path) -> str | None:
    return kit.leak("root:x:0:0", "", site)


def _abs(rel: str) -> Callable[[Path, str], str]:
    return lambda folder, token: str(folder / rel)


def _secret_png(folder: Path, token: str) -> str:
    path = folder / "private" / "secret.png"
    path.write_text(f"not an image: {token}\n")
    return str(path)


def _png_with_text(folder: Path, token: str) -> str:
    path = folder / "private" / "chunk.png"
    _png(path, text=token)
    return str(path)


def _png_with_tail(folder: Path, token: str) -> str:
    path = folder / "private" / "tail.png"
    _png(path)
    with path.open("ab") as fh:
        fh.write(f"\n{token}\n".encode())
    return str(path)


def _symlink_sheet(folder: Path, token: str) -> str:
    (folder / "scores-sheets").mkdir(exist_ok=True)
    (folder / "scores-sheets" / "evil.png").symlink_to(folder / "private" / "secret.txt")
    return "scores-sheets/evil.png"


def _fifo(folder: Path, token: str) -> str:
    os.mkfifo(folder / "private" / "pipe.png")
    return str(folder / "private" / "pipe.png")


def _huge(folder: Path, token: str) -> str:
    path = folder / "private" / "huge.png"
    with path.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + token.encode())
        fh.truncate(300 * 2**20)
    return str(path)


def _bomb(folder: Path, token: str) -> str:
    from PIL import Image

    path = folder / "private" / "bomb.png"
    Image.new("1", (30_000, 30_000)).save(path)
    return str(path)


def _clip_with_tail(folder: Path, token: str) -> str:
    from pytest_phyjudge.testing import write_test_video

    path = folder / "private" / "clip.mp4"
    write_test_video(path, frames=6)
    with path.open("ab") as fh:
        fh.write(f"\n{token}\n".encode())
    return str(path)


def _clip_link(folder: Path, token: str) -> str:
    (folder / "v").mkdir(exist_ok=True)
    (folder / "v" / "clip.mp4").symlink_to(folder / "private" / "secret.txt")
    return str(folder / "v" / "clip.mp4")


SHEET_VALUES: dict[str, Callable[[Path, str], str]] = {
    "absolute_secret": _abs("private/secret.txt"),
    "secret_named_png": _secret_png,
    "dotdot_secret": lambda f, t: f"../{f.name}/private/secret.txt",
    "dotdot_passwd": lambda f, t: "../" * 12 + "etc/passwd",
    "etc_passwd": lambda f, t: "/etc/passwd",
    "symlink_to_secret": _symlink_sheet,
    "png_text_chunk_secret": _png_with_text,
    "png_trailing_secret": _png_with_tail,
    "fifo": _fifo,
    "dev_zero": lambda f, t: "/dev/zero",
    "dev_urandom": lambda f, t: "/dev/urandom",
    "folder": lambda f, t: "/",
    "huge_non_image": _huge,
    "decompression_bomb": _bomb,
    "javascript_url": lambda f, t: 'javascript:alert("xss")',
    "javascript_spaced": lambda f, t: ' \tJaVaScRiPt:alert("xss")',
    "data_html_url": lambda f, t: "data:text/html,<script>alert('xss')</script>",
    "http_url": lambda f, t: "http://evil.example/pixel.png",
    "protocol_relative": lambda f, t: "//evil.example/pixel.png",
    "file_url": lambda f, t: "file:///etc/passwd",
}
CLIP_VALUES: dict[str, Callable[[Path, str], str]] = {
    "clip_is_secret": _abs("private/secret.txt"),
    "clip_symlink_to_secret": _clip_link,
    "clip_fifo": _fifo,
    "clip_dev_zero": lambda f, t: "/dev/zero",
    "clip_trailing_secret": _clip_with_tail,
    "clip_javascript_url": lambda f, t: 'javascript:alert("xss")',
    "clip_http_url": lambda f, t: "http://evil.example/clip.mp4",
}


def sheets() -> Iterator[Probe]:
    for name, make in SHEET_VALUES.items():
        yield _sheet_probe(f"sheet_{name}", make)
    for name, make in CLIP_VALUES.items():
        yield _sheet_probe(name, make, field="video_path")
    yield Probe(SHEETS, "sheet_two_cases_one_name", _shared_names, ANY, _two_colours, QUICK)
    yield Probe(SHEETS, "pytest_two_suites_one_sheet_name", _two_suites, ANY, None, 40.0)


def _shared_names(folder: Path) -> str:
    _png(folder / "x" / "sheet.png", (220, 20, 20))
    _png(folder / "y" / "sheet.png", (20, 20, 220))

    def change(data: dict[str, Any]) -> None:
        for row, rel in zip(kit.rows(data), ("x/sheet.png", "y/sheet.png"), strict=False):
            row["sheet"] = rel
            for check in row.get("checks", {}).values():
                check["sheet"] = rel

    scores = kit.write_scores(folder, change)
    return cli("report", str(scores), "--html", str(folder / "site"))(folder)


def _two_colours(folder: Path, text: str) -> str | None:
    """Both sheets are in the report (one red, one blue), not one of them twice."""
    from PIL import Image

    seen = set()
    for path in (folder / "site").rglob("*"):
        if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") and path.is_file():
            try:
                r, _g, b = Image.open(path).convert("RGB").resize((1, 1)).getpixel((0, 0))
            except Exception:
                continue
            if r > 150 and b < 80:
                seen.add("red")
            if b > 150 and r < 80:
                seen.add("blue")
    if "exit 0" in text and seen != {"red", "blue"}:
        return f"two cases' sheets named alike: the report holds {sorted(seen) or 'neither'}"
    return None


def _two_suites(folder: Path) -> str:
    """Two suite files named alike in two folders, a case 'a' each: two sheets, not one."""
    import json

    for sub, seed in (("x", 0), ("y", 5)):
        where = folder / sub
        kit.suite(where, cases=("a",))
        from pytest_phyjudge.testing import write_test_video

        write_test_video(where / "v" / "a.mp4", seed=seed, frames=6)
    (folder / "judges.py").write_text(kit.JUDGES)
    code, out = kit.run_pytest(
        folder, "x", "y", "--phyjudge-judge", "judges:make", "--phyjudge-report", "out/scores.json"
    )
    data = json.loads((folder / "out" / "scores.json").read_text())
    sheets = [r.get("sheet") for r in data["results"] if r.get("sheet")]
    if len(sheets) != len(set(sheets)):
        raise NotClean(f"two cases share one sheet file: {sheets}")
    return f"exit {code}\n{out}"


# --------------------------------------------------------------------------- names as HTML

XSS = '<img src=x onerror=alert("xss")><script>alert("xss")</script>'


def _named(change: Callable[[dict[str, Any]], None], *extra: str) -> Probe:
    def run(folder: Path) -> str:
        scores = kit.write_scores(folder, change)
        return cli("report", str(scores), "--html", str(folder / "site"), *extra)(folder)

    def check(folder: Path, text: str) -> str | None:
        return kit.live_html(folder / "site")

    return run, check  # type: ignore[return-value]


def _set(*path: str, value: Any = XSS) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[path[-1]] = value

    return change


def _law(data: dict[str, Any]) -> None:
    for row in kit.rows(data):
        laws = row["physical"]["laws"]
        laws[XSS] = laws.pop("gravity")
        row["physical_laws"] = [XSS]


HTML_NAMES: dict[str, tuple[Callable[[dict[str, Any]], None], tuple[str, ...]]] = {
    "title_option": (lambda d: None, ("--title", XSS)),
    "video_model": (_set("meta", "video_model"), ()),
    "case_id": (_set("results", "0", "video"), ()),
    "prompt": (_set("results", "0", "prompt"), ()),
    "suite": (_set("results", "0", "suite"), ()),
    "raw_reply": (_set("results", "0", "checks", "SA", "raw"), ()),
    "judge_adapter": (_set("meta", "judge", "adapter"), ()),
    "law_name": (_law, ()),
}


def html_names() -> Iterator[Probe]:
    for name, (change, extra) in HTML_NAMES.items():
        run, check = _named(change, *extra)  # type: ignore[misc]
        yield Probe(NAMES, f"html_name_{name}", run, ANY, check, QUICK)


def output_probes() -> list[Probe]:
    return [*report_folders(), *sheets(), *html_names()]
