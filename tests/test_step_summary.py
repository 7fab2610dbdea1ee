"""The CI job summary: Markdown appended to ``GITHUB_STEP_SUMMARY`` at the end of a run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pytester_kit import Kit
from test_report import setup
from test_tables import _check

from pytest_phyjudge.reporting.step_summary import SummaryFiles, step_summary


def test_summary_of_a_run(pytester: pytest.Pytester, kit: Kit, monkeypatch) -> None:
    """The report suite (gravity scores 2 < 3, shadow's reply holds no score): the summary
    is appended after what earlier steps wrote, with the axis table and both failures."""
    setup(kit)
    summary = pytester.path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest("-p", "no:warnings", "--phyjudge-report", "out/scores.json")
    result.assert_outcomes(passed=6, failed=2)
    text = summary.read_text()
    assert text.startswith("earlier step\n### phyjudge: 8 checks, 2 failed\n")
    assert "Judge: report-judge (scripted)" in text
    assert "| axis | domain | items | passed | failed | mean | min |" in text
    assert "| gravity | solid | 1 | 0 | 1 | 2.00 | 2 |" in text
    assert "#### Failures (2)" in text
    assert "| `report.phyjudge.yaml::fall::gravity` | gravity | 2 < 3 |" in text
    assert "| `report.phyjudge.yaml::lamp::shadow` | shadow | no score (JudgeOutputError) |" in text
    assert f"JSON report: `{pytester.path / 'out' / 'scores.json'}`" in text
    assert "HTML report" not in text and "Baseline" not in text
    # A second run appends again: earlier summaries are never overwritten.
    pytester.runpytest("-p", "no:warnings")
    assert summary.read_text().count("### phyjudge: 8 checks") == 2


def test_nothing_without_the_variable(pytester: pytest.Pytester, kit: Kit, monkeypatch) -> None:
    setup(kit)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.runpytest("-p", "no:warnings").assert_outcomes(passed=6, failed=2)
    assert not list(pytester.path.glob("*.md"))


def test_unwritable_summary_warns_and_keeps_the_report(
    pytester: pytest.Pytester, kit: Kit, monkeypatch
) -> None:
    setup(kit)
    folder = pytester.path / "a-folder"
    folder.mkdir()
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(folder))
    result = pytester.runpytest("--phyjudge-report", "out/scores.json")
    result.assert_outcomes(passed=6, failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the summary never changes the status
    result.stdout.fnmatch_lines([f"CI job summary NOT written: cannot append to {folder}*"])
    assert (pytester.path / "out" / "scores.json").is_file()


def test_baseline_changes_and_html_path() -> None:
    drop = dataclasses.replace(
        _check("gravity", 2),
        suite="s",
        case="ball",
        baseline={"status": "drop", "stored": 4, "obtained": 2.0},
    )
    up = dataclasses.replace(
        _check("SA", 5), baseline={"status": "improved", "stored": 3, "obtained": 5.0}
    )
    same = dataclasses.replace(_check("PTV", 4), baseline={"status": "same", "stored": 4})
    files = SummaryFiles(report=Path("out/scores.json"), html=Path("out/html"))
    text = "\n".join(step_summary([up, drop, same], files))
    assert "#### Baseline: 1 drop, 1 improvement" in text
    assert text.index("| `t.py::test_gravity [gravity]` | drop | 4 -> 2 |") < text.index(
        "| `t.py::test_SA [SA]` | improved | 3 -> 5 |"
    )
    assert "test_PTV` | same" not in text
    assert "HTML report: `out/html`" in text and "JSON report: `out/scores.json`" in text
    assert "#### Failures (1)" in text  # the gravity check's own 2 < 3
