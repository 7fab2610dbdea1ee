"""A first run that explains itself: ``--phyjudge-verdicts report`` records a missed
threshold as "would fail" without failing the item (errors still fail), and a run on the
tiny judge ends with one line saying what its verdicts mean and what to run next."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pytester_kit import Kit

from pytest_phyjudge._exceptions import VideoError
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.engine.video import check_video_file, similar_video
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.reporting.step_summary import SummaryFiles, step_summary
from pytest_phyjudge.reporting.tables import tiny_run_line

pytest_plugins = "pytester"

#: gravity misses its threshold of 3 everywhere; the rest pass.
REPLIES = {"gravity": 2, "*": 4}

SUITE = """
suite: first
videos: clips/{id}.mp4
defaults: {metrics: []}
cases:
  - id: fall
    prompt: A ball falls onto a table.
    laws: [gravity]
  - id: float
    prompt: A ball floats up.
    laws: [gravity]
    marks:
      - xfail: {reason: on purpose, strict: false}
  - id: gone
    prompt: A cup tips over.
    laws: [collision]
"""

TESTS = """
import pytest
from pytest_phyjudge import assert_physics, assert_video

def test_fall_by_hand():
    judgments = assert_video("clips/fall.mp4", "A ball falls onto a table.",
                             laws=["gravity"], metrics=["SA"])
    assert set(judgments) == {"gravity", "SA"}  # the test goes on past the miss

@pytest.mark.xfail(raises=AssertionError, strict=False, reason="on purpose")
def test_float_by_hand():
    assert_physics("clips/float.mp4", "A ball floats up.", law="gravity")

def test_gone_by_hand():
    assert_physics("clips/gone.mp4", "A cup tips over.", law="collision")
