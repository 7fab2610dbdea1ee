"""The ``phyjudge`` command's exit codes, and how an error reaches the terminal."""

from __future__ import annotations

import sys

from pytest_phyjudge._escape import terminal_lines

#: Done: scored, written, compared (no significant regression), checked.
EXIT_OK = 0
#: ``compare --fail-on-regression``: an axis regressed significantly.
EXIT_REGRESSION = 1
#: Usage or bad input (a video, a law, a file), or a cache that cannot be used.
EXIT_USAGE = 2
#: The judge's reply holds no score (the raw reply is printed).
EXIT_UNPARSEABLE = 3
#: The judge could not be loaded.
EXIT_LOAD = 4
#: The judge servers gave no answer.
EXIT_BACKEND = 5
#: ``cache import``: judgments differ from the ones stored under their keys (``--replace``).
EXIT_CONFLICT = 6
#: ``canary check``: the judge no longer answers the canaries as recorded.
EXIT_DRIFT = 7
#: Interrupted (Ctrl-C).
EXIT_INTERRUPTED = 130

EPILOG = (
    "Exit codes: 0 ok, 1 significant regression (compare --fail-on-regression), 2 usage or "
    "bad input, 3 unparseable judge reply, 4 judge could not be loaded, 5 judge servers gave "
    "no answer, 6 cache import conflicts with stored judgments (cache import --replace), "
    "7 the judge drifted from its recorded canaries (canary check)."
)


def fail(message: str, code: int) -> int:
    """Print ``message`` as the command's error (names in it quoted from users' files have
    their control characters shown escaped) and return ``code``."""
    print(f"phyjudge: error: {terminal_lines(message)}", file=sys.stderr)
    return code
