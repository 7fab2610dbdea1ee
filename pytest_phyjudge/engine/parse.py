"""Turns a judge's reply into an integer score, or a JudgeOutputError that shows the reply."""

from __future__ import annotations

import json
import re
from typing import Any

from pytest_phyjudge._exceptions import JudgeOutputError
from pytest_phyjudge.engine.axes import MAX_SCORE, MIN_SCORE, is_score

#: Bump when parsing changes what a reply means: the judgment cache keys on it.
PARSER_VERSION = 1

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)


class _DuplicateKey(ValueError):
    """A reply's JSON object names one key twice: which value counts is a guess."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise _DuplicateKey(name)
        found[name] = value
    return found


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_pairs)


def answer_prefix(axis: str) -> str:
    """The start of the answer the template asks for, up to the digit: ``{"gravity": ``."""
    return '{"' + axis + '": '


def strip_think(text: str) -> str:
    """Drop ``<think>...</think>`` blocks (and a dangling closing tag) from a reply."""
    text = _THINK_BLOCK.sub("", text)
    if "</think>" in text:  # an opening tag swallowed by the chat template
        text = text.split("</think>", 1)[1]
    return text.strip()


def _json_objects(text: str) -> list[dict]:
    """Every top-level JSON object embedded in ``text``, in order, prose around them ignored."""
    found: list[dict] = []
    pos = 0
    while (start := text.find("{", pos)) != -1:
        try:
            value, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            pos = start + 1
            continue
        if isinstance(value, dict):
            found.append(value)
        pos = end
    return found


def parse_score(raw: str, key: str) -> int:
    """The integer 1-5 under ``key`` in the single JSON object of ``raw``.

    Accepts think blocks and prose around the object; rejects everything ambiguous (no
    object, two objects, a key named twice, the wrong key) and every value that is not an
    integer 1-5 (``0``, ``6``, ``3.5``, ``"4"``, ``true``).
    """
    text = strip_think(raw)
    if not text:
        raise JudgeOutputError(f"The judge gave an empty reply for {key!r}.", raw=raw, key=key)
    try:
        objects = _json_objects(text)
    except _DuplicateKey as exc:
        raise JudgeOutputError(
            f"The judge's reply names the key {exc.args[0]!r} twice in one JSON object, so "
            "the score is ambiguous.",
            raw=raw,
            key=key,
        ) from None
    if not objects:
        raise JudgeOutputError(
            f"The judge's reply for {key!r} holds no JSON object.", raw=raw, key=key
        )
    if len(objects) > 1:
        raise JudgeOutputError(
            f"The judge's reply for {key!r} holds {len(objects)} JSON objects; exactly one "
            "was asked for, so the score is ambiguous.",
            raw=raw,
            key=key,
        )
    (obj,) = objects
    if key not in obj:
        keys = ", ".join(repr(k) for k in obj) or "no key"
        raise JudgeOutputError(
            f"The judge's reply has {keys} where the key {key!r} was asked for.", raw=raw, key=key
        )
    value = obj[key]
    if not is_score(value):
        raise JudgeOutputError(
            f"The judge's score for {key!r} is {value!r}; an integer from {MIN_SCORE} to "
            f"{MAX_SCORE} was asked for.",
            raw=raw,
            key=key,
        )
    return value


def distribution_fields(probs: tuple[float, ...], axis: str) -> dict[str, Any]:
    """A Judgment's fields from the probabilities of the digits 1..5 after the answer
    prefix: the likeliest digit as the score, the probabilities and their expected value."""
    score = max(range(5), key=lambda i: probs[i]) + 1
    return {
        "raw": f"{answer_prefix(axis)}{score}",
        "score": score,
        "probs": probs,
        "expected": sum((i + 1) * p for i, p in enumerate(probs)),
    }
