"""Reports: the terminal table, scores.json, JUnit properties and contact sheets."""

from __future__ import annotations

import importlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.plugin.reporter import axis_rows, table_lines, worst_lines
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.reporting.sheets import sheet_name, write_contact_sheet

# In-process pytester runs here decode videos (contact sheets); pytester forgets modules first
# imported during a run, and numpy/torch cannot be imported twice in one process. Importing
# the video stack now keeps it in pytester's snapshot.
for _module in ("decord", "qwen_vl_utils", "PIL.Image"):
    importlib.import_module(_module)

CONFTEST = """
from pytest_phyjudge import ScriptedJudge

def pytest_phyjudge_make_judge(config):
    return ScriptedJudge(
        {"gravity": 2, "collision": 5, "shadow": "the shadow looks odd", "*": 4},
        name="report-judge",
    )
"""

SUITE = """
suite: report-suite
videos: clips/{id}.mp4
defaults: {metrics: [SA, PTV]}
cases:
  - id: fall
    prompt: A ball falls onto a table.
    laws: [gravity, collision]
    min_score: {collision: 5}
  - id: lamp
    prompt: A lamp lights a vase.
    laws: [shadow, reflection]
"""


def setup(pytester: pytest.Pytester, clip: bytes | None = None) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".phyjudge.yaml", report=SUITE)
    (pytester.path / "clips").mkdir()
    for name in ("fall", "lamp"):
        (pytester.path / "clips" / f"{name}.mp4").write_bytes(clip or name.encode())


def load_report(pytester: pytest.Pytester, name: str = "out/scores.json") -> dict:
    return json.loads((pytester.path / name).read_text())


# --------------------------------------------------------------------------- terminal


def test_terminal_summary_table_and_worst_items(pytester: pytest.Pytester) -> None:
    setup(pytester)
    result = pytester.runpytest("-p", "no:warnings")
    result.assert_outcomes(passed=6, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*= phyjudge =*",
            "judge: report-judge (scripted)",
            "axis        domain   items  passed  failed  mean  min",
            "SA          general      2       2       0  4.00    4",
            "PTV         general      2       2       0  4.00    4",
            "gravity     solid        1       0       1  2.00    2",
            "collision   solid        1       1       0  5.00    5",
            "reflection  optics       1       1       0  4.00    4",
            "shadow      optics       1       0       1     -    -",
            "",
            "worst items:",
            "  FAIL  no score (JudgeOutputError)  report.phyjudge.yaml::lamp::shadow",
            "  FAIL  2 < 3                        report.phyjudge.yaml::fall::gravity",
            "  PASS  4 >= 3 *",
        ]
    )


def test_summary_helpers() -> None:
    identity = JudgeIdentity(kind="scripted", adapter="unit")

    def check(axis: str, score: int | None, min_score: int = 3) -> Check:
        judgment = None
        if score is not None:
            judgment = Judgment(
                key=axis,
                score=score,
                raw=f'{{"{axis}": {score}}}',
                video="v.mp4",
                video_sha256="0" * 64,
                prompt_sha256="1" * 64,
                judge=identity,
                seconds=0.0,
            )
        return Check(
            axis=axis,
            min_score=min_score,
            caption="c",
            video="v.mp4",
            judgment=judgment,
            error=None if judgment else "JudgeOutputError: no JSON",
            nodeid=f"t.py::test_{axis}",
        )

    checks = [check("gravity", 5), check("gravity", 1), check("SA", None), check("shadow", 3, 4)]
    rows = axis_rows(checks)
    assert [(r.axis, r.items, r.passed, r.failed, r.mean, r.min) for r in rows] == [
        ("SA", 1, 0, 1, None, None),
        ("gravity", 2, 1, 1, 3, 1),
        ("shadow", 1, 0, 1, 3, 3),
    ]
    assert table_lines(rows)[0].split() == [
        "axis",
        "domain",
        "items",
        "passed",
        "failed",
        "mean",
        "min",
    ]
    worst = worst_lines(checks, limit=3)
    assert [line.split()[0] for line in worst] == ["FAIL", "FAIL", "FAIL"]
    assert "no score (JudgeOutputError)" in worst[0]
    assert worst[1].endswith("t.py::test_gravity [gravity]") and "1 < 3" in worst[1]
    # A check survives the trip through a test report (plain dicts, as xdist sends them).
    assert Check.from_dict(checks[0].to_dict()) == checks[0]


# --------------------------------------------------------------------------- scores.json


