"""Canary files, ``canary record``'s ``--out``, and what the reports show of a canary check
and of a judge server, handed to us by someone we do not trust: clip paths that alias or name
a secret, servers' self-descriptions of the wrong type or megabytes long, a user's file in
place of ``--out``, a forged ``meta.canary`` or ``meta.judge_server`` in a ``scores.json``,
and terminal codes in what a canary file says of its judge."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytester_kit import Kit

from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._fields import MAX_SERVER_TEXT, server_text
from pytest_phyjudge.canary.model import MAX_ITEMS, CanaryFile, CanaryItem
from pytest_phyjudge.canary.record import Ask, observe_judge
from pytest_phyjudge.cli.main import main
from pytest_phyjudge.engine.video import sha256_file
from pytest_phyjudge.judges.settings import JudgeSettings
from pytest_phyjudge.regression.baseline import server_note
from pytest_phyjudge.reporting.health import canary_line, server_line
from pytest_phyjudge.scores import check_scores
from pytest_phyjudge.testing.faults import Fault, FaultyJudgeServer

ESC = "\x1b[2J\x1b[31m"
EVIL = f"{ESC}EVIL\r@octocat ![x](http://e/x.png)"
JUDGES = """
from pytest_phyjudge import ScriptedJudge

def same():
    return ScriptedJudge({"gravity": 2, "*": 4}, name="judge-a")
