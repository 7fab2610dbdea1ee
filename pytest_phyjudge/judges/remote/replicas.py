"""Which judge server gets the next request: least outstanding first, with a circuit breaker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_phyjudge._exceptions import JudgeBackendError
from pytest_phyjudge.judges.settings import PYTEST_SURFACE, Surface

#: Consecutive failures after which a replica is left alone for BREAKER_COOLDOWN seconds.
BREAKER_THRESHOLD = 3
BREAKER_COOLDOWN = 30.0
#: The first retry waits DEFAULT_BACKOFF seconds, each next one twice as long, up to MAX_BACKOFF.
DEFAULT_BACKOFF = 0.5
MAX_BACKOFF = 8.0


def backoff_delay(attempt: int, base: float, ceiling: float = MAX_BACKOFF) -> float:
    """Seconds to wait after failed attempt ``attempt`` (0 for the first) before the next."""
    return min(ceiling, base * 2**attempt)


@dataclass
class _Replica:
    """One server and what the pool knows of it; mutable, and changed under the pool's lock."""

    url: str
    index: int
    outstanding: int = 0
    failures: int = 0
    #: The pool's clock reading until which the breaker keeps this replica out.
    open_until: float = 0.0
    last_error: str = ""
    served: int = 0


class ReplicaPool:
    """Picks the replica with the fewest outstanding requests, and keeps a circuit breaker
    per replica: ``threshold`` consecutive failures leave it out for ``cooldown`` seconds
    (one more failure after that leaves it out again). ``clock`` tells the time in seconds
    (monotonic); tests pass a fake one to drive the cooldowns."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        threshold: int = BREAKER_THRESHOLD,
        cooldown: float = BREAKER_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
        surface: Surface = PYTEST_SURFACE,
    ) -> None:
        self.replicas = [_Replica(url, index) for index, url in enumerate(urls)]
        #: Whose flags the messages name.
        self.surface = surface
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self._lock = threading.Lock()
        self._turn = 0

    def acquire(self) -> _Replica:
        """The replica for the next request (counted as outstanding until ``release``);
        JudgeBackendError at once when every breaker is open."""
        with self._lock:
            now = self.clock()
            ready = [r for r in self.replicas if r.open_until <= now]
            if not ready:
                raise self.all_down_error(now)
            self._turn += 1
            n = len(self.replicas)
            # Fewest outstanding first; ties rotate so that idle replicas share the load.
            best = min(ready, key=lambda r: (r.outstanding, (r.index - self._turn) % n))
            best.outstanding += 1
            return best

    def release(self, replica: _Replica, error: str | None = None) -> None:
        """The request on ``replica`` is over: answered (``error`` None) or failed."""
        with self._lock:
            replica.outstanding -= 1
            if error is None:
                replica.failures, replica.open_until = 0, 0.0
                replica.served += 1
                return
            replica.failures += 1
            replica.last_error = error
            if replica.failures >= self.threshold:
                replica.open_until = self.clock() + self.cooldown

    def all_down_error(self, now: float | None = None) -> JudgeBackendError:
        now = self.clock() if now is None else now
        lines = "; ".join(
            f"{r.url} ({r.last_error or 'failing'}, "
            f"tried again in {max(0.0, r.open_until - now):.0f} s)"
            for r in self.replicas
        )
        return JudgeBackendError(
            f"Every judge server is down: {lines}. The remaining items fail without waiting. "
            "Check that the servers run and are reachable from here (curl URL/v1/models), "
            f"or change {self.surface.flag('url')}.",
            urls=tuple(r.url for r in self.replicas),
        )
