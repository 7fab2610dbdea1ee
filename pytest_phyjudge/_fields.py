"""Typed checks of the fields of a JSON document a user hands us (a ``scores.json``, a canary
file), every failure one InputError naming the document, the field's JSON path
(``results[3].physical.laws.gravity.score``), what it holds, and the fix.

A rule is a test and what a value passing it is, in words (``(is_number, "a finite
number")``); a :class:`Fields` holds the document's name and the fix, and checks a value, the
keys of an object, or several fields of one object against a rule.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from pytest_phyjudge._exceptions import InputError

#: The test a value passes, and what a value that passes is (``"a string"``).
Rule = tuple[Callable[[Any], bool], str]
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_number(value: Any) -> bool:
    """A finite int or float (a bool is no number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def between(low: float, high: float, what: str = "a finite number") -> Rule:
    """A number from ``low`` to ``high``."""
    return (lambda v: is_number(v) and low <= v <= high, f"{what} from {low:g} to {high:g}")


TEXT: Rule = (lambda v: isinstance(v, str), "a string or null")
STRING: Rule = (TEXT[0], "a string")
NUMBER: Rule = (is_number, "a finite number or null")
BOOLEAN: Rule = (lambda v: isinstance(v, bool), "true, false or null")
INTEGER: Rule = (lambda v: type(v) is int, "a whole number or null")
OBJECT: Rule = (lambda v: isinstance(v, dict), "an object or null")
LIST: Rule = (lambda v: isinstance(v, list), "a list")
TEXTS: Rule = (
    lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "a list of strings",
)


#: The longest name of a judge's adapter, revision or base (a hub id, a folder's path) that
#: a file or a server may give: longer is no name.
MAX_NAME = 4096
#: The longest text kept of what a judge server says of itself (its model, fingerprint): vLLM's
#: fingerprints are a few dozen characters; a longer one is cut and named by its digest, so
#: two still differ, and a server cannot fill the reports and the terminal with megabytes.
MAX_SERVER_TEXT = 200


def server_text(value: Any, limit: int = MAX_SERVER_TEXT) -> str | None:
    """A value a server sent about itself as the reports keep it (or any text from another
    document, as a report shows it): text (another JSON value by its ``repr``), at most
    ``limit`` characters; a longer one is cut and ends with its sha256, so two long
    fingerprints still tell apart."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{text[: limit - 60]}... ({len(text)} characters, sha256 {digest})"


def key_path(path: str, key: str) -> str:
    """The JSON path of ``key`` in the object at ``path`` (``""``: the document):
    ``meta.judge``, or ``results[0].physical.laws["two words"]``."""
    if not path and _IDENTIFIER.match(key):
        return key
    if _IDENTIFIER.match(key) and len(key) <= 60:
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key if len(key) <= 60 else key[:57] + '...')}]"


def shown(value: Any) -> str:
    """A value as a message shows it: short, and with control characters escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Fields:
    """The checks of one document named ``name``; ``fix`` ends every message."""

    def __init__(self, name: str, fix: str) -> None:
        self.name = name
        self.fix = fix

    def context(self) -> str:
        """Said after the path (a subclass names the case being read, say)."""
        return ""

    def fail(self, path: str, problem: str) -> InputError:
        return InputError(f"{self.name}: {path}{self.context()} {problem}. {self.fix}")

    def wrong(self, path: str, value: Any, expected: str) -> InputError:
        return self.fail(path, f"= {shown(value)}, which is not {expected}")

    def value(self, value: Any, path: str, rule: Rule, *, null: bool = False) -> Any:
        """``value`` when it passes ``rule`` (or is None, where ``null``)."""
        test, expected = rule
        if (value is None and not null) or (value is not None and not test(value)):
            raise self.wrong(path, value, expected + (" or null" if null else ""))
        return value

    def fields(
        self, holder: Mapping[str, Any], path: str, rule: Rule, *keys: str, needed: bool = False
    ) -> None:
        """Each of ``keys`` in ``holder`` passes ``rule`` (or is null or absent, unless
        ``needed``)."""
        test, expected = rule
        for key in keys:
            value = holder.get(key)
            if (needed or value is not None) and (value is None or not test(value)):
                raise self.wrong(key_path(path, key), value, expected)

    def obj(self, holder: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
        """``holder[key]``, an object (``{}`` when null or absent)."""
        self.fields(holder, path, OBJECT, key)
        return holder.get(key) or {}

    def needs(self, holder: Mapping[str, Any], path: str, keys: tuple[str, ...]) -> None:
        """Each of ``keys`` is in ``holder`` (null allowed where the field allows it)."""
        for key in keys:
            if key not in holder:
                raise self.fail(path, f"has no {key!r} (it holds {', '.join(keys)})")

    def exact(
        self, value: Any, path: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """``value``, an object holding every one of ``keys`` and nothing but them and
        ``optional`` (a document whose every field this version writes)."""
        if not isinstance(value, dict):
            raise self.wrong(path, value, "an object")
        missing = [k for k in keys if k not in value]
        if missing:
            raise self.fail(path, f"lacks {', '.join(map(repr, missing))}")
        extra = [k for k in value if k not in keys and k not in optional]
        if extra:
            raise self.fail(path, f"holds unknown keys {', '.join(map(repr, extra[:5]))}")
        return value
