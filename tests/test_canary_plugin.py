"""Judge canaries in a pytest run (``--phyjudge-canaries``): checked once, before the first
judgment, on the run's own judge; a drift fails every judged item (one full message) or is
reported (warn); replay checks nothing and says so; the reports carry the result and its
cost. And the judge server's ``system_fingerprint`` in the reports and the baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytester_kit import Kit

from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge.canary.model import CanaryFile, CanaryItem
from pytest_phyjudge.canary.record import Ask, observe_judge
from pytest_phyjudge.engine.video import sha256_file
from pytest_phyjudge.judges.settings import JudgeSettings
from pytest_phyjudge.regression.baseline import load_baseline, server_note, write_baseline
from pytest_phyjudge.testing.faults import Fault, FaultyJudgeServer

#: The run's judge: SCRIPTED, gravity scored ``gravity.txt`` (2 unless a test rewrites it),
#: every other axis 4; each call appended to ``calls.log`` (process id, clip, axis), so
#: calls are counted across pytest-xdist workers too.
CONFTEST = """
import os
from pathlib import Path
from pytest_phyjudge import ScriptedJudge

HERE = Path(__file__).parent

def reply(axis, caption, video):
    with open(HERE / "calls.log", "a") as fh:
        fh.write(f"{os.getpid()} {Path(video).name} {axis}\\n")
    return int((HERE / "gravity.txt").read_text()) if axis == "gravity" else 4

class Cached(ScriptedJudge):
    '''SCRIPTED too, but behind the judgment cache (its kind says so): the cache's path.'''
    def __init__(self):
        super().__init__(reply, name="judge-a")
        self.identity = self.identity.__class__(kind="scripted-cached", adapter="judge-a")

def pytest_phyjudge_make_judge(config):
    if os.environ.get("CANARY_CACHED"):
        return Cached()
    return ScriptedJudge(reply, name="judge-a")
"""

SUITE = """
videos: clips/{id}.mp4
defaults: {metrics: [SA], min_score: 1}
cases:
  - {id: fall, prompt: A ball falls., laws: [gravity]}
  - {id: slide, prompt: A box slides., laws: [inertia]}
  - {id: roll, prompt: A ball rolls., laws: [gravity]}