"""


def _run(pytester: pytest.Pytester, kit: Kit, *args: str) -> pytest.RunResult:
    kit.conftest(REPLIES, name="first-judge")
    kit.suite(SUITE, name="first")
    kit.clip("fall")
    kit.clip("float")
    pytester.makepyfile(test_first=TESTS)
    return pytester.runpytest("-p", "no:warnings", "--phyjudge-report", "out/scores.json", *args)


def test_report_mode_passes_missed_thresholds_and_still_fails_errors(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    result = _run(pytester, kit, "--phyjudge-verdicts", "report", "--phyjudge-html", "out/html")
    # fall's gravity would fail (suite and test pass); float's are expected failures
    # (xfailed, as pytest says); gone has no clip: an error, which fails in every mode.
    result.assert_outcomes(passed=2, xfailed=2, failed=2)
    result.stdout.fnmatch_lines(["*WOULD FAIL  2 < 3 * first.phyjudge.yaml::fall::gravity"])
    rows = {(r["source"], r["video"]): r["checks"] for r in kit.report()["results"]}
    fall = rows[("first.phyjudge.yaml::fall", "fall")]["gravity"]
    assert fall["would_fail"] is True and fall["passed"] is False and fall["outcome"] == "passed"
    by_hand = rows[("test_first.py::test_fall_by_hand", "fall")]
    assert by_hand["gravity"]["would_fail"] is True and "would_fail" not in by_hand["SA"]
    floated = rows[("first.phyjudge.yaml::float", "float")]["gravity"]
    assert floated["outcome"] == "xfailed" and "would_fail" not in floated
    page = (pytester.path / "out" / "html" / "index.html").read_text()
    # The page counts what the terminal counts: 4 gravity items (2 suite, 2 test functions).
    result.stdout.fnmatch_lines(["gravity *solid *4 *0 *4 *2.00 *2"])
    assert re.search(r'data-axis="gravity".*?</td>\s*<td>4</td><td>0</td>', page, re.S)
    badges = re.findall(r'<h2><span class="badge [^"]*">([^<]*)</span>', page)
    assert badges == ["would fail", "xfail", "error", "would fail", "xfail"]
    assert "suite case first.phyjudge.yaml::fall" in page
    assert "test test_first.py::test_fall_by_hand" in page


def test_enforce_is_the_default_and_fails_the_miss(pytester: pytest.Pytester, kit: Kit) -> None:
    result = _run(pytester, kit)
    result.assert_outcomes(failed=4, xfailed=2)
    assert "would_fail" not in str(kit.report())


def test_the_ini_sets_the_mode_and_a_bad_mode_is_a_usage_error(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    pytester.makeini("[pytest]\nphyjudge_verdicts = report\n")
    _run(pytester, kit).assert_outcomes(passed=2, xfailed=2, failed=2)
    result = pytester.runpytest("--phyjudge-verdicts", "warn")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'warn' is not a verdicts mode; use enforce*or report*"])


def _check(kind: str, score: int, *, enforced: bool = True) -> Check:
    identity = JudgeIdentity(kind=kind, adapter="a")
    judgment = Judgment(
        key="gravity",
        score=score,
        raw="{}",
        video="v.mp4",
        video_sha256="0" * 64,
        prompt_sha256="1" * 64,
        judge=identity,
        seconds=0.0,
    )
    return Check("gravity", 3, "c", "v.mp4", judgment=judgment, enforced=enforced, nodeid="t")


def test_the_tiny_judges_run_says_what_its_verdicts_mean_and_what_next() -> None:
    checks = [_check("tiny", 2, enforced=False), _check("tiny", 4, enforced=False)]
    line = tiny_run_line(checks, enforced=False)
    assert line is not None
    assert line.startswith("phyjudge: the tiny judge's scores are meaningless (it checks the")
    assert "1 of 2 verdicts would fail. Next: run a suite of your own clips" in line
    enforced = tiny_run_line([_check("tiny", 2)], enforced=True) or ""
    assert "1 of 1 verdict failed (add --phyjudge-verdicts report to record them" in enforced
    assert tiny_run_line([_check("local", 2)], enforced=True) is None
    summary = "\n".join(step_summary(checks, SummaryFiles()))
    assert "1 would fail" in summary and "| would fail |" in summary


def test_a_missing_video_names_the_closest_file_beside_it(tmp_path: Path) -> None:
    (tmp_path / "ball_falls.mp4").write_bytes(b"x")
    (tmp_path / "wan__lamp.mp4").write_bytes(b"x")
    with pytest.raises(VideoError) as typo:
        check_video_file(tmp_path / "ball_fals.mp4")
    assert f"Did you mean {str(tmp_path / 'ball_falls.mp4')!r}?" in str(typo.value)
    assert "Did you mean" in similar_video(tmp_path / "lamp.mp4")  # the generator's prefix
    assert similar_video(tmp_path / "cup.mp4") == ""
    assert similar_video(tmp_path / "nowhere" / "ball.mp4") == ""


def test_a_suite_case_without_its_clip_gets_the_did_you_mean(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    kit.conftest(REPLIES, name="first-judge")
    kit.suite(SUITE, name="first")
    kit.clip("fall")
    kit.clip("float")
    kit.clip("gone_")
    result = pytester.runpytest("-p", "no:warnings", "-k", "gone")
    result.stdout.fnmatch_lines(
        ["*The video of case 'gone' does not exist: *Did you mean *gone_.mp4'?*"]
    )


def test_a_drop_below_the_baseline_is_counted_as_a_failure() -> None:
    dropped = _check("tiny", 3)  # passes its threshold, fails on the baseline
    dropped.baseline = {"status": "drop", "stored": 4}
    dropped.outcome = "failed"
    line = tiny_run_line([dropped, _check("tiny", 4)], enforced=True) or ""
    assert "0 of 2 verdicts would fail; 1 failed on a drop below the baseline. Next:" in line


def test_expected_failures_are_counted_as_such() -> None:
    expected = _check("tiny", 1)
    expected.outcome = "xfailed"
    line = tiny_run_line([expected, _check("tiny", 2, enforced=False)], enforced=False) or ""
    assert "2 of 2 verdicts would fail, 1 of them as expected (xfail). Next:" in line
    only_expected = tiny_run_line([expected], enforced=True) or ""
    assert "1 of 1 verdict would fail, 1 of them as expected (xfail)" in only_expected
