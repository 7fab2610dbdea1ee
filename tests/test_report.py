"""Reports of a pytest run: the terminal summary, scores.json and JUnit XML (contact sheets
are in test_sheets.py, the text builders in test_tables.py)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest
from pytester_kit import Kit

from pytest_phyjudge._outputs import OwnedFolder

#: The scripted judge's replies: gravity fails, collision passes its 5, shadow is unparseable.
REPLIES = {"gravity": 2, "collision": 5, "shadow": "the shadow looks odd", "*": 4}

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


def setup(kit: Kit, clip: bytes | None = None) -> None:
    """The scripted conftest judge ``report-judge``, the report suite, and its two clips
    (stand-ins unless ``clip`` gives the bytes of a real video)."""
    kit.conftest(REPLIES, name="report-judge")
    kit.suite(SUITE, name="report")
    for name in ("fall", "lamp"):
        kit.clip(name, clip)


# --------------------------------------------------------------------------- terminal


def test_terminal_summary_table_and_worst_items(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
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


# --------------------------------------------------------------------------- scores.json


def test_json_report_has_phyground_shape_and_thresholds(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    setup(kit)
    pytester.runpytest("--phyjudge-report", "out/scores.json", "-k", "not reflection")
    data = kit.report()
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
    prompt = fall["checks"]["gravity"].pop("prompt")  # what the judge read, for the HTML report
    assert set(prompt) == {"system", "user"} and "A ball falls onto a table." in prompt["user"]
    assert fall["checks"]["gravity"] == {
        "score": 2,
        "min_score": 3,
        "passed": False,
        "outcome": "failed",
        "nodeid": "report.phyjudge.yaml::fall::gravity",
        "raw": '{"gravity": 2}',
        "error": None,
        "sheet": None,  # the stand-in clip cannot be decoded, so no sheet
        "probs": None,  # greedy scoring: no digit probabilities
        "expected": None,
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


def test_report_is_written_when_the_run_is_interrupted(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    pytester.makepyfile(
        test_zz_stop="def test_stop():\n    raise KeyboardInterrupt\n",
    )
    recorder = pytester.inline_run("--phyjudge-report", "out/scores.json", no_reraise_ctrlc=True)
    assert recorder.ret == pytest.ExitCode.INTERRUPTED
    data = kit.report()
    assert data["meta"]["run"]["interrupted"] is True
    assert data["meta"]["run"]["complete"] is False
    assert data["num_videos"] == 2


def test_report_is_written_when_the_run_stops_early(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    result = pytester.runpytest("--phyjudge-report", "out/scores.json", "-x")
    result.assert_outcomes(passed=2, failed=1)
    data = kit.report()
    assert data["meta"]["run"]["stopped_early"] is True
    assert data["meta"]["run"]["complete"] is False
    assert data["num_checks"] == 3
    result.stdout.fnmatch_lines([f"phyjudge report: {pytester.path / 'out' / 'scores.json'} *"])


def test_report_path_from_ini_is_relative_to_the_ini_file(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    setup(kit)
    pytester.makeini("[pytest]\nphyjudge_report = reports/run.json\n")
    pytester.mkdir("sub")
    pytester.runpytest("--rootdir", str(pytester.path), str(pytester.path))
    assert (pytester.path / "reports" / "run.json").is_file()


def test_unwritable_report_warns_and_says_so(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    (pytester.path / "taken").write_text("a file, not a folder")
    result = pytester.runpytest("--phyjudge-report", "taken/scores.json", "-k", "fall and SA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["phyjudge report NOT written: cannot write *taken/scores.json*"])


def test_no_report_on_xdist_workers(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    kit.conftest(
        REPLIES,
        name="report-judge",
        extra="\nimport pytest\n"
        "@pytest.hookimpl(tryfirst=True)\n"
        "def pytest_configure(config):\n"
        "    config.workerinput = {'workerid': 'gw0'}\n",
    )
    result = pytester.runpytest("--phyjudge-report", "out/scores.json", "-k", "fall and SA")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "out").exists()
    assert "= phyjudge =" not in result.stdout.str()


# --------------------------------------------------------------------------- JUnit XML


def test_junit_properties(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
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


def test_junit_shares_a_cases_judging_time_among_its_items(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    """The first item of a case judges all its axes; each item's time is its share (each
    axis here takes at least 0.2 s), not 0.8 s on the first and nothing on the others."""
    setup(kit)
    pytester.makeconftest(
        "import time\n"
        "from pytest_phyjudge import ScriptedJudge\n\n"
        "def reply(axis, caption, video):\n"
        "    time.sleep(0.2)\n"
        "    return 4\n\n"
        "def pytest_phyjudge_make_judge(config):\n"
        "    return ScriptedJudge(reply, name='slow-judge')\n"
    )
    pytester.runpytest("--junitxml", "junit.xml", "-k", "fall", "-p", "no:randomly")
    root = ET.parse(pytester.path / "junit.xml").getroot()
    times = [float(case.get("time")) for case in root.iter("testcase")]
    assert len(times) == 4
    assert min(times) >= 0.199
    assert max(times) < 0.5 * sum(times)


# --------------------------------------------------------------------------- the summary


def test_quiet_summary_shows_the_axis_table_only(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    result = pytester.runpytest("-q", "--phyjudge-report", "out/s.json")
    result.assert_outcomes(passed=6, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*= phyjudge =*",
            "axis        domain   items  passed  failed  mean  min",
            "SA          general      2       2       0  4.00    4",
        ]
    )
    text = result.stdout.str()
    for absent in ("worst items:", "judge: report-judge", "phyjudge report:"):
        assert absent not in text
    assert (pytester.path / "out" / "s.json").is_file()
    # A problem is still said.
    (pytester.path / "taken").write_text("a file, not a folder")
    result = pytester.runpytest("-q", "--phyjudge-report", "taken/s.json", "-k", "fall and SA")
    result.stdout.fnmatch_lines(["phyjudge report NOT written: cannot write *taken/s.json*"])


JUDGES = """
from pytest_phyjudge import JudgeIdentity, ScriptedJudge