"""
ITEMS = 6
#: The canaries: two clips, SA and gravity on each.
CANARY_CLIPS, CANARY_AXES = ("c1", "c2"), ("SA", "gravity")
CANARY_ITEMS = len(CANARY_CLIPS) * len(CANARY_AXES)


def record_canaries(folder: Path, gravity: int = 2) -> Path:
    """canaries.json beside its clips, recorded by a scripted judge (gravity ``gravity``)."""
    clips = []
    for name in CANARY_CLIPS:
        path = folder / "canary" / f"{name}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"a canary clip, never decoded: {name}".encode())
        clips.append(path)
    judge = ScriptedJudge({"gravity": gravity, "*": 4}, name="judge-a")
    asks = [Ask(c, f"A ball {c.stem}.", axis) for c in clips for axis in CANARY_AXES]
    seen = observe_judge(judge, JudgeSettings(), asks, clock=lambda: 0.0)
    items = tuple(
        CanaryItem(
            clip=f"{ask.clip.stem}.mp4",
            clip_sha256=sha256_file(ask.clip),
            caption=ask.caption,
            axis=ask.axis,
            prompt_sha256=answer.prompt_sha256,
            reading=answer.reading,
        )
        for ask, answer in zip(asks, seen.answers, strict=True)
    )
    out = folder / "canary" / "canaries.json"
    out.write_text(json.dumps(CanaryFile(seen.setup, items).to_dict()))
    return out


@pytest.fixture
def run(kit: Kit) -> Path:
    """The judging conftest, the suite and its stand-in clips, and recorded canaries."""
    kit.pytester.makeconftest(CONFTEST)
    kit.suite(SUITE)
    for name in ("fall", "slide", "roll"):
        kit.clip(name)
    (kit.pytester.path / "gravity.txt").write_text("2")
    return record_canaries(kit.pytester.path)


def calls(kit: Kit) -> list[list[str]]:
    log = kit.pytester.path / "calls.log"
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def canary_calls(kit: Kit) -> list[list[str]]:
    return [c for c in calls(kit) if c[1] in {f"{n}.mp4" for n in CANARY_CLIPS}]


ARGS = ("-p", "no:randomly", "--phyjudge-sheets", "off", "--phyjudge-report", "out/scores.json")


def test_the_check_runs_once_before_the_first_judgment_and_is_reported(
    pytester: pytest.Pytester, kit: Kit, run: Path, monkeypatch: pytest.MonkeyPatch
):
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest("--phyjudge-canaries", str(run), "--phyjudge-html", "html", *ARGS)
    result.assert_outcomes(passed=ITEMS)
    logged = calls(kit)
    # Greedy and distribution, each canary once, before any clip of the suite.
    assert len(canary_calls(kit)) == 2 * CANARY_ITEMS
    assert logged[: 2 * CANARY_ITEMS] == canary_calls(kit)
    result.stdout.fnmatch_lines(
        ["canaries PASSED (canaries.json, 8 judge calls, * judge-seconds): same behaviour: *"]
    )
    canary = kit.report()["meta"]["canary"]
    assert canary["status"] == "passed" and canary["verdict"] == "same behaviour"
    assert canary["judge_calls"] == 8 and canary["file"] == "canaries.json"
    assert canary["axes"][-1]["axis"] == "all" and canary["axes"][-1]["agreement"] == 1.0
    page = (pytester.path / "html" / "index.html").read_text()
    assert 'class="judge-check"' in page and "canaries PASSED (canaries.json" in page
    assert "canaries PASSED (canaries.json, 8 judge calls" in summary.read_text()


def test_drift_in_fail_mode_fails_every_judged_item_one_with_the_whole_message(
    pytester: pytest.Pytester, kit: Kit, run: Path
):
    (pytester.path / "gravity.txt").write_text("5")  # the judge now answers gravity 5
    pytester.makefile(".py", test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest("--phyjudge-canaries", str(run), *ARGS)
    result.assert_outcomes(failed=ITEMS, passed=1)  # the plain test is no judged item
    # the FAILURES section only: on CI (the CI variable set) pytest's short summary repeats
    # every message in full
    output = result.stdout.str().split("short test summary info")[0]
    assert output.count("PhyJudge canary check FAILED (--phyjudge-canaries") == 1
    assert "THE RECORDED IDENTITY BUT OTHER BEHAVIOUR: this judge claims judge-a" in output
    assert "gravity: digit agreement 0.00" in output
    pointers = output.count("The judge failed its canary check (--phyjudge-canaries")
    assert pointers == ITEMS - 1
    assert "basics.phyjudge.yaml::fall::SA shows why" in output
    assert canary_calls(kit) and len(calls(kit)) == 2 * CANARY_ITEMS  # no suite clip judged
    canary = kit.report()["meta"]["canary"]
    assert canary["status"] == "failed" and canary["drifted"] == ["gravity", "all"]
    assert canary["first_item"] == "basics.phyjudge.yaml::fall::SA"


def test_warn_mode_judges_the_items_and_reports_the_drift(
    pytester: pytest.Pytester, kit: Kit, run: Path
):
    (pytester.path / "gravity.txt").write_text("5")
    result = pytester.runpytest(
        "--phyjudge-canaries", str(run), "--phyjudge-canary-mode", "warn", *ARGS
    )
    result.assert_outcomes(passed=ITEMS, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*PytestWarning: pytest-phyjudge: canaries FAILED*judging anyway: "
            "--phyjudge-canary-mode warn*",
            "canaries FAILED (canaries.json, 8 judge calls, *): THE RECORDED IDENTITY*",
        ]
    )
    assert kit.report()["meta"]["canary"]["mode"] == "warn"


def test_replay_mode_checks_nothing_and_says_so(pytester: pytest.Pytester, kit: Kit, run: Path):
    run.unlink()  # not even read: a replay machine need not hold the canaries
    result = pytester.runpytest(
        "--phyjudge-canaries", str(run), "--phyjudge-cache-mode", "only", *ARGS
    )
    result.assert_outcomes(passed=ITEMS)
    result.stdout.fnmatch_lines(
        ["canaries NOT checked (canaries.json): replay mode (--phyjudge-cache-mode only)*"]
    )
    assert canary_calls(kit) == []
    assert kit.report()["meta"]["canary"]["status"] == "not checked"


def test_judgments_all_from_the_cache_cost_no_check(
    pytester: pytest.Pytester, kit: Kit, run: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CANARY_CACHED", "1")
    pytester.runpytest("--phyjudge-canaries", str(run), *ARGS).assert_outcomes(passed=ITEMS)
    assert len(canary_calls(kit)) == 2 * CANARY_ITEMS
    (pytester.path / "calls.log").unlink()
    again = pytester.runpytest("--phyjudge-canaries", str(run), *ARGS)
    again.assert_outcomes(passed=ITEMS)
    assert calls(kit) == []
    again.stdout.fnmatch_lines(["canaries NOT checked (canaries.json): no judge ran*"])


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        (lambda run: (run.parent / "c1.mp4").write_bytes(b"other bytes"), "'c1.mp4' has changed"),
        (lambda run: (run.parent / "c2.mp4").unlink(), "'c2.mp4' is missing"),
        (lambda run: run.write_text("{"), "canaries.json"),
    ],
)
def test_a_bad_canary_file_is_a_usage_error_before_anything_is_judged(
    pytester: pytest.Pytester, kit: Kit, run: Path, spoil, said: str
):
    spoil(run)
    result = pytester.runpytest("--phyjudge-canaries", str(run), *ARGS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert said in err and "--phyjudge-canaries" in err and "Traceback" not in err
    assert calls(kit) == []


def test_a_bad_canary_mode_names_the_flag(pytester: pytest.Pytester, run: Path):
    result = pytester.runpytest("--phyjudge-canary-mode", "loud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--phyjudge-canary-mode: 'loud' is not a canary mode" in result.stderr.str()


def test_two_xdist_workers_check_once(pytester: pytest.Pytester, kit: Kit, run: Path):
    pytest.importorskip("xdist")
    result = pytester.runpytest_subprocess("-n", "2", "--phyjudge-canaries", str(run), *ARGS)
    result.assert_outcomes(passed=ITEMS)
    checked = canary_calls(kit)
    assert len(checked) == 2 * CANARY_ITEMS and len({pid for pid, _, _ in checked}) == 1
    assert len({pid for pid, _, _ in calls(kit)}) == 2  # both workers judged
    canary = kit.report()["meta"]["canary"]
    assert canary["status"] == "passed" and canary["worker"] in ("gw0", "gw1")
    result.stdout.fnmatch_lines(["canaries PASSED (canaries.json, 8 judge calls*"])


# --------------------------------------------------------------------------- the judge server


SERVED_SUITE = """
videos: clips/{id}.mp4
defaults: {metrics: [SA], min_score: 1}
cases:
  - {id: fall, prompt: A ball falls., laws: [gravity]}
