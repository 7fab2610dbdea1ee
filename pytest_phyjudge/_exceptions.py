"""Every error pytest-phyjudge raises on purpose, in one short hierarchy.

    PhyJudgeError                 base: catch this to catch them all
    ├── InputError                bad input from the user: a video, an axis name, a flag
    │   ├── VideoError            a video that cannot be judged (missing, empty, truncated, ...)
    │   └── SuiteError            a YAML suite or prompt set; carries path and line
    ├── RubricError               a prompt template or rubric that cannot be rendered
    ├── JudgeLoadError            the judge (adapter, base model, processor) could not be loaded
    ├── JudgeOutputError          the judge replied with something that is not a score; keeps raw
    ├── JudgeBackendError         a judge server failed: HTTP errors, timeouts, every replica down
    └── CacheError                the judgment cache cannot be used

Messages are written for the person who will read them: one paragraph that names the
thing (file, line, field) and ends with what to do about it.
"""

from __future__ import annotations

from pathlib import Path

from pytest_phyjudge._escape import terminal_lines


class PhyJudgeError(Exception):
    """Base class of every error raised on purpose by pytest-phyjudge."""


class InputError(PhyJudgeError, ValueError):
    """The user gave input that cannot be used (an unknown axis, a bad flag value, ...)."""


class VideoError(InputError):
    """A video file that cannot be judged; ``path`` names it."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)


class SuiteError(InputError):
    """A YAML suite or prompt set that cannot be collected; names the file and line.

    When one file has several independent problems, one SuiteError lists them all and
    ``errors`` holds each (with its own line); it is empty for a single problem."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        errors: tuple[SuiteError, ...] = (),
    ):
        self.path = None if path is None else Path(path)
        self.line = line
        self.reason = message
        self.errors = errors
        super().__init__(self._located(message))

    def _located(self, message: str) -> str:
        if self.path is None:
            return message
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {message}"


class RubricError(PhyJudgeError):
    """A prompt template or rubric that is missing a key or a placeholder."""


class JudgeLoadError(PhyJudgeError):
    """The adapter, its base model or its processor could not be loaded."""


class JudgeOutputError(PhyJudgeError):
    """The judge's reply holds no usable score; ``raw`` is the reply exactly as generated."""

    def __init__(
        self, message: str, *, raw: str, key: str | None = None, shows_raw: bool = False
    ) -> None:
        self.raw = raw
        self.key = key
        self.reason = message
        # ``shows_raw``: the message already quotes the reply, so it is not appended again.
        super().__init__(message if shows_raw else f"{message}\nraw reply: {raw!r}")


class JudgeBackendError(PhyJudgeError):
    """A judge server could not give an answer: it failed, timed out or was unreachable,
    after the retries allowed. ``urls`` names the servers tried. ``retryable``: another
    attempt may succeed (a 5xx, a timeout, a dropped connection, a malformed reply), where
    a 4xx will not."""

    def __init__(
        self, message: str, *, urls: tuple[str, ...] = (), retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.urls = urls
        self.retryable = retryable


class CacheError(PhyJudgeError):
    """The judgment cache could not be opened or written."""


def describe_error(exc: BaseException) -> str:
    """``Type: message``, the way an error is quoted inside another message. The message
    may come from anywhere (a judge server, a user's generator): its control characters are
    shown escaped, so quoting it never sends an escape sequence to a terminal."""
    return terminal_lines(f"{type(exc).__name__}: {exc}")