def test_json_report_has_phyground_shape_and_thresholds(pytester: pytest.Pytester) -> None:
    setup(pytester)
    pytester.runpytest("--phyjudge-report", "out/scores.json", "-k", "not reflection")
    data = load_report(pytester)
    assert list(data)[:4] == ["meta", "num_videos", "general_dimensions", "results"]
    assert data["num_videos"] == 2
    assert data["general_dimensions"] == ["SA", "PTV", "persistence"]
    fall, lamp = data["results"]
    assert fall["video"] == "fall"
    assert fall["prompt"] == "A ball falls onto a table."
    assert fall["physical_laws"] == ["gravity", "collision"]
    assert (fall["SA"], fall["PTV"], fall["persistence"], fall["general_avg"]) == (4, 4, None, 4)
    assert fall["physical"] == {
        "laws": {
            "gravity": {"score": 2, "status": "scored"},
            "collision": {"score": 5, "status": "scored"},
        },
        "missing_laws": [],
        "coverage": 1.0,
        "avg": 3.5,
    }
    assert fall["checks"]["gravity"] == {
        "score": 2,
        "min_score": 3,
        "passed": False,
        "outcome": "failed",
        "nodeid": "report.phyjudge.yaml::fall::gravity",
        "raw": '{"gravity": 2}',
        "error": None,
        "sheet": None,  # the stand-in clip cannot be decoded, so no sheet
    }
    assert fall["checks"]["collision"]["min_score"] == 5
    assert fall["passed"] is False
    # shadow: unparseable reply; reflection: deselected with -k, so not observed.
    assert lamp["physical"]["laws"]["shadow"]["status"] == "failed"
    assert "the shadow looks odd" in lamp["physical"]["laws"]["shadow"]["error"]
    assert lamp["physical"]["laws"]["reflection"] == {"score": None, "status": "not_observed"}
    assert lamp["physical"]["missing_laws"] == ["shadow", "reflection"]
    meta = data["meta"]
    assert meta["judge"] == {
        "kind": "scripted",
        "adapter": "report-judge",
        "revision": None,
        "base": None,
        "adapter_sha256": None,
    }
    assert meta["settings"]["judge"] == {"scoring": "scripted"}
    assert meta["settings"]["plugin"]["min_score"] == 3
    assert meta["run"]["exitstatus"] == 1
    assert meta["run"]["complete"] is True
    assert data["axes"]["gravity"]["failed"] == 1
    assert data["passed"] is False
    leftovers = [p.name for p in (pytester.path / "out").iterdir() if p.name != "scores.json"]
    assert leftovers == ["scores-sheets"] or leftovers == []


def test_report_is_written_when_the_run_is_interrupted(pytester: pytest.Pytester) -> None:
    setup(pytester)
    pytester.makepyfile(
        test_zz_stop="def test_stop():\n    raise KeyboardInterrupt\n",
    )
    recorder = pytester.inline_run("--phyjudge-report", "out/scores.json", no_reraise_ctrlc=True)
    assert recorder.ret == pytest.ExitCode.INTERRUPTED
    data = load_report(pytester)
    assert data["meta"]["run"]["interrupted"] is True
    assert data["meta"]["run"]["complete"] is False
    assert data["num_videos"] == 2


def test_report_is_written_when_the_run_stops_early(pytester: pytest.Pytester) -> None:
    setup(pytester)
    result = pytester.runpytest("--phyjudge-report", "out/scores.json", "-x")
    result.assert_outcomes(passed=2, failed=1)
    data = load_report(pytester)
    assert data["meta"]["run"]["stopped_early"] is True
    assert data["meta"]["run"]["complete"] is False
    assert data["num_checks"] == 3
    result.stdout.fnmatch_lines([f"phyjudge report: {pytester.path / 'out' / 'scores.json'} *"])


def test_report_path_from_ini_is_relative_to_the_ini_file(pytester: pytest.Pytester) -> None:
    setup(pytester)
    pytester.makeini("[pytest]\nphyjudge_report = reports/run.json\n")
    pytester.mkdir("sub")
    pytester.runpytest("--rootdir", str(pytester.path), str(pytester.path))
    assert (pytester.path / "reports" / "run.json").is_file()


