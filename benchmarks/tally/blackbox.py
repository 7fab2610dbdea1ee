"""Inputs of an outside author who read only the user docs (README, tutorial, how-tos, the
references and ``--help``), across the whole product: the Python API with arguments of the
wrong type, scripted judges given what is no reply, a reply naming its key twice, a judge
whose errors hold escape sequences, an interrupted run, a run where every item errored,
flags that both choose the judge, ini values, the job summary's target, baselines written
under one setting and read under another, and reports re-read by ``compare``.

Clean: a PhyJudgeError (or a pytest usage error) naming the argument, field or file, or a
safe success; no traceback, no raw terminal control from a name, reply or error message, no
user's file changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tally import kit
from tally.model import NotClean, Probe, expect

API = "blackbox: Python API arguments"
SCRIPTED = "blackbox: scripted judges"
RUNS = "blackbox: pytest runs and flows"
CLI = "blackbox: compare and baselines"
ANY = expect("returned", "error")
ERROR = expect("error")
QUICK = 20.0


def _clip(folder: Path) -> Path:
    from pytest_phyjudge.testing import write_test_video

    path = folder / "clip.mp4"
    if not path.exists():
        write_test_video(path, frames=6)
    return path


def _call(helper: str, **change: Any) -> Callable[[Path], str]:
    """``assert_physics``/``assert_metric`` with one argument made hostile."""

    def run(folder: Path) -> str:
        from pytest_phyjudge import ScriptedJudge, assert_metric, assert_physics

        args: dict[str, Any] = {"video": _clip(folder), "caption": "A ball falls."}
        args["judge"] = ScriptedJudge({"*": 4})
        args["law" if helper == "assert_physics" else "metric"] = (
            "gravity" if helper == "assert_physics" else "SA"
        )
        for key, value in change.items():
            args[key] = value(folder) if callable(value) and key == "video" else value
        function = assert_physics if helper == "assert_physics" else assert_metric
        video, caption = args.pop("video"), args.pop("caption")
        return repr(function(video, caption, **args))

    return run


def _fifo(folder: Path) -> Path:
    path = folder / "fifo.mp4"
    os.mkfifo(path)
    return path


def _failing_message(caption: str, reply: str, name: str) -> Callable[[Path], str]:
    """A failed assertion whose caption, raw reply and judge name hold terminal controls:
    the message pytest prints must hold none."""

    def run(folder: Path) -> str:
        from pytest_phyjudge import PhysicsAssertionError, ScriptedJudge, assert_metric

        judge = ScriptedJudge({"*": reply}, name=name)
        try:
            assert_metric(_clip(folder), caption, metric="SA", min_score=5, judge=judge)
        except PhysicsAssertionError as exc:
            if problem := kit.raw_controls(str(exc)):
                raise NotClean(f"the assertion message: {problem}") from None
            return str(exc)
        raise NotClean("a score below min_score passed")

    return run


def _scripted(replies: Any, call: bool = True, **kwargs: Any) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from pytest_phyjudge import ScriptedJudge

        judge = ScriptedJudge(replies, **kwargs)
        if not call:
            return repr(judge)
        judgment = judge.score(_clip(folder), "A ball falls.", metric="SA")
        return repr(judgment)

    return run


def _reply(raw: str, unscored: bool) -> Callable[[Path], str]:
    """A reply parsed like the model's: an ambiguous one gives no score."""

    def run(folder: Path) -> str:
        from pytest_phyjudge import JudgeOutputError, ScriptedJudge

        try:
            judgment = ScriptedJudge({"*": raw}).score(_clip(folder), "A ball.", metric="SA")
        except JudgeOutputError as exc:
            return str(exc)
        if unscored:
            raise NotClean(f"the ambiguous reply {raw!r} was read as score {judgment.score}")
        return repr(judgment)

    return run


JUDGES = """
from pytest_phyjudge import ScriptedJudge

def four(config=None):
    return ScriptedJudge({"*": 4}, name="blackbox")

def other(config=None):
    return ScriptedJudge({"*": 2}, name="blackbox-other")

def garbled(config=None):
    return ScriptedJudge({"*": "no score \x1b]8;;javascript:alert(1)\x07 <b>x</b>"})

def boom(config=None):
    def reply(axis, caption, video):
        raise RuntimeError("boom \\x1b[2J\\x1b]0;owned\\x07")
    return ScriptedJudge(reply, name="blackbox")

CALLS = []

def interrupt(config=None):
    def reply(axis, caption, video):
        CALLS.append(axis)
        if len(CALLS) > 2:
            raise KeyboardInterrupt
        return 4
    return ScriptedJudge(reply, name="blackbox")
"""


