"""The run's terminal text and scores.json built from checks, without a pytest run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_phyjudge._files import write_json_atomic
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.reporting.baseline_run import BaselineRun, BaselineUpdate
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.reporting.run_report import build_report
from pytest_phyjudge.reporting.tables import axis_rows, baseline_lines, table_lines, worst_lines

IDENTITY = JudgeIdentity(kind="scripted", adapter="unit")


def _check(
    axis: str, score: int, *, video: str = "v.mp4", caption: str = "c", nodeid: str | None = None
) -> Check:
    judgment = Judgment(
        key=axis,
        score=score,
        raw=f'{{"{axis}": {score}}}',
        video=video,
        video_sha256="0" * 64,
        prompt_sha256="1" * 64,
        judge=IDENTITY,
        seconds=0.0,
    )
    return Check(
        axis=axis,
        min_score=3,
        caption=caption,
        video=video,
        judgment=judgment,
        nodeid=nodeid or f"t.py::test_{axis}",
    )


# --------------------------------------------------------------------------- terminal text


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


def test_baseline_lines() -> None:
    key = ("basics", "ball", "gravity")
    compared = BaselineRun(
        path=Path("base.json"),
        by_status={"drop": (key,), "new": (("basics", "cup", "SA"),)},
        removed=(),
    )
    assert baseline_lines(compared) == [
        (
            "phyjudge baseline base.json: 1 drop, 0 improvements, 1 new, 0 not judged in this run",
            True,
        ),
        ("  dropped: basics::ball::gravity", True),
        ("  update it with --phyjudge-update-baseline", False),
    ]
    refused = BaselineRun(
        path=Path("base.json"),
        by_status={"drop": (key,)},
        removed=(),
        update=BaselineUpdate(refusal="the run did not complete"),
    )
    lines = baseline_lines(refused)
    assert not lines[0][1]  # drops do not fail items while updating
    assert lines[-1] == ("baseline NOT updated: the run did not complete", True)
    updated = BaselineRun(
        path=Path("base.json"),
        by_status={},
        removed=(("basics", "old", "SA"),),
        update=BaselineUpdate(entries=3, added=1, backup=Path("base.json.bak")),
    )
    assert [text for text, _ in baseline_lines(updated)[1:]] == [
        "baseline updated: base.json (3 entries, 1 new, 1 not judged in this run kept); "
        "previous version kept as base.json.bak",
        "  kept: basics::old::SA (remove with --phyjudge-prune-baseline)",
    ]


# --------------------------------------------------------------------------- scores.json


def test_one_clip_with_two_captions_gets_two_distinct_rows(tmp_path: Path) -> None:
    test = "t.py::test_ball"
    checks = [
        _check("gravity", 4, video="clips/ball.mp4", caption="A ball falls.", nodeid=test),
        _check("gravity", 2, video="clips/ball.mp4", caption="A ball bounces.", nodeid=test),
        _check("SA", 5, video="clips/ball.mp4", caption="A ball falls.", nodeid=test),
        _check("SA", 5, video="other/ball.mp4", caption="A ball falls.", nodeid=test),
    ]
    document = build_report(
        checks,
        report_path=tmp_path / "scores.json",
        plugin_settings={"min_score": 3},
        state_judge=None,
        run={},
    )
    rows = [(r["video"], r["prompt"], r["video_path"]) for r in document["results"]]
    assert rows == [
        ("ball", "A ball falls.", "clips/ball.mp4"),
        ("ball#2", "A ball bounces.", "clips/ball.mp4"),
        ("ball#3", "A ball falls.", "other/ball.mp4"),
    ]
    assert document["meta"]["settings"]["plugin"] == {"min_score": 3}


def test_one_clip_from_two_sources_is_two_labelled_rows_and_every_check_counts(
    tmp_path: Path,
) -> None:
    """The same clip judged by a suite case and by two test functions (one of them asserting
    gravity twice): a row per source, none losing an axis to another, so the report's rows
    hold as many checks as the terminal's table counts."""
    suite_check = _check("gravity", 4, video="ball.mp4", nodeid="s.phyjudge.yaml::ball::gravity")
    suite_check.suite, suite_check.case = "basics", "ball"
    checks = [
        suite_check,
        _check("gravity", 2, video="ball.mp4", nodeid="t.py::test_fall"),
        _check("gravity", 3, video="ball.mp4", nodeid="t.py::test_axes"),
        _check("gravity", 5, video="ball.mp4", nodeid="t.py::test_axes"),
    ]
    document = build_report(
        checks, report_path=tmp_path / "s.json", plugin_settings={}, state_judge=None, run={}
    )
    sources = [(r["source"], r["suite"], list(r["checks"])) for r in document["results"]]
    assert sources == [
        ("s.phyjudge.yaml::ball", "basics", ["gravity"]),
        ("t.py::test_fall", None, ["gravity"]),
        ("t.py::test_axes", None, ["gravity"]),
        ("t.py::test_axes", None, ["gravity"]),
    ]
    in_rows = sum(len(r["checks"]) for r in document["results"])
    assert in_rows == document["axes"]["gravity"]["items"] == 4


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_json_files_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    """Reports and baselines are shared files: as readable as the user's umask allows."""
    old = os.umask(umask)
    try:
        path = write_json_atomic(tmp_path / "out" / "scores.json", {"a": 1})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
    assert [p.name for p in path.parent.iterdir()] == ["scores.json"]
