"""Turning the judge's reply into a score: what is accepted, and what is a clear error."""

from __future__ import annotations

import pytest

from pytest_phyjudge._exceptions import JudgeOutputError, PhyJudgeError
from pytest_phyjudge.engine.parse import parse_score, strip_think


@pytest.mark.parametrize(
    ("raw", "key", "score"),
    [
        ('{"gravity": 4}', "gravity", 4),
        ('{"SA": 1}', "SA", 1),
        ('{"persistence": 5}', "persistence", 5),
        ('  {"PTV": 2}\n', "PTV", 2),
        ('{"flow_dynamics":3}', "flow_dynamics", 3),
        ('<think>\nThe ball falls {"gravity": 1} fast.\n</think>\n\n{"SA": 3}', "SA", 3),
        ('<think></think>{"SA": 3}', "SA", 3),
        ('The ball accelerates.</think>{"gravity": 5}', "gravity", 5),  # opening tag eaten
        ('Maybe {"gravity": 2}?\n</think>\n{"gravity": 5}', "gravity", 5),
        ('Here is my rating: {"shadow": 2}. Thanks!', "shadow", 2),
        ('```json\n{"reflection": 4}\n```', "reflection", 4),
        ('Scores {like this} are invalid JSON, but {"momentum": 3} is.', "momentum", 3),
        ('{"collision": 4, "note": "hit {hard}"}', "collision", 4),
    ],
)
def test_accepted_replies(raw: str, key: str, score: int) -> None:
    result = parse_score(raw, key)
    assert result == score
    assert type(result) is int


@pytest.mark.parametrize(
    ("raw", "key", "reason"),
    [
        ('{"gravity": 4}', "SA", "'gravity' where the key 'SA' was asked for"),
        ("{}", "SA", "no key where the key 'SA' was asked for"),
        ('{"SA": 0}', "SA", "is 0; an integer from 1 to 5"),
        ('{"SA": 6}', "SA", "is 6; an integer from 1 to 5"),
        ('{"SA": -1}', "SA", "is -1"),
        ('{"SA": 3.5}', "SA", "is 3.5"),
        ('{"SA": 4.0}', "SA", "is 4.0"),
        ('{"SA": "4"}', "SA", "is '4'"),
        ('{"SA": true}', "SA", "is True"),
        ('{"SA": null}', "SA", "is None"),
        ('{"SA": [4]}', "SA", "is [4]"),
        ('{"SA": 3} {"SA": 4}', "SA", "holds 2 JSON objects"),
        ('{"SA": 3}\n{"PTV": 4}', "SA", "holds 2 JSON objects"),
        ("", "SA", "empty reply"),
        ("  \n ", "SA", "empty reply"),
        ('<think>{"SA": 3}</think>', "SA", "empty reply"),
        ("The video looks fine, I would say 4.", "SA", "no JSON object"),
        ('{"SA": 4', "SA", "no JSON object"),
        ("[4]", "SA", "no JSON object"),
        ("SA: 4", "SA", "no JSON object"),
    ],
)
def test_rejected_replies_raise_judge_output_error(raw: str, key: str, reason: str) -> None:
    with pytest.raises(JudgeOutputError) as caught:
        parse_score(raw, key)
    error = caught.value
    assert isinstance(error, PhyJudgeError)
    assert error.raw == raw  # exactly as generated, think blocks and whitespace included
    assert error.key == key
    assert reason in error.reason
    assert repr(raw) in str(error)  # the message shows the raw reply


def test_raw_is_kept_even_when_the_think_block_is_dropped() -> None:
    raw = '<think>unsure</think>{"SA": 3.5}'
    with pytest.raises(JudgeOutputError) as caught:
        parse_score(raw, "SA")
    assert caught.value.raw == raw


def test_strip_think() -> None:
    assert strip_think('<think>a\nb</think> {"SA": 3} ') == '{"SA": 3}'
    assert strip_think("<think>a</think>x<think>b</think>y") == "xy"
    assert strip_think('reasoning</think>{"SA": 3}') == '{"SA": 3}'
    assert strip_think('{"SA": 3}') == '{"SA": 3}'
