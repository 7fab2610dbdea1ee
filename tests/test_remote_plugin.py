"""pytest runs with --phyjudge-url: suites judged over real HTTP by a scripted judge served on
127.0.0.1 (canned replies, no model; its identity says ``scripted``), in one process and
across two pytest-xdist workers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytester_kit import Kit

from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge.testing.faults import Fault, FaultyJudgeServer

SUITE = """
suite: served
videos: clips/{id}.mp4
defaults: {metrics: [SA, PTV]}
cases:
  - id: fall
    prompt: A ball falls onto a table.
    laws: [gravity]
  - id: roll
    prompt: A ball rolls down a ramp.
    laws: [gravity, collision]
  - id: lamp
    prompt: A lamp lights a vase.
    laws: [shadow]
"""
#: 3 + 4 + 3 axis items; gravity (scripted 2) fails its default minimum of 3.
ITEMS, FAILING = 10, 2


@pytest.fixture
def server() -> Iterator[FaultyJudgeServer]:
    judge = ScriptedJudge({"*": 4, "gravity": 2}, name="served-scripted")
    with FaultyJudgeServer(judge) as running:
        yield running


@pytest.fixture
def suite(kit: Kit) -> Path:
    """The served suite and its real clips; the folder of the run."""
    kit.suite(SUITE, name="served")
    kit.videos(["fall", "roll", "lamp"], frames=4, fps=2)
    return kit.pytester.path


def _judged_axes(report: dict) -> int:
    return sum(len(video["checks"]) for video in report["results"])


def test_a_suite_judged_by_a_server(pytester, kit, suite, server):
    result = pytester.runpytest(
        "--phyjudge-url",
        server.url,
        "--phyjudge-report",
        "out/scores.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=ITEMS - FAILING, failed=FAILING)
    result.stdout.fnmatch_lines(
        [
            f"phyjudge: judge served at {server.url}*",
            f"judge servers: {ITEMS} requests, 0 retried; answered: {server.url} {ITEMS}",
        ]
    )
    report = kit.report()
    assert report["meta"]["judge"]["adapter"] == "served-scripted"
    assert report["meta"]["judge"]["kind"] == "scripted"
    assert _judged_axes(report) == ITEMS
    assert server.requests == ITEMS  # one request per axis of each case, nothing twice


def test_two_xdist_workers_one_complete_report_and_a_shared_cache(pytester, kit, suite, server):
    pytest.importorskip("xdist")
    args = ["--phyjudge-url", server.url, "--phyjudge-report", "out/scores.json"]
    args += ["--phyjudge-cache", "judgments"]
    result = pytester.runpytest_subprocess("-n", "2", *args)
    result.assert_outcomes(passed=ITEMS - FAILING, failed=FAILING)
    report = kit.report()
    assert sorted(v["video"] for v in report["results"]) == ["fall", "lamp", "roll"]
    assert _judged_axes(report) == ITEMS
    assert server.requests == ITEMS
    # The workers wrote one shared cache: a second run asks the server nothing new.
    (suite / "out" / "scores.json").unlink()
    again = pytester.runpytest_subprocess("-n", "2", *args, "--phyjudge-cache-mode", "only")
    again.assert_outcomes(passed=ITEMS - FAILING, failed=FAILING)
    assert server.requests == ITEMS
    assert _judged_axes(kit.report()) == ITEMS


def test_servers_down_fail_the_items_quickly_with_one_message(pytester, kit, suite, server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # Identity from the live server's provenance would need it up; a dead replica alone
    # cannot say who it is, so pair it with one that is failing every request instead.
    server.faults.always(Fault("error", status=503))
    result = pytester.runpytest(
        "--phyjudge-url",
        f"{dead},{server.url}",
        "--phyjudge-retries",
        "2",
        "--phyjudge-report",
        "out/scores.json",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(failed=ITEMS)
    result.stdout.fnmatch_lines(["*Every judge server is down*"])
    output = result.stdout.str()
    assert dead in output and server.url in output
    # The breaker opened after the first case: later cases did not wait on the servers.
    assert server.requests <= 6
    report = kit.report()  # the report is still written, with every item's error
    assert report["num_videos"] == 3 and report["num_checks"] == ITEMS


def test_url_and_a_judge_factory_are_refused_together(pytester, suite):
    result = pytester.runpytest("--phyjudge-url", "http://127.0.0.1:9", "--phyjudge-judge", "tiny")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--phyjudge-url and --phyjudge-judge tiny both choose the judge*"]
    )
    assert "(--url)" not in result.stderr.str()  # pytest's words only


def test_bad_url_is_a_usage_error(pytester, suite):
    result = pytester.runpytest("--phyjudge-url", "localhost:8000")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*http://HOST:PORT*"])


def test_the_servers_can_come_from_the_ini_file(pytester, suite, server):
    pytester.makeini(f"[pytest]\nphyjudge_url = {server.url}\nphyjudge_retries = 0\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "SA")
    result.assert_outcomes(passed=3, deselected=ITEMS - 3)
    assert server.requests == 3


def test_later_cases_are_judged_ahead_to_fill_the_concurrency(pytester, kit):
    """Six cases of two axes against a scripted judge served in parallel, each request held
    0.2 s: with --phyjudge-concurrency 6, requests of several cases overlap; every axis is
    still judged once, and each item gets its own case's scores."""
    judge = ScriptedJudge(lambda axis, caption, video: int(video.stem[1]) % 5 + 1, name="by-clip")
    cases = [f"  - {{id: c{i}, prompt: Ball {i} falls., laws: [gravity]}}" for i in range(6)]
    head = "videos: clips/{id}.mp4\ndefaults: {metrics: [SA], min_score: 1}\ncases:\n"
    kit.suite(head + "\n".join(cases) + "\n", name="ahead")
    kit.videos([f"c{i}" for i in range(6)], frames=4, fps=2)
    # file:// URLs, so that the scripted judge sees which clip it judges.
    with FaultyJudgeServer(judge, serial=False, media_root=pytester.path) as server:
        server.faults.always(Fault("delay", seconds=0.2))
        result = pytester.runpytest(
            *("--phyjudge-url", server.url, "--phyjudge-media-root", str(pytester.path)),
            *("--phyjudge-concurrency", "6", "--phyjudge-report", "out/scores.json"),
            *("-p", "no:cacheprovider"),
        )
        result.assert_outcomes(passed=12)
        assert server.requests == 12
        assert server.max_in_flight > 2  # more than one case's two axes at once
    report = kit.report()
    for row in report["results"]:
        expected = int(row["video"][1]) % 5 + 1
        assert row["SA"] == expected and row["physical"]["laws"]["gravity"]["score"] == expected
