"""Contact sheets, one per case: the PNG grid, its caption, samples, and pytest-html extras."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from pytester_kit import Kit
from test_report import setup

from pytest_phyjudge._exceptions import VideoError
from pytest_phyjudge._outputs import MANIFEST, OwnedFolder
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.reporting.sheets import (
    _frames,
    _wrap,
    case_clips,
    case_key,
    case_nodeid,
    case_title,
    sheet_name,
    write_contact_sheet,
)

#: The sheet of the report suite's case ``fall``: its node id and its case key's hash.
FALL_SHEET = sheet_name("report.phyjudge.yaml::fall", ("case", "report.phyjudge.yaml::fall"))

LONG_CAPTION = (
    "A rubber ball is dropped from shoulder height onto a wooden floor, bounces several times "
    "with each bounce lower than the one before, rolls towards the wall and comes to rest."
)


def test_one_contact_sheet_per_case(
    pytester: pytest.Pytester, kit: Kit, synthetic_video: Path
) -> None:
    from PIL import Image

    setup(kit, clip=synthetic_video.read_bytes())
    # A sheet of an earlier run (listed in the folder's manifest) goes at the end of this one.
    stale = OwnedFolder.open(pytester.path / "out" / "scores-sheets")
    stale.write_bytes("s.phyjudge.yaml_gone-0123456789abcdef.png", b"\x89PNG\r\n\x1a\nold")
    stale.finish()
    result = pytester.runpytest("--phyjudge-report", "out/scores.json", "-k", "fall")
    result.assert_outcomes(passed=3, failed=1)
    sheets = sorted(p for p in (pytester.path / "out" / "scores-sheets").iterdir())
    assert [s.name for s in sheets] == [MANIFEST, FALL_SHEET]
    sheets = sheets[1:]
    data = kit.report()
    (fall,) = data["results"]
    # Every axis of the case, passed or failed, points at the case's one sheet.
    assert {c["sheet"] for c in fall["checks"].values()} == {f"scores-sheets/{FALL_SHEET}"}
    assert fall["sheet"] == f"scores-sheets/{FALL_SHEET}"
    with Image.open(sheets[0]) as image:
        assert image.format == "PNG"
        assert image.width > 240
    result.stdout.fnmatch_lines(["contact sheets: *scores-sheets (1)"])


def _setup_logging_extras(pytester: pytest.Pytester, kit: Kit, video: Path) -> None:
    """The report suite, with a conftest that logs each test report's extras."""
    setup(kit, clip=video.read_bytes())
    conftest = pytester.path / "conftest.py"
    conftest.write_text(
        conftest.read_text() + "\nimport json\n"
        "def pytest_runtest_logreport(report):\n"
        "    if getattr(report, 'extras', None):\n"
        "        with open('extras.json', 'a') as fh:\n"
        "            fields = ('format_type', 'name', 'mime_type')\n"
        "            fh.write(json.dumps([{k: e[k] for k in fields} for e in report.extras]))\n"
        "            fh.write('\\n')\n"
    )


def test_contact_sheets_go_to_pytest_html(
    pytester: pytest.Pytester, kit: Kit, synthetic_video: Path
) -> None:
    """With the real pytest-html active, each sheet becomes an image extra of its test and
    lands in the HTML report."""
    pytest.importorskip("pytest_html")
    _setup_logging_extras(pytester, kit, synthetic_video)
    result = pytester.runpytest(
        "--phyjudge-report",
        "out/scores.json",
        "-k",
        "fall and gravity",
        "--html",
        "report.html",
        "--self-contained-html",
    )
    result.assert_outcomes(failed=1)
    (line,) = (pytester.path / "extras.json").read_text().splitlines()
    assert json.loads(line) == [
        {
            "format_type": "image",
            "name": FALL_SHEET,
            "mime_type": "image/png",
        }
    ]
    assert "data:image/png;base64," in (pytester.path / "report.html").read_text()


def test_sheets_without_pytest_html(
    pytester: pytest.Pytester, kit: Kit, synthetic_video: Path
) -> None:
    """Without pytest-html the sheet is written and no extra is attached."""
    _setup_logging_extras(pytester, kit, synthetic_video)
    result = pytester.runpytest(
        "--phyjudge-report", "out/scores.json", "-k", "fall and gravity", "-p", "no:html"
    )
    result.assert_outcomes(failed=1)
    (fall,) = kit.report()["results"]
    assert fall["checks"]["gravity"]["sheet"] == f"scores-sheets/{FALL_SHEET}"
    assert not (pytester.path / "extras.json").exists()