"""


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out + err


def canary_file(folder: Path, judge: ScriptedJudge | None = None) -> Path:
    """canaries.json beside two stand-in clips (never decoded: a scripted judge)."""
    judge = judge or ScriptedJudge({"gravity": 2, "*": 4}, name="judge-a")
    clips = []
    for name in ("c1", "c2"):
        path = folder / "clips" / f"{name}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"a canary clip, never decoded: {name}".encode())
        clips.append(path)
    asks = [Ask(c, f"A ball {c.stem}.", axis) for c in clips for axis in ("SA", "gravity")]
    seen = observe_judge(judge, JudgeSettings(), asks, clock=lambda: 0.0)
    items = tuple(
        CanaryItem(
            clip=f"clips/{ask.clip.name}",
            clip_sha256=sha256_file(ask.clip),
            caption=ask.caption,
            axis=ask.axis,
            prompt_sha256=answer.prompt_sha256,
            reading=answer.reading,
        )
        for ask, answer in zip(asks, seen.answers, strict=True)
    )
    out = folder / "canaries.json"
    out.write_text(json.dumps(CanaryFile(seen.setup, items).to_dict()))
    return out


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "hostile_canary_judges.py").write_text(JUDGES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str]:
    return run_cli(capsys, "canary", "check", str(path), "--judge", "hostile_canary_judges:same")


def edited(path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


# --------------------------------------------------------------------------- reading


def test_a_clip_named_twice_through_a_dot_is_refused_not_counted_twice(capsys, folder: Path):
    path = edited(
        canary_file(folder),
        lambda d: d["items"].append({**d["items"][0], "clip": "./" + d["items"][0]["clip"]}),
    )
    code, text = check(capsys, path)
    assert code == 2 and "items[4].clip" in text


def test_a_secret_named_as_a_clip_with_its_true_sha256_is_never_read(capsys, folder: Path):
    secret = folder / "secret.env"
    secret.write_text("password=SECRET-TOKEN\n")

    def name_the_secret(data: dict[str, Any]) -> None:
        data["items"][0]["clip"] = "secret.env"
        data["items"][0]["clip_sha256"] = hashlib.sha256(secret.read_bytes()).hexdigest()

    code, text = check(capsys, edited(canary_file(folder), name_the_secret))
    assert code == 2 and "items[0].clip" in text and "SECRET-TOKEN" not in text


def test_thousands_of_canaries_are_refused_before_any_is_judged(capsys, folder: Path):
    def flood(data: dict[str, Any]) -> None:
        first = data["items"][0]
        data["items"] = [{**first, "caption": f"c{i}"} for i in range(MAX_ITEMS + 1)]

    code, text = check(capsys, edited(canary_file(folder), flood))
    assert code == 2 and "items" in text and "judge calls" not in text


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda d: d.__setitem__("version", 1.0), "version"),
        (lambda d: d.__setitem__("server", {"model": True}), "server.model"),
        (lambda d: d.__setitem__("server", {"model": {"x": [1]}}), "server.model"),
        (lambda d: d.__setitem__("server", {"system_fingerprint": "F" * 10_000}), "fingerprint"),
        (lambda d: d.__setitem__("server", {"identity": {"evil": 1}}), "server.identity"),
        (lambda d: d["settings"].__setitem__("max_pixels", 10**300), "settings.max_pixels"),
        (lambda d: d["judge"].__setitem__("adapter", "a" * 100_000), "judge.adapter"),
        (lambda d: d["versions"].__setitem__(f"pkg{'x' * 50}", "1"), "versions"),
        (lambda d: d.__setitem__("device", "cuda" * 100_000), "device"),
    ],
)
def test_a_claim_of_the_wrong_shape_is_refused_by_its_field(capsys, folder: Path, edit, named):
    code, text = check(capsys, edited(canary_file(folder), edit))
    assert code == 2 and named in text


# --------------------------------------------------------------------------- record --out


@pytest.fixture
def recording(folder: Path) -> Path:
    from pytest_phyjudge.testing import write_test_video

    for seed, name in enumerate(("drop", "roll")):
        write_test_video(folder / "clips" / f"{name}.mp4", frames=4, seed=seed)
    entries = [{"video": n, "prompt": f"A ball {n}s.", "physical_laws": []} for n in ("drop",)]
    (folder / "prompts.json").write_text(json.dumps({"prompts": entries}))
    return folder


def record(capsys, out: str) -> tuple[int, str]:
    args = ("--videos", "clips", "--prompts", "prompts.json", "--axes", "SA", "--out", out)
    return run_cli(capsys, "canary", "record", *args, "--judge", "hostile_canary_judges:same")


@pytest.mark.parametrize("target", ["clips/drop.mp4", "prompts.json", "notes.txt"])
def test_record_never_overwrites_a_file_that_is_not_a_canary_file(
    capsys, recording: Path, target: str
):
    (recording / "notes.txt").write_text("the user's own notes")
    before = (recording / target).read_bytes()
    code, text = record(capsys, target)
    assert code == 2 and target in text
    assert (recording / target).read_bytes() == before


def test_record_keeps_a_symlink_and_a_pipe_in_place_of_out(capsys, recording: Path):
    (recording / "mine.json").write_text("{}")
    (recording / "link.json").symlink_to("mine.json")
    os.mkfifo(recording / "pipe.json")
    for target in ("link.json", "pipe.json"):
        code, text = record(capsys, target)
        assert code == 2 and target in text
    assert (recording / "link.json").is_symlink() and (recording / "mine.json").read_text() == "{}"
    assert (recording / "pipe.json").is_fifo()


def test_record_replaces_its_own_canary_file(capsys, recording: Path):
    assert record(capsys, "canaries.json")[0] == 0
    assert record(capsys, "canaries.json")[0] == 0


def test_record_leaves_a_read_only_canary_file_as_it_is(capsys, recording: Path):
    assert record(capsys, "canaries.json")[0] == 0
    path = recording / "canaries.json"
    path.chmod(0o444)
    before = path.read_bytes()
    code, text = record(capsys, "canaries.json")
    assert code == 2 and "canaries.json" in text and path.read_bytes() == before


# --------------------------------------------------------------------------- reports


ROW = {"video": "fall", "SA": 4}
CANARY = {
    "file": "c.json",
    "status": "passed",
    "verdict": "same behaviour",
    "line": "same behaviour: judge-a answers as recorded.",
    "judge_calls": 8,
    "judge_seconds": 0.5,
}


@pytest.mark.parametrize(
    ("forged", "named"),
    [
        ({"status": "PASSED!"}, "meta.canary.status"),
        ({"verdict": "drift"}, "meta.canary.verdict"),
        ({"verdict": None}, "meta.canary.verdict"),
        ({"judge_calls": 0}, "meta.canary"),
        ({"judge_seconds": "abc"}, "meta.canary.judge_seconds"),
        ({"notes": [{"x": 1}]}, "meta.canary.notes"),
    ],
)
def test_a_forged_canary_check_in_a_report_is_refused_never_shown_as_run(forged, named):
    with pytest.raises(InputError, match=named.replace(".", r"\.")):
        check_scores({"meta": {"canary": {**CANARY, **forged}}, "results": [ROW]}, "r.json")


def test_a_judge_server_in_a_report_of_no_remote_judge_is_refused():
    meta = {"judge": {"kind": "local", "adapter": "a"}, "judge_server": {"model": "m"}}
    with pytest.raises(InputError, match=r"meta\.judge_server"):
        check_scores({"meta": meta, "results": [ROW]}, "r.json")
    served = {**meta, "judge": {"kind": "remote", "adapter": "a"}}
    assert check_scores({"meta": served, "results": [ROW]}, "r.json").meta.judge_server


def test_a_megabyte_fingerprint_is_cut_and_still_tells_two_apart():
    one, two = "F" * 2**20, "F" * (2**20 - 1) + "G"
    assert len(server_text(one) or "") <= MAX_SERVER_TEXT
    assert server_text(one) != server_text(two) and server_text({"a": 1}) == "{'a': 1}"
    line = server_line({"model": "m", "system_fingerprint": one, "answered_by": [1] * 10**5})
    assert len(line) < 3 * MAX_SERVER_TEXT
    forged = {**CANARY, "file": "f" * 2**20, "line": "x" * 2**20}
    assert len(canary_line(forged)) < 30_000
    note = server_note(
        {"model": "m", "system_fingerprint": one}, {"model": "m", "system_fingerprint": "f"}
    )
    assert note is not None and len(note) < 3 * MAX_SERVER_TEXT


# --------------------------------------------------------------------------- pytest


SUITE = """
videos: clips/{id}.mp4
defaults: {metrics: [SA], min_score: 1}
cases:
  - {id: fall, prompt: A ball falls., laws: [gravity]}
