"""Outputs own only what they create, and artifacts carry only media (issue 19, classes 1
and 2): the HTML report folder, its previews and sheets, the sheets beside scores.json and
baseline backups never delete, overwrite or write through what they did not make, and
what goes into a report folder is decoded and encoded again, never copied."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pytester_kit import Kit

from pytest_phyjudge.cli.main import main
from pytest_phyjudge.reporting.html import write_html_report
from pytest_phyjudge.testing import write_test_video

SUITE = """
suite: outputs
videos: clips/{id}.mp4
defaults: {metrics: [SA]}
cases:
  - id: fall
    prompt: A ball falls onto a table.
    laws: [gravity]
"""

SECRET = "root:x:0:0:SECRET-CREDENTIAL-LINE"


def _scores(folder: Path, rows: list[dict[str, Any]]) -> Path:
    path = folder / "scores.json"
    path.write_text(json.dumps({"meta": {}, "results": rows}))
    return path


def _report(scores: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["report", str(scores), "--html", str(out)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _every_file(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]


def _png(path: Path, color: tuple[int, int, int]) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), color).save(path, format="PNG")
    return path


# --------------------------------------------------------------------------- folders


@pytest.mark.parametrize("kind", ["file", "symlink", "fifo"])
def test_report_never_touches_what_the_folder_already_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """``site/media`` holds the user's logo and talk (or a link, or a pipe): the report is
    refused with a message naming them, and every one of them is still there."""
    scores = _scores(tmp_path, [{"video": "a", "SA": 4}])
    site = tmp_path / "site"
    media = site / "media"
    media.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("keep me")
    if kind == "file":
        (media / "logo.png").write_bytes(b"logo")
        (media / "talk.mp4").write_bytes(b"talk")
    elif kind == "symlink":
        (media / "logo.png").symlink_to(elsewhere)
    else:
        os.mkfifo(media / "logo.png")
    code, text = _report(scores, site, capsys)
    assert code == 2
    assert "did not write" in text and "media/logo.png" in text and "Traceback" not in text
    assert os.path.lexists(media / "logo.png")
    if kind == "file":
        assert (media / "talk.mp4").read_bytes() == b"talk"
    assert elsewhere.read_text() == "keep me"
    assert not (site / "index.html").exists()


def test_a_symlinked_subfolder_is_never_written_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rerun into the report's own folder works; once ``media`` is a link to a folder
    elsewhere, the report is refused and that folder keeps its file."""
    scores = _scores(tmp_path, [{"video": "a", "SA": 4}])
    site = tmp_path / "site"
    assert _report(scores, site, capsys)[0] == 0
    assert _report(scores, site, capsys)[0] == 0  # the same folder again: fine
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.mp4").write_bytes(b"precious")
    if (site / "media").exists():
        (site / "media").rmdir()
    (site / "media").symlink_to(other, target_is_directory=True)
    code, text = _report(scores, site, capsys)
    assert code == 2 and "symbolic link" in text
    assert (other / "precious.mp4").read_bytes() == b"precious"


def test_a_report_shown_in_its_own_folder_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``phyjudge report site/scores.json --html site``: the input and its sheets folder are
    the run's own, so the page is written beside them and neither is touched; another file
    of the user's in that folder still makes it refused."""
    site = tmp_path / "site"
    site.mkdir()
    scores = _scores(site, [{"video": "a", "SA": 4}])
    sheet = _png(site / "scores-sheets" / "a.png", (200, 10, 10))
    before = scores.read_bytes(), sheet.read_bytes()
    assert _report(scores, site, capsys)[0] == 0
    assert (site / "index.html").is_file()
    assert (scores.read_bytes(), sheet.read_bytes()) == before
    (site / "notes.txt").write_text("mine")
    code, text = _report(scores, site, capsys)
    assert code == 2 and "notes.txt" in text
    assert (site / "notes.txt").read_text() == "mine"


def test_a_file_the_report_wrote_and_the_user_changed_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = _scores(tmp_path, [{"video": "a", "SA": 4}])
    site = tmp_path / "site"
    assert _report(scores, site, capsys)[0] == 0
    (site / "index.html").write_text("my own page")
    code, text = _report(scores, site, capsys)
    assert code == 2 and "index.html" in text
    assert (site / "index.html").read_text() == "my own page"