def _project(folder: Path, cases: tuple[str, ...] = ("a", "b")) -> None:
    kit.suite(folder, cases=cases)
    (folder / "bb_judges.py").write_text(JUDGES, encoding="utf-8")


def _pytest(*args: str, check: Callable[[Path, int, str], None] | None = None, **env: str):
    def run(folder: Path) -> str:
        _project(folder)
        code, out = kit.run_pytest(folder, *args, env={"CI": "true", **env})
        if code in (3, 4) and "ERROR" not in out and "error" not in out:
            raise NotClean(f"pytest exit {code} without saying why")
        if check is not None:
            check(folder, code, out)
        if "short test summary info" in out:
            # A judge that raises is a bug in the user's code: pytest shows its traceback
            # there, by design; what this tool says of it is the short summary.
            out = out[out.index("short test summary info") :]
        return f"exit {code}\n{out}"

    return run


def _summary_lines_plain(folder: Path, code: int, out: str) -> None:
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    if not failed:
        raise NotClean("no item failed for a judge that raises")
    for line in failed:
        if problem := kit.raw_controls(line):
            raise NotClean(f"the short summary: {problem}")
    summary = folder / "summary.md"
    if summary.exists() and (problem := kit.raw_controls(summary.read_text())):
        raise NotClean(f"the job summary: {problem}")


def _refused(flag: str) -> Callable[[Path, int, str], None]:
    def check(folder: Path, code: int, out: str) -> None:
        if code == 0 or flag not in out:
            raise NotClean(f"two choices of the judge were taken silently (no {flag} named)")

    return check


def _interrupted(folder: Path, code: int, out: str) -> None:
    report = folder / "out" / "scores.json"
    if report.exists():
        data = json.loads(report.read_text())  # a half-written report is not JSON
        run = data.get("meta", {}).get("run", {})
        if run.get("complete", True) or not run.get("interrupted"):
            raise NotClean("the report of an interrupted run does not say it was interrupted")
    html = folder / "out" / "h"
    if html.exists() and not (html / "index.html").exists():
        raise NotClean("the HTML folder of an interrupted run has no page")


def _user_file_kept(name: str) -> Callable[[Path, int, str], None]:
    def check(folder: Path, code: int, out: str) -> None:
        if (folder / name).read_text() != "mine\n":
            raise NotClean(f"the user's {name} was changed")

    return check


def _with_user_file(name: str, inner: Callable[[Path], str]) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        (folder / name).write_text("mine\n")
        return inner(folder)

    return run