"""


def test_a_warned_drift_prints_no_terminal_code_of_the_canary_file(
    pytester: pytest.Pytester, kit: Kit
):
    kit.suite(SUITE)
    kit.clip("fall")
    pytester.makeconftest(
        "from pytest_phyjudge import ScriptedJudge\n"
        "def pytest_phyjudge_make_judge(config):\n"
        "    return ScriptedJudge({'*': 1}, name='judge-a')\n"
    )
    path = edited(
        canary_file(pytester.path / "canary"), lambda d: d["judge"].__setitem__("adapter", EVIL)
    )
    result = pytester.runpytest(
        "--phyjudge-canaries", str(path), "--phyjudge-canary-mode", "warn", "-p", "no:randomly"
    )
    shown = result.stdout.str()
    assert "canaries FAILED" in shown and "\\x1b[2J" in shown and "\x1b" not in shown


def test_a_servers_megabyte_fingerprint_reaches_no_report_whole(
    pytester: pytest.Pytester, kit: Kit
):
    kit.suite(SUITE)
    kit.videos(["fall"], frames=4, fps=2)
    judge = ScriptedJudge({"*": 4, "gravity": 2}, name="served")
    fingerprint = f"{ESC}fp" + "F" * 2**20
    with FaultyJudgeServer(judge) as server:
        server.faults.always(Fault("model", fingerprint=fingerprint))
        result = pytester.runpytest(
            *("--phyjudge-url", server.url, "--phyjudge-cache-mode", "off", "-p", "no:randomly"),
            *("--phyjudge-sheets", "off", "--phyjudge-report", "out/scores.json"),
        )
    result.assert_outcomes(passed=2)
    served = kit.report()["meta"]["judge_server"]
    assert len(served["system_fingerprint"]) <= MAX_SERVER_TEXT
    assert check_scores(kit.report(), "scores.json").meta.judge_server  # its own report reads
    shown = result.stdout.str()
    assert "system_fingerprint \\x1b[2J" in shown and "\x1b" not in shown
    assert len(shown) < 2**16


def test_a_judge_that_cannot_come_up_is_reported_not_checked_and_why(
    pytester: pytest.Pytester, kit: Kit
):
    kit.suite(SUITE)
    kit.clip("fall")
    path = canary_file(pytester.path / "canary")
    with FaultyJudgeServer(ScriptedJudge({"*": 4}, name="served")) as server:
        url = server.url
    result = pytester.runpytest(  # the server is gone: /v1/models cannot be read
        *("--phyjudge-url", url, "--phyjudge-retries", "0", "--phyjudge-cache-mode", "off"),
        *("--phyjudge-canaries", str(path), "-p", "no:randomly", "--phyjudge-sheets", "off"),
        *("--phyjudge-report", "out/scores.json"),
    )
    canary = kit.report()["meta"]["canary"]
    assert canary["status"] == "not checked" and "brought up" in canary["line"]
    result.stdout.fnmatch_lines(["canaries NOT checked (canaries.json): *brought up*"])


@pytest.mark.parametrize(
    "provenance",
    [
        {"adapter": "acme/" + "a" * 2**20},
        {"adapter": "acme/a", "revision": {"x": [1]}},
        {"adapter": "acme/a", "base": ["Qwen"]},
        {"adapter": "acme/a", "adapter_sha256": 5},
    ],
)
def test_a_servers_judge_of_the_wrong_shape_is_refused_by_its_field(provenance):
    from pytest_phyjudge._exceptions import JudgeLoadError
    from pytest_phyjudge.judges.remote.provenance import identity_from

    bad = next(name for name in provenance if name != "adapter" or len(provenance) == 1)
    with pytest.raises(JudgeLoadError, match=bad) as raised:
        identity_from(provenance, "/v1/models of http://judge:8000")
    assert len(str(raised.value)) < 2000
