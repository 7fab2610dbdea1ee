"""Faults at the end of a run (issue 11, class 3): a cancelled run still leaves its report,
and a report, baseline or scores file that cannot be written never exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytester_kit import Kit

from pytest_phyjudge.cli.main import main

SUITE = """
suite: faults
videos: clips/{id}.mp4
defaults: {metrics: [SA]}
cases:
  - id: fall
    prompt: A ball falls onto a table.
    laws: [gravity]
"""

#: Collected after the suite (``t`` sorts after ``f``): announces itself, then hangs.
BLOCKING_TEST = """
import time
from pathlib import Path

def test_hangs():
    Path("blocking.started").write_text("yes")
    time.sleep(60)
"""


def _suite(kit: Kit) -> None:
    kit.conftest({"*": 4}, name="faults-judge")
    kit.suite(SUITE, name="faults")
    kit.clip("fall")


def test_sigterm_writes_the_report_of_the_finished_items(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    _suite(kit)
    pytester.makepyfile(test_zz_blocking=BLOCKING_TEST)
    marker = pytester.path / "blocking.started"
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist"]
    process = subprocess.Popen(
        [*args, "--phyjudge-report", "out/scores.json"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTEST_ADDOPTS": ""},
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the blocking test never started"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    report = pytester.path / "out" / "scores.json"
    assert report.is_file(), output
    data = json.loads(report.read_text())
    assert data["meta"]["run"]["interrupted"] is True
    assert data["meta"]["run"]["complete"] is False
    assert data["num_checks"] == 2  # fall::SA and fall::gravity, judged before the hang


def test_an_unwritable_report_fails_a_passing_run(pytester: pytest.Pytester, kit: Kit) -> None:
    _suite(kit)
    (pytester.path / "taken").write_text("a file, not a folder")
    result = pytester.runpytest("--phyjudge-report", "taken/scores.json")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["phyjudge report NOT written: cannot write *taken/scores.json*"])


def test_an_unwritable_baseline_fails_a_passing_run(pytester: pytest.Pytester, kit: Kit) -> None:
    """The baseline's folder is fine when the run starts (an unreadable baseline is already
    a usage error) and becomes a file while the items run."""
    kit.conftest(
        {"*": 4},
        name="faults-judge",
        extra="\nfrom pathlib import Path\n\n"
        "def pytest_collection_finish(session):\n"
        "    Path('taken').write_text('a file, not a folder')\n",
    )
    kit.suite(SUITE, name="faults")
    kit.clip("fall")
    result = pytester.runpytest(
        "--phyjudge-baseline", "taken/baseline.json", "--phyjudge-update-baseline"
    )
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*baseline NOT updated: cannot write *taken/baseline.json*"])


# --------------------------------------------------------------------------- score-dir

JUDGE_MODULE = """
from pytest_phyjudge import ScriptedJudge

CALLS = []

def make():
    CALLS.append("made")
    return ScriptedJudge({"*": 4}, name="faults-cli")
"""


def _score_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: Path) -> list[str]:
    from pytest_phyjudge.testing import write_test_video

    write_test_video(tmp_path / "videos" / "fall.mp4", seed=1)
    prompts = tmp_path / "prompts.json"
    prompt = {"video": "fall", "prompt": "A ball falls.", "physical_laws": ["gravity"]}
    prompts.write_text(json.dumps({"prompts": [prompt]}))
    (tmp_path / "faults_cli_judge.py").write_text(JUDGE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "faults_cli_judge", raising=False)  # a fresh CALLS
    return [
        *("score-dir", "--videos", str(tmp_path / "videos"), "--prompts", str(prompts)),
        *("--judge", "faults_cli_judge:make", "--metrics", "SA", "--out", str(out)),
    ]


def test_score_dir_refuses_an_out_under_a_file_before_judging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    out = tmp_path / "taken" / "deeper" / "scores.json"
    code = main(_score_dir(tmp_path, monkeypatch, out))
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(out) in err and "is a file, not a folder" in err and "--out" in err
    assert "Traceback" not in err
    import faults_cli_judge

    assert faults_cli_judge.CALLS == []  # refused before any judge was made


def test_score_dir_refuses_an_out_that_is_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    out.mkdir()
    code = main(_score_dir(tmp_path, monkeypatch, out))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "is a folder" in err and str(out / "scores.json") in err


def test_score_dir_says_which_out_failed_to_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A location that passes the check but fails at write time (read-only, disk full)."""
    from pytest_phyjudge.cli import batch

    def refuse(path: object, data: object) -> Path:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(batch, "write_json_atomic", refuse)
    out = tmp_path / "scores.json"
    code = main(_score_dir(tmp_path, monkeypatch, out))
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"Cannot write --out {str(out)!r}" in err and "Read-only file system" in err
