"""Inputs of an outside author who read only the user docs: the Python API called with
arguments of the wrong type, scripted judges given what is no reply, a reply that names its
key twice, judge errors and assertion messages holding escape sequences, and two flags that
both choose the judge. Each is a clear error naming what to change, or a safe success."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytester_kit import Kit

from pytest_phyjudge import (
    InputError,
    JudgeSettings,
    PhysicsAssertionError,
    ScriptedJudge,
    assert_metric,
    assert_physics,
)
from pytest_phyjudge._exceptions import JudgeOutputError, describe_error
from pytest_phyjudge.engine.parse import parse_score

pytest_plugins = "pytester"

ESC = "\x1b"


@pytest.fixture
def clip(synthetic_video: Path) -> Path:
    return synthetic_video


# --------------------------------------------------------------------------- assertion helpers


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"video": 3}, "video"),
        ({"criteria": 5}, "criteria"),
        ({"law": None}, "None"),
        ({"judge": object()}, "judge"),
    ],
)
def test_assert_physics_refuses_arguments_of_the_wrong_type(
    clip: Path, kwargs: dict[str, Any], names: str
) -> None:
    call: dict[str, Any] = {"video": clip, "law": "gravity", "judge": ScriptedJudge({"*": 4})}
    call.update(kwargs)
    video = call.pop("video")
    with pytest.raises(InputError, match=names):
        assert_physics(video, "A ball falls.", **call)


def test_an_assertion_message_shows_control_characters_escaped(clip: Path) -> None:
    """The caption (from a prompt set), the raw reply (from a server) and the judge's name
    reach pytest's terminal through the message: no escape sequence stays in it."""
    judge = ScriptedJudge({"*": '{"SA": 2} \x1b]0;title\x07'}, name="\x1b[31mjudge")
    with pytest.raises(PhysicsAssertionError) as caught:
        assert_metric(clip, "A ball\x1b[2J falls.", metric="SA", judge=judge)
    message = str(caught.value)
    assert ESC not in message and "\x07" not in message
    assert "\\x1b[2J" in message and "\\x1b[31mjudge" in message


# --------------------------------------------------------------------------- scripted judges


@pytest.mark.parametrize("reply", [float("nan"), None, True, 3.5, [4]])
def test_a_scripted_reply_that_is_no_reply_is_refused_when_made(reply: object) -> None:
    with pytest.raises(InputError, match="'gravity'"):
        ScriptedJudge({"gravity": reply})


def test_scripted_replies_must_be_a_mapping_of_axes() -> None:
    with pytest.raises(InputError, match="mapping"):
        ScriptedJudge([1, 2])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="antigravity"):
        ScriptedJudge({"antigravity": 4})


@pytest.mark.parametrize("kwargs", [{"name": 5}, {"name": None}, {"name": " "}, {"rubric": "x"}])
def test_a_scripted_judge_needs_a_name_and_a_rubric(kwargs: dict[str, Any]) -> None:
    """Before: the name 5 reached every report's judge, and a str rubric failed only when
    the first clip was judged (AttributeError)."""
    with pytest.raises(InputError, match=next(iter(kwargs))):
        ScriptedJudge({"*": 4}, **kwargs)