def make():
    # Not named 'scripted', so its judgments are cached as a real judge's would be.
    judge = ScriptedJudge({"*": 5}, name="cacheable")
    judge.identity = JudgeIdentity(kind="local", adapter="cacheable")
    return judge
"""


def test_xdist_summary_keeps_the_cache_line(pytester: pytest.Pytester, kit: Kit) -> None:
    """The workers judge (and hit the cache); the controller's summary adds up their counts."""
    pytest.importorskip("xdist")
    setup(kit)
    pytester.makeconftest("")
    kit.module("judges", JUDGES)
    pytester.makeini("[pytest]\npythonpath = .\n")
    args = ["-n", "2", "--phyjudge-judge", "judges:make", "--phyjudge-cache", "cache"]
    first = pytester.runpytest_subprocess(*args)
    first.assert_outcomes(passed=8)
    first.stdout.fnmatch_lines(["judgment cache (use, *): 0 hits, 8 misses, *"])
    second = pytester.runpytest_subprocess(*args)
    second.assert_outcomes(passed=8)
    second.stdout.fnmatch_lines(["judgment cache (use, *): 8 hits, 0 misses, *"])


# --------------------------------------------------------------------------- files


def test_collect_only_never_writes_a_report(pytester: pytest.Pytester, kit: Kit) -> None:
    """``--collect-only`` judges nothing: the last run's report and sheets stay as they are,
    whether the report is named on the command line or in the ini file."""
    setup(kit)
    report = pytester.path / "out" / "scores.json"
    sheet = pytester.path / "out" / "scores-sheets" / "last-run-0123456789abcdef.png"
    OwnedFolder.open(sheet.parent).write_bytes(sheet.name, b"\x89PNG\r\n\x1a\nlast run")
    last = b'{"format": "pytest-phyjudge-scores", "from": "the last run"}\n'
    report.write_bytes(last)
    pytester.runpytest("--collect-only", "--phyjudge-report", "out/scores.json")
    assert report.read_bytes() == last and sheet.is_file()
    pytester.makeini("[pytest]\nphyjudge_report = out/scores.json\n")
    result = pytester.runpytest("--co", "-q")
    assert "8 tests collected" in result.stdout.str()
    assert report.read_bytes() == last and sheet.is_file()
    pytester.runpytest("-k", "fall and SA")  # a real run does write it
    assert kit.report()["num_checks"] == 1


def test_report_is_as_readable_as_the_umask_allows(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    old = os.umask(0o022)
    try:
        pytester.runpytest("--phyjudge-report", "out/scores.json", "-k", "fall and SA")
    finally:
        os.umask(old)
    assert (pytester.path / "out" / "scores.json").stat().st_mode & 0o777 == 0o644
