"""Faults a judge server injects into its replies, to test how the remote backend copes."""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any

from pytest_phyjudge.deploy.server import Exchange, JudgeServer

FAULT_KINDS = ("error", "delay", "malformed", "drop", "model", "bomb", "deep")
#: A reply cut short: HTTP 200 with a body that is not JSON.
MALFORMED_BODY = b'{"choices": [{"message": '


def compression_bomb(size: int, encoding: str = "gzip") -> bytes:
    """A ``gzip`` or ``deflate`` (zlib) body that inflates to ``size`` bytes (spaces: JSON
    whitespace), about a thousandth of that itself; built a MiB at a time, never inflated."""
    wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    parts, block = [], b" " * 2**20
    for start in range(0, size, len(block)):
        parts.append(packer.compress(block[: size - start]))
    return b"".join([*parts, packer.flush()])


@dataclass(frozen=True)
class Fault:
    """What the server does instead of answering one request normally.

    ``error``: reply HTTP ``status``; ``delay``: wait ``seconds`` then answer; ``malformed``:
    reply 200 with a body that is not JSON; ``drop``: close the connection without a reply;
    ``model``: the judge's reply, naming ``model`` (and ``fingerprint`` as its
    ``system_fingerprint``) instead of the served model; ``bomb``: a body in ``encoding``
    (gzip or deflate) that inflates to ``size`` bytes; ``deep``: JSON arrays nested ``size``
    deep.
    """

    kind: str
    status: int = 500
    seconds: float = 0.0
    model: str | None = None
    fingerprint: str | None = None
    size: int = 0
    encoding: str = "gzip"

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
        elif self.kind == "model":
            reply = exchange.judge_reply()
            if self.model is not None:
                reply["model"] = self.model
            if self.fingerprint is not None:
                reply["system_fingerprint"] = self.fingerprint
            exchange.reply(200, json.dumps(reply).encode())
        elif self.kind == "bomb":
            body = compression_bomb(self.size, self.encoding)
            exchange.reply(200, body, headers={"Content-Encoding": self.encoding})
        elif self.kind == "deep":
            exchange.reply(200, b"[" * self.size + b"]" * self.size)
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