def test_a_scripted_function_returning_no_reply_is_an_input_error(clip: Path) -> None:
    judge = ScriptedJudge(lambda axis, caption, video: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(InputError, match="'SA'"):
        judge.score(clip, "A ball falls.", metric="SA")


def test_an_axis_without_a_scripted_reply_is_an_input_error(clip: Path) -> None:
    judge = ScriptedJudge({"gravity": 4})
    with pytest.raises(InputError, match="'SA'"):
        judge.score(clip, "A ball falls.", metric="SA")


# --------------------------------------------------------------------------- replies and errors


def test_a_reply_naming_its_key_twice_has_no_score() -> None:
    """Which of two values counts is a guess: the reply is ambiguous, like two objects."""
    with pytest.raises(JudgeOutputError, match="twice"):
        parse_score('{"SA": 5, "SA": 1}', "SA")
    assert parse_score('{"SA": 5}', "SA") == 5


def test_a_quoted_error_shows_control_characters_escaped() -> None:
    quoted = describe_error(RuntimeError("boom \x1b[31mred\x1b]8;;http://x\x07"))
    assert ESC not in quoted and "\x07" not in quoted
    assert quoted.startswith("RuntimeError: boom \\x1b[31mred")


def test_a_judge_error_with_escapes_fails_its_items_with_an_escaped_summary(
    pytester: pytest.Pytester, kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    kit.module(
        "judges",
        "from pytest_phyjudge import ScriptedJudge\n"
        "def boom(config):\n"
        "    def reply(axis, caption, video):\n"
        "        raise RuntimeError('boom \\x1b[2J\\x1b[31mred')\n"
        "    return ScriptedJudge(reply)\n",
    )
    kit.suite(
        "videos: clips/{id}.mp4\ncases:\n  - id: fall\n    prompt: A ball falls.\n"
        "    laws: [gravity]\n    metrics: []\n"
    )
    kit.clip("fall")
    result = pytester.runpytest("-p", "no:randomly", "--phyjudge-judge", "judges:boom")
    result.assert_outcomes(failed=1)
    failed = [line for line in result.outlines if line.startswith("FAILED")]
    assert len(failed) == 1 and "Judging case 'fall' failed" in failed[0]
    assert ESC not in failed[0] and "\\x1b[2J" in failed[0]


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "other", [{"judge": "mymod:factory"}, {"judge": "tiny"}, {"url": ("http://127.0.0.1:9",)}]
)
def test_an_identity_and_another_judge_are_refused_together(
    tmp_path: Path, other: dict[str, Any]
) -> None:
    """Before, the identity silently won over the servers and lost to a factory."""
    with pytest.raises(InputError, match="both choose the judge"):
        JudgeSettings(
            identity_file=tmp_path / "j.identity.json",
            cache_dir=tmp_path,
            cache_mode="only",
            **other,
        )


# --------------------------------------------------------------------------- report targets


def test_a_report_never_replaces_a_users_file(pytester: pytest.Pytester, kit: Kit) -> None:
    """``--phyjudge-report notes.txt`` is a usage error before anything is judged; an earlier
    report of ours at the same name is replaced by a rerun."""
    kit.conftest()
    kit.suite("videos: clips/{id}.mp4\ncases:\n  - id: fall\n    prompt: A ball falls.\n")
    kit.clip("fall")
    notes = pytester.path / "notes.txt"
    notes.write_text("mine\n")
    result = pytester.runpytest("--phyjudge-report", "notes.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--phyjudge-report*notes.txt*"])
    assert notes.read_text() == "mine\n"
    for _ in range(2):  # a new report, then a rerun over it
        pytester.runpytest("--phyjudge-report", "out/scores.json").assert_outcomes(passed=3)
    assert kit.report()["format"] == "pytest-phyjudge-scores"


def test_score_dir_never_replaces_a_users_out_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out`` naming a user's file is refused before any clip is judged, like the
    generators' results files beside it."""
    from pytest_phyjudge.cli.main import main

    (tmp_path / "bb_judge.py").write_text(
        "from pytest_phyjudge import ScriptedJudge\n"
        "def make():\n    return ScriptedJudge({'*': 4})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "notes.json"
    out.write_text('{"mine": true}\n')
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"not decoded")
    prompts = tmp_path / "prompts.json"
    entry = {"id_stem": "a", "prompt": "A ball falls.", "physical_laws": ["gravity"]}
    prompts.write_text(json.dumps([entry]))
    argv = ["score-dir", "--videos", str(tmp_path / "v"), "--prompts", str(prompts)]
    code = main([*argv, "--out", str(out), "--judge", "bb_judge:make"])
    assert code == 2
    assert "notes.json" in capsys.readouterr().err
    assert out.read_text() == '{"mine": true}\n'


def test_compare_of_a_run_whose_every_item_errored_says_so(tmp_path: Path, capsys) -> None:
    """Before: "no case in common (0 cases and 3 cases)", as if the cases did not match."""
    from pytest_phyjudge.cli.main import main

    def report(name: str, score: int | None) -> str:
        row = {"video": "a", "prompt": "x", "physical_laws": [], "SA": score}
        path = tmp_path / name
        path.write_text(json.dumps({"results": [row, {**row, "video": "b"}]}))
        return str(path)

    assert main(["compare", report("errored.json", None), report("ok.json", 4)]) == 2
    err = capsys.readouterr().err
    assert "errored.json holds 2 cases and not one score" in err