@pytest.mark.parametrize("where", ["html", "report"])
def test_pytest_never_deletes_the_users_files_where_it_writes_sheets(
    pytester: pytest.Pytester, kit: Kit, where: str
) -> None:
    """``pytest --phyjudge-html docs/`` beside ``docs/sheets/architecture.png`` (or a report
    whose ``-sheets`` folder holds one): a usage error before anything is judged, and the
    file stays."""
    kit.conftest({"*": 4}, name="outputs-judge")
    kit.suite(SUITE, name="outputs")
    kit.videos(["fall"])
    if where == "html":
        user = pytester.path / "docs" / "sheets" / "architecture.png"
        args = ["--phyjudge-html", "docs"]
    else:
        user = pytester.path / "out" / "scores-sheets" / "architecture.png"
        args = ["--phyjudge-report", "out/scores.json"]
    user.parent.mkdir(parents=True)
    user.write_bytes(b"diagram")
    result = pytester.runpytest("-p", "no:warnings", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*did not write*architecture.png*"])
    assert user.read_bytes() == b"diagram"


def test_pytest_reruns_replace_only_their_own_sheets(pytester: pytest.Pytester, kit: Kit) -> None:
    """Two runs into the same folders work; a sheet of the first run that the second did
    not make is pruned, and the folder's manifest lists only what is there."""
    kit.conftest({"*": 4}, name="outputs-judge")
    kit.suite(SUITE.replace("  - id: fall", "  - id: lamp\n    prompt: A lamp.\n  - id: fall"))
    kit.videos(["fall", "lamp"])
    args = ("-p", "no:warnings", "--phyjudge-report", "out/scores.json", "--phyjudge-html", "h")
    pytester.runpytest(*args).assert_outcomes(passed=3)
    sheets = pytester.path / "out" / "scores-sheets"
    first = sorted(p.name for p in sheets.glob("*.png"))
    assert len(first) == 2
    pytester.runpytest(*args, "-k", "fall").assert_outcomes(passed=2)
    second = sorted(p.name for p in sheets.glob("*.png"))
    assert len(second) == 1 and second[0] in first
    manifest = json.loads((sheets / ".phyjudge-manifest.json").read_text())
    assert sorted(manifest["files"]) == second


def test_two_suite_files_named_alike_are_two_cases(pytester: pytest.Pytester, kit: Kit) -> None:
    """``x/s.phyjudge.yaml`` and ``y/s.phyjudge.yaml``, case ``fall`` each, other clips: two
    rows of ``scores.json``, each with its own source, axes and sheet (never one row whose
    axes the second file overwrote, nor the first file's sheet shown for the second)."""
    kit.conftest({"*": 4}, name="outputs-judge")
    for sub, seed in (("x", 0), ("y", 5)):
        (pytester.path / sub).mkdir()
        (pytester.path / sub / "s.phyjudge.yaml").write_text(SUITE)
        write_test_video(pytester.path / sub / "clips" / "fall.mp4", seed=seed, frames=6)
    args = ("-p", "no:warnings", "--phyjudge-report", "out/scores.json")
    pytester.runpytest(*args).assert_outcomes(passed=4)
    rows = kit.read_json("out/scores.json")["results"]
    assert sorted(row["source"] for row in rows) == [
        "x/s.phyjudge.yaml::fall",
        "y/s.phyjudge.yaml::fall",
    ]
    assert all(sorted(row["checks"]) == ["SA", "gravity"] for row in rows)
    sheets = {row["source"]: row["sheet"] for row in rows}
    assert len(set(sheets.values())) == 2 and all(sheets.values())
    for source, sheet in sheets.items():
        assert source.split("/")[0] in Path(sheet).name  # each row its own file's clip


# --------------------------------------------------------------------------- sheets: media only


def _hostile_sheet(tmp_path: Path, kind: str) -> str:
    """The ``sheet`` a hostile scores.json in ``tmp_path/run`` names."""
    secret = tmp_path / "secret" / "credentials"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text(SECRET + "\n")
    run = tmp_path / "run"
    if kind == "etc-passwd":
        return "/etc/passwd"
    if kind == "absolute":
        return str(secret)
    if kind == "dotdot":
        return "../secret/credentials"
    if kind == "symlink":
        (run / "sheet.png").symlink_to(secret)
        return "sheet.png"
    if kind == "text":
        (run / "sheet.png").write_text(SECRET)
        return "sheet.png"
    if kind == "big":
        with (run / "big.png").open("wb") as file:  # sparse: 40 MB on paper, a few bytes
            file.write(SECRET.encode())
            file.truncate(40 * 1024 * 1024)
        return "big.png"
    if kind == "fifo":
        os.mkfifo(run / "pipe.png")
        return "pipe.png"
    if kind == "device":
        return "/dev/zero"
    raise AssertionError(kind)


REASONS = {
    "etc-passwd": "lies outside",
    "absolute": "lies outside",
    "dotdot": "lies outside",
    "symlink": "lies outside",
    "text": "is not a PNG or JPEG image",
    "big": "is larger than 32 MiB",
    "fifo": "is a pipe",
    "device": "lies outside",
}


@pytest.mark.parametrize("kind", list(REASONS))
def test_a_sheet_that_is_no_image_of_the_run_is_shown_missing_and_never_copied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    sheet = _hostile_sheet(tmp_path, kind)
    scores = _scores(run, [{"video": "a", "SA": 4, "sheet": sheet}])
    code, text = _report(scores, tmp_path / "site", capsys)
    assert code == 0, text
    page = (tmp_path / "site" / "index.html").read_text()
    assert "No contact sheet: the contact sheet" in page and REASONS[kind] in page
    assert "contact sheet</a>" not in page
    for path in _every_file(tmp_path / "site"):
        data = path.read_bytes()
        assert b"SECRET-CREDENTIAL" not in data and b"root:x:0:0" not in data, path
        assert len(data) < 1024 * 1024, path


def test_a_sheet_of_the_run_is_decoded_and_encoded_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real PNG with text chunks after its image: the copy in the folder is a fresh PNG
    (the same pixels), without the trailing bytes."""
    from PIL import Image

    run = tmp_path / "run"
    sheet = _png(run / "s" / "sheet.png", (200, 10, 10))
    sheet.write_bytes(sheet.read_bytes() + b"TRAILING-" + SECRET.encode())
    scores = _scores(run, [{"video": "a", "SA": 4, "sheet": "s/sheet.png"}])
    assert _report(scores, tmp_path / "site", capsys)[0] == 0
    page = (tmp_path / "site" / "index.html").read_text()
    (href,) = re.findall(r'<a class="sheet" href="([^"]+)"', page)
    copy = tmp_path / "site" / href
    assert b"TRAILING-" not in copy.read_bytes()
    with Image.open(copy) as image:
        assert image.format == "PNG" and image.getpixel((0, 0)) == (200, 10, 10)


def test_two_cases_whose_sheets_share_a_name_show_their_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    run = tmp_path / "run"
    _png(run / "a" / "sheet.png", (255, 0, 0))
    _png(run / "b" / "sheet.png", (0, 0, 255))
    rows = [
        {"video": "red", "SA": 4, "sheet": "a/sheet.png"},
        {"video": "blue", "SA": 4, "sheet": "b/sheet.png"},
    ]
    assert _report(_scores(run, rows), tmp_path / "site", capsys)[0] == 0
    page = (tmp_path / "site" / "index.html").read_text()
    hrefs = re.findall(r'<a class="sheet" href="([^"]+)"', page)
    assert len(hrefs) == 2 and hrefs[0] != hrefs[1]
    colors = []
    for href in hrefs:
        with Image.open(tmp_path / "site" / href) as image:
            colors.append(image.convert("RGB").getpixel((0, 0)))
    assert colors == [(255, 0, 0), (0, 0, 255)]


def test_sheet_names_are_unique_by_case_key() -> None:
    from pytest_phyjudge.reporting.sheets import sheet_name

    assert sheet_name("a/b::c") != sheet_name("a_b::c")
    long = "x" * 300
    assert sheet_name(long + "::a") != sheet_name("y" + long + "::a")


# --------------------------------------------------------------------------- links


HOSTILE_URLS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:image/svg+xml;base64,PHN2Zz4=",
    "//evil.example/x.png",
    "https://evil.example/x.png",
    "/etc/passwd",
    "../secret.png",
    "sheets/../../secret.png",
    "sheets/.hidden",
    'a" onerror="alert(1)',
    "vbscript:x",
    "",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_only_the_reports_own_links_pass(url: str) -> None:
    from pytest_phyjudge.reporting.html.model import local_url

    with pytest.raises(ValueError, match="refuses the link"):
        local_url(url)


def test_the_reports_own_links_pass() -> None:
    from pytest_phyjudge.reporting.html.model import file_url, local_url

    for url in (
        "assets/report.css",
        "media/0a1b-v1.mp4",
        "#case-1-a",
        "data:image/png;base64,AA==",
    ):
        assert local_url(url) == url
    assert file_url("sheets/javascript:alert(1).png") == "sheets/javascript%3Aalert%281%29.png"


def test_a_sheet_named_javascript_never_becomes_a_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reviewer's layout: scores.json and a file named ``javascript:alert(1)`` inside
    the folder the report goes to. No page carries a ``javascript:`` link (the folder of
    someone else's files is refused, or the sheet is re-encoded under a name of its own)."""
    site = tmp_path / "site"
    site.mkdir()
    _png(site / "javascript:alert(1)", (1, 2, 3))
    scores = _scores(site, [{"video": "a", "SA": 4, "sheet": "javascript:alert(1)"}])
    _report(scores, site, capsys)
    for path in site.rglob("*.html"):
        page = path.read_text()
        assert not re.search(r'(href|src|poster)="\s*javascript:', page, re.I)
    document = json.loads(scores.read_text())
    write_html_report(document, tmp_path / "other", base=site)
    page = (tmp_path / "other" / "index.html").read_text()
    for url in re.findall(r'(?:href|src|poster)="([^"]*)"', page):
        assert re.fullmatch(r"(#|assets/|media/|sheets/)[A-Za-z0-9._%/-]+", url), url


# --------------------------------------------------------------------------- previews


def test_a_preview_streams_the_clip_instead_of_holding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decode, scale, encode one frame at a time: never more than a few decoded frames of
    the clip alive at once (the whole clip held took 3.1 GB for a 1-minute 720p clip)."""
    import pytest_phyjudge.reporting.html.media as media

    clip = write_test_video(tmp_path / "clip.mp4", frames=40, fps=10)
    alive = [0, 0]  # now, most

    class Counted:
        def __init__(self, frame: Any) -> None:
            self._frame = frame
            alive[0] += 1
            alive[1] = max(alive)

        def __del__(self) -> None:
            alive[0] -= 1

        def __getattr__(self, name: str) -> Any:
            return getattr(self._frame, name)

    class Container:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __enter__(self) -> Container:
            return self

        def __exit__(self, *exc: object) -> None:
            self._inner.close()

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def decode(self, *args: Any, **kwargs: Any) -> Any:
            for frame in self._inner.decode(*args, **kwargs):
                yield Counted(frame)

    real = media.open_video
    monkeypatch.setattr(media, "open_video", lambda path: Container(real(path)))
    document = {"meta": {}, "results": [{"video": "a", "video_path": str(clip), "SA": 4}]}
    write_html_report(document, tmp_path / "site", base=tmp_path)
    page = (tmp_path / "site" / "index.html").read_text()
    assert "<video" in page, page
    assert 0 < alive[1] <= 4, f"{alive[1]} decoded frames alive at once"


# --------------------------------------------------------------------------- baselines


def test_a_baseline_backup_never_writes_through_a_link(tmp_path: Path) -> None:
    from pytest_phyjudge.regression.baseline import Entry, write_baseline

    base = tmp_path / "base.json"
    write_baseline(base, None, {("s", "c", "SA"): Entry(score=3)})
    before = base.read_text()
    victim = tmp_path / "elsewhere" / "bashrc"
    victim.parent.mkdir()
    victim.write_text("the user's file")
    (tmp_path / "base.json.bak").symlink_to(victim)
    backup = write_baseline(base, None, {("s", "c", "SA"): Entry(score=4)})
    assert victim.read_text() == "the user's file"
    assert backup is not None and not backup.is_symlink() and backup.read_text() == before
