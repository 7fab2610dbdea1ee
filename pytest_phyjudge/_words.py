"""Counted nouns in messages ("1 clip", "2 clips"): one helper, so no message says "1 clips"."""

from __future__ import annotations

__all__ = ["counted"]

#: Plurals the rule below does not make.
_IRREGULAR = {"axis": "axes"}


def plural(noun: str) -> str:
    """``noun``'s plural: the few irregular ones, consonant + y -> ies, a hiss -> es, else
    + s (the last word of ``noun`` counts: "judge call" -> "judge calls")."""
    if noun in _IRREGULAR:
        return _IRREGULAR[noun]
    if noun.endswith(("s", "x", "sh", "ch")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return noun[:-1] + "ies"
    return noun + "s"


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless the count is one: ``counted(1, "video")`` is
    "1 video", ``counted(3, "entry")`` "3 entries"."""
    return f"{count} {noun if count == 1 else plural(noun)}"
