"""What one hostile input is, what it gave, and when that counts as clean."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: Seconds an input may take before it counts as a hang (the issue's generous limit).
LIMIT_S = 60.0
#: What a user must never see: Python's traceback, pytest's internal error, a code frame
#: (pytest's ``>`` line), or an exception's class at a ``.py`` line.
_TRACEBACK = re.compile(
    r"Traceback \(most recent call last\)|INTERNALERROR|^>\s{3}|\.py:\d+: \w*(Error|Exception)\b",
    re.MULTILINE,
)


def traceback_sign(text: str) -> str | None:
    """The first sign of a traceback in ``text``, or None."""
    found = _TRACEBACK.search(text)
    return found.group(0).strip() if found else None


@dataclass(frozen=True)
class Expect:
    """A clean outcome: every result is of one of ``kinds``, the text holds each of
    ``names`` (the file, line, field or thing), and ``absent`` paths were not created."""

    kinds: frozenset[str]
    names: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()


def expect(*kinds: str, names: tuple[str, ...] | str = (), absent: tuple[str, ...] = ()) -> Expect:
    return Expect(frozenset(kinds), (names,) if isinstance(names, str) else names, absent)


@dataclass(frozen=True)
class SuiteInput:
    """A suite file (plus what it refers to), tried in one pytest session with others."""

    cls: str
    name: str
    text: str | bytes
    want: Expect
    #: Extra files to make beside it: relative path -> bytes, or a callable making it.
    extra: tuple[tuple[str, bytes | Callable[[Path], None]], ...] = ()


class Hung(Exception):
    """Raised by a probe whose own child (a pytest session, a command) passed its limit."""


class NotClean(Exception):
    """Raised by a probe that found, while running, that the outcome is not clean (a
    user's file changed, two cases sharing a sheet): its message is the reason."""


#: Why an outcome is not clean, judged from what the probe left behind: ``check(folder,
#: text)`` sees the probe's folder and everything it printed, and returns the reason (a
#: user's file changed, a secret's bytes in an artifact, live Markdown, code that ran, a
#: judgment changed), or None when the outcome is safe.
Check = Callable[[Path, str], "str | None"]


@dataclass(frozen=True)
class Probe:
    """An input tried through the Python API or the CLI's ``main`` in a child process:
    ``run(folder)`` builds the input in ``folder`` and returns the text a user would see
    (a raised PhyJudgeError is that text too). ``check`` then judges the outcome itself,
    not only the message; ``limit`` is its hang limit in seconds."""

    cls: str
    name: str
    run: Callable[[Path], str]
    want: Expect
    check: Check | None = None
    limit: float = LIMIT_S


@dataclass(frozen=True)
class Outcome:
    cls: str
    name: str
    clean: bool
    seconds: float
    why: str = ""
    kinds: tuple[str, ...] = field(default=())


def judge_outcome(
    cls: str,
    name: str,
    kinds: list[str],
    text: str,
    seconds: float,
    want: Expect,
    folder: Path,
    checked: str | None = None,
    limit: float = LIMIT_S,
) -> Outcome:
    """Clean or not, and why not (the first reason found); ``checked`` is what the probe's
    outcome check found wrong, if anything."""
    why = ""
    if not kinds:
        why = "no result"
    elif "hung" in kinds:
        why = f"no result within {limit:.0f} s"
    elif "crashed" in kinds:
        why = "the process died while trying it"
    elif traceback_sign(text):
        why = f"traceback: {last_line(text)}"
    elif unexpected := sorted(set(kinds) - want.kinds):
        why = f"outcome {'/'.join(unexpected)}, wanted {'/'.join(sorted(want.kinds))}: "
        why += first_line(text)
    elif not _accepted(kinds) and (missing := [n for n in want.names if n not in text]):
        why = f"does not name {missing[0]!r}: {first_line(text)}"
    elif made := [p for p in want.absent if (folder / p).exists()]:
        why = f"created {made[0]} (code ran)"
    elif checked:
        why = checked
    elif seconds > limit:
        why = f"took {seconds:.0f} s"
    return Outcome(cls, name, not why, seconds, why, tuple(kinds))


def _accepted(kinds: list[str]) -> bool:
    """A run whose items all passed or skipped has no message to name anything in."""
    return all(kind in ("passed", "skipped", "xfailed") for kind in kinds)


def last_line(text: str) -> str:
    """The last non-empty line of ``text`` (a traceback's exception), shortened."""
    return first_line("\n".join(reversed(text.splitlines())))


def first_line(text: str) -> str:
    """The first non-empty line of ``text``, shortened for a table."""
    line = next((s.strip() for s in text.splitlines() if s.strip()), "(no output)")
    return line if len(line) <= 160 else line[:157] + "..."