def _ini(line: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        _project(folder)
        (folder / "pytest.ini").write_text(f"[pytest]\n{line}\n", encoding="utf-8")
        code, out = kit.run_pytest(folder, "--phyjudge-judge", "bb_judges:four")
        key = line.split("=")[0].strip()
        if code == 0 and "nan" in line:
            raise NotClean(f"{line!r} was taken")
        if code not in (0, 1) and key not in out:
            raise NotClean(f"the refusal does not name {key}")
        return f"exit {code}\n{out}"

    return run


def _baseline_flow(second: tuple[str, ...], drop_expected: bool) -> Callable[[Path], str]:
    """A baseline written by one run, read by a run with other settings or another judge."""

    def run(folder: Path) -> str:
        _project(folder)
        base = ["--phyjudge-baseline", "base.json"]
        first = ["--phyjudge-judge", "bb_judges:four", *base, "--phyjudge-update-baseline"]
        code, out = kit.run_pytest(folder, *first)
        if code != 0:
            raise NotClean(f"the baseline was not written: {out[-400:]}")
        code, out = kit.run_pytest(folder, *base, *second)
        if drop_expected and code == 0:
            raise NotClean("a run against a baseline made under other settings passed silently")
        return f"exit {code}\n{out}"

    return run


def _compare_own(tamper: Callable[[dict[str, Any]], Any] | None) -> Callable[[Path], str]:
    """A report written by pytest, re-read by compare (as is, or tampered by hand)."""

    def run(folder: Path) -> str:
        _project(folder)
        code, out = kit.run_pytest(
            folder, "--phyjudge-judge", "bb_judges:four", "--phyjudge-report", "a.json"
        )
        if code != 0:
            raise NotClean(f"the report was not written: {out[-400:]}")
        data = json.loads((folder / "a.json").read_text())
        if tamper is not None:
            tamper(data)
        (folder / "b.json").write_text(json.dumps(data), encoding="utf-8")
        code, out = kit.phyjudge(folder, "compare", "a.json", "b.json", "--format", "markdown")
        if problem := kit.raw_controls(out):
            raise NotClean(problem)
        return f"exit {code}\n{out}"

    return run


def _score_cli(*args: str) -> Callable[[Path], str]:
    """``phyjudge score`` with a hostile caption, reply or video: stdout and stderr hold no
    raw terminal control."""

    def run(folder: Path) -> str:
        _project(folder)
        fifo = folder / "fifo.mp4"
        if not fifo.exists():
            os.mkfifo(fifo)
        code, out = kit.phyjudge(folder, "score", *args)
        if problem := kit.raw_controls(out):
            raise NotClean(problem)
        return f"exit {code}\n{out}"

    return run


def _compare_errored(command: str) -> Callable[[Path], str]:
    """A run whose every item errored (no score at all), compared with a good one: the
    error must say the run has no score, not that the cases do not match."""

    def run(folder: Path) -> str:
        _project(folder)
        for judge, name in (("garbled", "e.json"), ("four", "a.json")):
            kit.run_pytest(
                folder, "--phyjudge-judge", f"bb_judges:{judge}", "--phyjudge-report", name
            )
        code, out = kit.phyjudge(folder, command, "e.json", "a.json")
        if "no case in common" in out:
            raise NotClean("a run without one score is said to share no case with the other")
        return f"exit {code}\n{out}"

    return run


def _set_score(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["results"][0]["SA"] = value

    return change


def _set_label(data: dict[str, Any]) -> None:
    data["meta"]["label"] = "\x1b[31m@here <b>|x|</b> [a](javascript:alert(1))"


def blackbox_probes() -> Iterator[Probe]:
    # The assertion helpers, with one argument of the wrong kind each.
    api: list[tuple[str, str, dict[str, Any]]] = [
        ("video_int", "assert_physics", {"video": 3}),
        ("video_folder", "assert_physics", {"video": lambda f: f}),
        ("video_fifo", "assert_physics", {"video": _fifo}),
        ("video_missing", "assert_physics", {"video": lambda f: f / "nope.mp4"}),
        ("law_dunder_class", "assert_physics", {"law": "__class__"}),
        ("law_none", "assert_physics", {"law": None}),
        ("criteria_int", "assert_physics", {"criteria": 5}),
        ("caption_bytes", "assert_physics", {"caption": b"A ball falls."}),
        ("caption_blank", "assert_physics", {"caption": " \n"}),
        ("min_score_nan", "assert_physics", {"min_score": float("nan")}),
        ("min_score_true", "assert_physics", {"min_score": True}),
        ("min_score_str", "assert_physics", {"min_score": "3"}),
        ("min_score_float", "assert_metric", {"min_score": 3.5}),
        ("min_score_dict_other_axis", "assert_metric", {"min_score": {"gravity": 3}}),
        ("min_expected_nan", "assert_metric", {"min_expected": float("nan")}),
        ("min_prob_two", "assert_metric", {"min_prob": 2.0}),
        ("metric_is_a_law", "assert_metric", {"metric": "gravity"}),
        ("judge_not_a_judge", "assert_metric", {"judge": object()}),
        ("judge_a_string", "assert_metric", {"judge": "tiny"}),
    ]
    for name, helper, change in api:
        yield Probe(API, name, _call(helper, **change), ERROR, None, QUICK)
    yield Probe(
        API,
        "message_controls",
        _failing_message("A ball\x1b[2J falls.", '{"SA": 2} \x1b]0;t\x07', "\x1b[31mjudge"),
        ANY,
        None,
        QUICK,
    )
    # Scripted judges given what is no reply.
    scripted: list[tuple[str, Any, bool]] = [
        ("reply_nan", {"*": float("nan")}, True),
        ("reply_none", {"*": None}, True),
        ("reply_bool", {"*": True}, True),
        ("reply_list_of_scores", [1, 2], False),
        ("reply_unknown_axis", {"antigravity": 4}, False),
        ("reply_missing_axis", {"gravity": 4}, True),
        ("function_returns_none", lambda axis, caption, video: None, True),
        ("reply_out_of_range", {"*": 99}, True),
    ]
    for name, replies, call in scripted:
        want = ANY if call else ERROR  # a judge that can never reply is refused when made
        yield Probe(SCRIPTED, name, _scripted(replies, call), want, None, QUICK)
    for name, kwargs in (
        ("name_number", {"name": 5}),
        ("name_none", {"name": None}),
        ("rubric_text", {"rubric": "x"}),
    ):
        run = _scripted({"*": 4}, False, **kwargs)
        yield Probe(SCRIPTED, name, run, ERROR, None, QUICK)
    yield Probe(SCRIPTED, "reply_key_twice", _reply('{"SA": 5, "SA": 1}', True), ANY, None, QUICK)
    yield Probe(SCRIPTED, "reply_nested_key_twice", _reply('{"SA": 5}', False), ANY, None, QUICK)
    # pytest runs and flows.
    judge = ("--phyjudge-judge", "bb_judges:boom")
    yield Probe(
        RUNS,
        "every_item_errors_with_escapes",
        _pytest(*judge, check=_summary_lines_plain, GITHUB_STEP_SUMMARY="summary.md"),
        ANY,
    )
    yield Probe(
        RUNS,
        "every_item_errors_xdist",
        _pytest(*judge, "-p", "xdist", "-n", "2", check=_summary_lines_plain),
        ANY,
    )
    yield Probe(
        RUNS,
        "keyboard_interrupt_mid_run",
        _pytest(
            "--phyjudge-judge",
            "bb_judges:interrupt",
            "--phyjudge-report",
            "out/scores.json",
            "--phyjudge-html",
            "out/h",
            check=_interrupted,
        ),
        ANY,
    )
    for other, flag in (
        (("--phyjudge-judge", "bb_judges:four"), "--phyjudge-identity"),
        (("--phyjudge-url", "http://127.0.0.1:9"), "--phyjudge-identity"),
    ):
        run = _pytest(*other, "--phyjudge-identity", "j.identity.json", check=_refused(flag))
        yield Probe(RUNS, f"identity_with_{other[0][11:]}", run, ANY)
    for target in ("summary.md", "clips", "/dev/full", "/nonexistent/s.md"):
        run = _pytest("--phyjudge-judge", "bb_judges:four", GITHUB_STEP_SUMMARY=target)
        yield Probe(RUNS, f"step_summary_{target.strip('/').replace('/', '_')}", run, ANY)
    run = _with_user_file(
        "notes.txt",
        _pytest(
            "--phyjudge-judge",
            "bb_judges:four",
            "--phyjudge-report",
            "notes.txt",
            check=_user_file_kept("notes.txt"),
        ),
    )
    yield Probe(RUNS, "report_over_a_user_file", run, ANY)
    for line in (
        "phyjudge_min_score = nan",
        "phyjudge_fps = inf",
        "phyjudge_timeout = nan",
        "phyjudge_cache_mode = USE",
        "phyjudge_url = file:///etc/passwd",
        "phyjudge_max_pixels = 0x10",
        "phyjudge_concurrency = 1e9",
    ):
        name = "ini_" + line.split("=")[0].strip().replace("phyjudge_", "")
        yield Probe(RUNS, name, _ini(line), ANY)
    clip = ("--video", "v/a.mp4", "--law", "gravity")
    for name, args in (
        ("score_print_prompt_controls", (*clip, "--caption", "x\x1b[2J\x07", "--print-prompt")),
        ("score_garbled_reply", (*clip, "--caption", "x")),
        ("score_fifo_video", ("--video", "fifo.mp4", "--law", "gravity", "--caption", "x")),
    ):
        judge = "bb_judges:garbled" if "garbled" in name else "bb_judges:four"
        yield Probe(CLI, name, _score_cli(*args, "--judge", judge), ANY)
    # Baselines and compare.
    yield Probe(
        CLI,
        "baseline_then_another_judge",
        _baseline_flow(("--phyjudge-judge", "bb_judges:other"), True),
        ANY,
    )
    yield Probe(
        CLI,
        "baseline_then_other_min_score",
        _baseline_flow(("--phyjudge-judge", "bb_judges:four", "--phyjudge-min-score", "5"), True),
        ANY,
    )
    yield Probe(CLI, "compare_own_report", _compare_own(None), ANY)
    for command in ("compare", "agree"):
        yield Probe(CLI, f"{command}_every_item_errored", _compare_errored(command), ANY)
    yield Probe(CLI, "compare_tampered_score_nan", _compare_own(_set_score(float("nan"))), ANY)
    yield Probe(CLI, "compare_tampered_score_true", _compare_own(_set_score(True)), ANY)
    yield Probe(CLI, "compare_tampered_label", _compare_own(_set_label), ANY)
