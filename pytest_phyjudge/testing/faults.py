"""Faults a judge server injects into its replies, to test how the remote backend copes."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from pytest_phyjudge.judges.server import Exchange, JudgeServer

FAULT_KINDS = ("error", "delay", "malformed", "drop")
#: A reply cut short: HTTP 200 with a body that is not JSON.
MALFORMED_BODY = b'{"choices": [{"message": '


@dataclass(frozen=True)
class Fault:
    """What the server does instead of answering one request normally.

    ``error``: reply HTTP ``status``; ``delay``: wait ``seconds`` then answer; ``malformed``:
    reply 200 with a body that is not JSON; ``drop``: close the connection without a reply.
    """

    kind: str
    status: int = 500
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {self.kind!r}")

    def apply(self, exchange: Exchange) -> bool:
        """Do this fault to the request in ``exchange``; True when it answered the
        request (or hung up) itself, False when the judge answers it after all."""
        if self.kind == "drop":
            exchange.hang_up()
        elif self.kind == "error":
            exchange.error(self.status, "injected fault")
        elif self.kind == "malformed":
            exchange.reply(200, MALFORMED_BODY)
        else:  # a delay: the judge still answers, late
            time.sleep(self.seconds)
            return False
        return True


class Faults:
    """Faults for the next requests, in order (one per request), or for every request.
    Called with an ``Exchange``, it is a ``JudgeServer`` ``before_reply`` hook."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._always: Fault | None = None
        self._lock = threading.Lock()

    def add(self, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self._queue.extend([fault] * times)

    def always(self, fault: Fault | None) -> None:
        with self._lock:
            self._always = fault

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._always = None

    def next(self) -> Fault | None:
        with self._lock:
            return self._queue.popleft() if self._queue else self._always

    def __call__(self, exchange: Exchange) -> bool:
        fault = self.next()
        return fault is not None and fault.apply(exchange)


class FaultyJudgeServer(JudgeServer):
    """A ``JudgeServer`` that injects the faults queued on its ``faults``."""

    def __init__(self, judge: Any, *, faults: Faults | None = None, **settings: Any) -> None:
        self.faults = faults if faults is not None else Faults()
        super().__init__(judge, before_reply=self.faults, **settings)
