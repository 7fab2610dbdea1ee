"""SIGTERM handled like Ctrl-C, so a cancelled run still writes the report of what it judged."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

import pytest

#: The SIGTERM handler that was in place before ours, kept to restore at unconfigure.
_PREVIOUS = pytest.StashKey[Any]()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # A second SIGTERM ends the process at once, as a second Ctrl-C would be answered.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt(f"received signal {signum} (SIGTERM)")


def catch_sigterm(config: pytest.Config) -> None:
    """Turn SIGTERM (sent by ``timeout``, CI cancellation, ``kill``) into KeyboardInterrupt,
    which pytest answers as it does Ctrl-C: the session finishes ``interrupted`` and the
    report holds the items judged so far. Only from the main thread, and only where nobody
    else handles SIGTERM: a handler of the user's (or an outer pytest run's) is left alone."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        return
    signal.signal(signal.SIGTERM, _interrupt)
    config.stash[_PREVIOUS] = previous


def release_sigterm(config: pytest.Config) -> None:
    """Put back the handler ``catch_sigterm`` replaced."""
    previous = config.stash.get(_PREVIOUS, None)
    if previous is None or threading.current_thread() is not threading.main_thread():
        return
    del config.stash[_PREVIOUS]
    signal.signal(signal.SIGTERM, previous)