"""


def test_the_servers_fingerprint_is_reported_and_a_baselines_other_one_is_said(
    pytester: pytest.Pytester, kit: Kit
):
    kit.suite(SERVED_SUITE, name="served")
    kit.videos(["fall"], frames=4, fps=2)
    judge = ScriptedJudge({"*": 4, "gravity": 2}, name="served-scripted")
    with FaultyJudgeServer(judge) as server:
        server.faults.always(Fault("model", fingerprint="fp_b"))
        args = ("--phyjudge-url", server.url, "--phyjudge-baseline", "baseline.json", *ARGS)
        args += ("--phyjudge-cache-mode", "off")  # judged afresh: a replay names no server
        first = pytester.runpytest(*args, "--phyjudge-update-baseline")
        first.assert_outcomes(passed=2)
        served = kit.report()["meta"]["judge_server"]
        assert served["system_fingerprint"] == "fp_b" and served["model"]
        first.stdout.fnmatch_lines([f"judge server: model {served['model']}, *fingerprint fp_b"])
        stored = json.loads((pytester.path / "baseline.json").read_text())
        assert stored["judge_server"] == {"model": served["model"], "system_fingerprint": "fp_b"}
        # The judge box is upgraded: the same model name, another fingerprint.
        server.faults.always(Fault("model", fingerprint="fp_c"))
        again = pytester.runpytest(*args)
        again.assert_outcomes(passed=2)
        again.stdout.fnmatch_lines(
            [
                f"  note: the baseline was judged by {served['model']} (fingerprint fp_b); "
                f"this run by {served['model']} (fingerprint fp_c): differences may be the "
                "judge's, not the generator's"
            ]
        )
        page_meta = kit.report()["meta"]
        assert page_meta["judge_server"]["system_fingerprint"] == "fp_c"


def test_a_baseline_without_a_server_reads_and_says_nothing(tmp_path: Path):
    path = tmp_path / "baseline.json"
    write_baseline(path, {"kind": "local", "adapter": "a"}, {})
    assert "judge_server" not in json.loads(path.read_text())
    assert load_baseline(path).judge_server is None
    assert server_note(None, {"model": "m", "system_fingerprint": "fp"}) is None
    # A server that sends no fingerprint says nothing of one either way.
    assert server_note({"model": "m", "system_fingerprint": "fp_a"}, {"model": "m"}) is None
    note = server_note({"model": "m", "system_fingerprint": "fp_a"}, {"model": "n"})
    assert note is not None and "by m (fingerprint fp_a); this run by n (no fingerprint)" in note
    path.write_text(json.dumps({**json.loads(path.read_text()), "judge_server": ["x"]}))
    with pytest.raises(Exception, match='"judge_server" is not an object'):
        load_baseline(path)


def test_scores_json_carries_the_checks_optionally_and_refuses_a_wrong_one():
    from pytest_phyjudge._exceptions import InputError
    from pytest_phyjudge.scores import check_scores

    row = {"video": "fall", "SA": 4}
    old = check_scores({"meta": {}, "results": [row]}, "old.json")
    assert old.meta.canary is None and old.meta.judge_server is None
    canary = {
        "file": "c.json",
        "status": "passed",
        "verdict": "same behaviour",
        "line": "same behaviour",
        "judge_calls": 8,
    }
    server = {"model": "phyjudge", "system_fingerprint": "fp_a"}
    new = check_scores({"meta": {"canary": canary, "judge_server": server}, "results": [row]}, "n")
    assert new.meta.canary == canary and new.meta.judge_server == server
    with pytest.raises(InputError, match=r"meta\.canary\.status"):
        check_scores({"meta": {"canary": {**canary, "status": 3}}, "results": [row]}, "bad.json")