def test_unwritable_report_warns_and_says_so(pytester: pytest.Pytester) -> None:
    setup(pytester)
    (pytester.path / "taken").write_text("a file, not a folder")
    result = pytester.runpytest("--phyjudge-report", "taken/scores.json", "-k", "fall and SA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["phyjudge report NOT written: cannot write *taken/scores.json*"])


def test_no_report_on_xdist_workers(pytester: pytest.Pytester) -> None:
    setup(pytester)
    pytester.makeconftest(
        CONFTEST + "\nimport pytest\n"
        "@pytest.hookimpl(tryfirst=True)\n"
        "def pytest_configure(config):\n"
        "    config.workerinput = {'workerid': 'gw0'}\n"
    )
    result = pytester.runpytest("--phyjudge-report", "out/scores.json", "-k", "fall and SA")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "out").exists()
    assert "= phyjudge =" not in result.stdout.str()


# --------------------------------------------------------------------------- JUnit XML


def test_junit_properties(pytester: pytest.Pytester) -> None:
    setup(pytester)
    pytester.runpytest("--junitxml", "junit.xml", "-k", "fall")
    root = ET.parse(pytester.path / "junit.xml").getroot()
    suite_props = {p.get("name"): p.get("value") for p in root.find("testsuite").find("properties")}
    assert suite_props["phyjudge_judge"] == "report-judge (scripted)"
    assert suite_props["phyjudge_judge_kind"] == "scripted"
    assert suite_props["phyjudge_judge_adapter"] == "report-judge"
    cases = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.find("properties")}
        for case in root.iter("testcase")
    }
    assert cases["gravity"] == {
        "phyjudge_axis": "gravity",
        "phyjudge_score": "2",
        "phyjudge_min_score": "3",
    }
    assert cases["collision"]["phyjudge_min_score"] == "5"


# --------------------------------------------------------------------------- contact sheets


def test_contact_sheets_of_failed_items(pytester: pytest.Pytester, synthetic_video: Path) -> None:
    from PIL import Image

    setup(pytester, clip=synthetic_video.read_bytes())
    stale = pytester.path / "out" / "scores-sheets" / "from-an-earlier-run.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    result = pytester.runpytest("--phyjudge-report", "out/scores.json", "-k", "fall")
    result.assert_outcomes(passed=3, failed=1)
    sheets = sorted((pytester.path / "out" / "scores-sheets").iterdir())
    assert [s.name for s in sheets] == ["report.phyjudge.yaml_fall_gravity.png"]
    data = load_report(pytester)
    (fall,) = data["results"]
    assert (
        fall["checks"]["gravity"]["sheet"] == "scores-sheets/report.phyjudge.yaml_fall_gravity.png"
    )
    assert fall["checks"]["SA"]["sheet"] is None
    with Image.open(sheets[0]) as image:
        assert image.format == "PNG"
        assert image.width > 240
    result.stdout.fnmatch_lines(["contact sheets: *scores-sheets (1)"])


def test_contact_sheets_go_to_pytest_html(pytester: pytest.Pytester, synthetic_video: Path) -> None:
    """With pytest-html active, each sheet becomes an image extra on the test report."""
    setup(pytester, clip=synthetic_video.read_bytes())
    pkg = pytester.mkpydir("pytest_html")
    (pkg / "extras.py").write_text(
        "def png(content, name=None):\n    return {'format_type': 'image', 'name': name}\n"
    )
    pytester.syspathinsert()
    pytester.makeconftest(
        CONFTEST + "\nimport json\n"
        "def pytest_configure(config):\n"
        "    config.pluginmanager.register(object(), 'html')\n"
        "def pytest_runtest_logreport(report):\n"
        "    if getattr(report, 'extras', None):\n"
        "        with open('extras.json', 'a') as fh:\n"
        "            fh.write(json.dumps(report.extras) + '\\n')\n"
    )
    pytester.runpytest("--phyjudge-report", "out/scores.json", "-k", "fall and gravity")
    (line,) = (pytester.path / "extras.json").read_text().splitlines()
    assert json.loads(line) == [
        {"format_type": "image", "name": "report.phyjudge.yaml_fall_gravity.png"}
    ]


def test_write_contact_sheet(synthetic_video: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = write_contact_sheet(synthetic_video, tmp_path / "a" / "sheet.png", title="t\nsecond")
    with Image.open(out) as image:
        # 2 s at 2 fps: 4 frames in one row of 240 px thumbnails.
        assert image.size[0] == 6 + 4 * (240 + 6)
    assert not list(tmp_path.glob("a/.*"))


def test_sheet_name_is_safe() -> None:
    assert sheet_name("a b/c.py::test_x[1-2]", "gravity") == "a_b_c.py_test_x_1-2__gravity.png"
    assert sheet_name("s.phyjudge.yaml::case::gravity", "gravity") == (
        "s.phyjudge.yaml_case_gravity.png"
    )
