"""The judgment cache inside a pytest run: record, replay without a model, a miss, a kill."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytester_kit import Kit

#: Every run here records with the tiny in-process judge.
pytestmark = pytest.mark.local

CASES = 24


def _suite(kit: Kit, cases: int = CASES) -> None:
    """``cases`` cases judging one real clip."""
    kit.videos(["ball"], frames=8)
    lines = ["videos: clips/ball.mp4", "defaults: {metrics: [SA], min_score: 1}", "cases:"]
    lines += [
        f"  - {{id: c{i:02d}, prompt: Ball number {i} falls., laws: [gravity]}}"
        for i in range(cases)
    ]
    kit.suite("\n".join(lines) + "\n", name="many")


def _args(cache: Path, *extra: str) -> list[str]:
    return [
        "--phyjudge-judge",
        "tiny",
        "--phyjudge-scoring",
        "distribution",
        "--phyjudge-cache",
        str(cache),
        "-p",
        "no:randomly",
        *extra,
    ]


def test_record_then_replay_without_the_model(pytester: pytest.Pytester, kit: Kit, tmp_path: Path):
    _suite(kit, cases=3)
    cache = tmp_path / "judgments"
    first = pytester.runpytest_subprocess(
        *_args(cache, "--phyjudge-report", "first.json"), timeout=600
    )
    first.assert_outcomes(passed=6)
    first.stdout.fnmatch_lines(["judgment cache (use, *): 0 hits, 6 misses, 0.0 judge-seconds*"])

    # Take the tiny judge's base model away: a replay must not need it.
    tiny = pytester.path / ".pytest_cache" / "d" / "phyjudge-tiny"
    shutil.rmtree(tiny / "base")
    replay = pytester.runpytest_subprocess(
        *_args(cache, "--phyjudge-cache-mode", "only", "--phyjudge-report", "replay.json"),
        timeout=600,
    )
    replay.assert_outcomes(passed=6)
    replay.stdout.fnmatch_lines(["judgment cache (only, *): 6 hits, 0 misses*"])
    scores = [
        json.loads((pytester.path / f).read_text())["results"]
        for f in ("first.json", "replay.json")
    ]
    assert [r["SA"] for r in scores[0]] == [r["SA"] for r in scores[1]]

    # A case never recorded fails in replay with the video, the axis and the key.
    _suite(kit, cases=4)
    miss = pytester.runpytest_subprocess(
        *_args(cache, "--phyjudge-cache-mode", "only", "-k", "c03"), timeout=600
    )
    miss.assert_outcomes(failed=2)
    miss.stdout.fnmatch_lines(["*Replay mode*no judgment of 'gravity' for video*ball.mp4*key *"])


def test_a_killed_run_keeps_every_completed_judgment(
    pytester: pytest.Pytester, kit: Kit, tmp_path: Path
):
    _suite(kit)
    cache = tmp_path / "judgments"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-v", *_args(cache)],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    done: list[str] = []
    deadline = time.monotonic() + 300
    while len(done) < 10 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if " PASSED" in line or " FAILED" in line:
            done.append(line.split(" ")[0])
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert len(done) >= 10, "the run ended before it could be killed mid-suite"
    assert len(done) < 2 * CASES, "the run finished before the kill"

    replay = pytester.runpytest_subprocess(
        *_args(cache, "--phyjudge-cache-mode", "only"), *done, timeout=600
    )
    replay.assert_outcomes(passed=len(done))
    replay.stdout.fnmatch_lines([f"judgment cache (only, *): {len(done)} hits, 0 misses*"])