def test_write_contact_sheet(synthetic_video: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = write_contact_sheet(synthetic_video, tmp_path / "a" / "sheet.png", title="t\nsecond")
    with Image.open(out) as image:
        # 2 s at 2 fps: 4 frames in one row of 240 px thumbnails.
        assert image.size[0] == 6 + 4 * (240 + 6)
    assert not list(tmp_path.glob("a/.*"))


def test_sheet_name_is_safe_and_names_the_case() -> None:
    assert re.fullmatch(r"a_b_c\.py_x_1-2-[0-9a-f]{16}\.png", sheet_name("a b/c.py::x[1-2]"))
    item = Check(
        "gravity", 3, "c", None, suite="s", case="case", nodeid="s.phyjudge.yaml::case::gravity"
    )
    name = sheet_name(case_nodeid(item), case_key(item))
    assert name.startswith("s.phyjudge.yaml_case-") and name.endswith(".png")
    # Names that read alike (cut, or with characters replaced) still differ.
    assert sheet_name("a/b::c") != sheet_name("a_b::c")
    assert sheet_name("x" * 200 + "1") != sheet_name("y" * 200 + "1")
    helper = Check("gravity", 3, "c", None, nodeid="t.py::test_gravity")
    assert case_nodeid(helper) == "t.py::test_gravity"


def test_a_sampled_case_shows_every_sample(synthetic_video: Path, tmp_path: Path) -> None:
    """Each sample's frames start a row under their label (sample and seed)."""
    from PIL import Image

    samples = [
        {"sample": i, "seed": 7 + i, "video": str(synthetic_video), "score": 3} for i in range(3)
    ]
    check = Check("gravity", 3, "c", str(synthetic_video), nodeid="s::c::gravity", samples=samples)
    clips = case_clips(check)
    assert [label for label, _ in clips] == [
        "sample 0, seed 7",
        "sample 1, seed 8",
        "sample 2, seed 9",
    ]
    one = write_contact_sheet(synthetic_video, tmp_path / "one.png", title="t")
    three = write_contact_sheet(clips, tmp_path / "three.png", title="t")
    with Image.open(one) as a, Image.open(three) as b:
        row = 240 + 14 + 6  # a 64x64 clip's thumbnails are square
        assert b.width == a.width and b.height == a.height + 2 * row + 3 * 14


def test_long_captions_are_wrapped_not_cut(synthetic_video: Path, tmp_path: Path) -> None:
    from PIL import Image, ImageFont

    check = Check(axis="gravity", min_score=3, caption=LONG_CAPTION, video=None, nodeid="t::x")
    title = case_title(check)
    assert title.endswith(LONG_CAPTION)
    font = ImageFont.load_default()
    lines = _wrap(title, font, 300)
    assert len(lines) > 3 and all(font.getlength(line) <= 300 for line in lines)
    assert " ".join(lines).split() == title.split()
    # A word wider than a line (a long node id) is split, not cut either.
    (pieces,) = [_wrap("x" * 200, font, 100)]
    assert "".join(pieces) == "x" * 200 and all(font.getlength(p) <= 100 for p in pieces)
    short = write_contact_sheet(synthetic_video, tmp_path / "short.png", title="t", columns=1)
    long = write_contact_sheet(synthetic_video, tmp_path / "long.png", title=title, columns=1)
    with Image.open(short) as a, Image.open(long) as b:
        assert a.width == b.width and b.height > a.height + 3 * 14


def test_frames_are_evenly_spaced(synthetic_video: Path) -> None:
    frames = _frames(synthetic_video, 4)  # 12 frames at 6 fps
    times = [f.info["time"] for f in frames]
    assert 0 <= times[0] < 0.5 and times[-1] < 2.0
    assert [round(b - a, 2) for a, b in pairwise(times)] == [0.5, 0.5, 0.5]
    assert {f.size for f in frames} == {(64, 64)} and {f.mode for f in frames} == {"RGB"}
    assert len(_frames(synthetic_video, 50)) == 12


def test_an_unreadable_video_is_a_video_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoError, match=r"bad\.mp4.*cannot be read as a video"):
        write_contact_sheet(bad, tmp_path / "s.png", title="t")
    assert not list(tmp_path.glob("*.png"))


def test_sheets_need_no_model_stack(synthetic_video: Path, tmp_path: Path) -> None:
    """A light install (no torch, decord or qwen-vl-utils) still draws contact sheets."""
    code = (
        "import sys\n"
        "for name in ('torch', 'decord', 'qwen_vl_utils', 'transformers'):\n"
        "    sys.modules[name] = None  # importing it now raises ImportError\n"
        "from pytest_phyjudge.reporting.sheets import write_contact_sheet\n"
        f"write_contact_sheet({str(synthetic_video)!r}, {str(tmp_path / 's.png')!r}, title='t')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert (tmp_path / "s.png").is_file()
