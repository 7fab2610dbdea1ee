"""A deadline for a whole request, headers included: httpx's timeouts bound each socket
read, so a server that drips its status line or headers a byte at a time would hold the
client for ever. Here every read and write on the socket gets what is left of the
request's deadline, at most."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

#: The monotonic time by which the request running in this context must be done.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "phyjudge_request_deadline", default=None
)


@contextlib.contextmanager
def request_deadline(budget: float | None) -> Iterator[None]:
    """Every socket operation of the requests made inside ends by ``budget`` seconds from
    now (no limit when None); past it, httpx raises its ``ReadTimeout``/``WriteTimeout``."""
    token = _DEADLINE.set(None if budget is None else time.monotonic() + budget)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of the deadline; ``error`` once none is left."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


def deadline_transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's own transport, whose sockets honour ``request_deadline``."""
    import httpcore
    import httpx

    class _Stream(httpcore.NetworkStream):
        def __init__(self, stream: httpcore.NetworkStream) -> None:
            self._stream = stream

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self._stream.close()

        def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
            return _Stream(self._stream.start_tls(*args, **kwargs))

        def get_extra_info(self, info: str) -> Any:
            return self._stream.get_extra_info(info)

    class _Backend(httpcore.SyncBackend):
        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.NetworkStream:
            timeout = _bounded(timeout, httpcore.ConnectTimeout)
            return _Stream(super().connect_tcp(host, port, timeout, local_address, socket_options))

    transport = httpx.HTTPTransport(limits=limits)
    # httpx takes no network backend of its own; its connection pool does, and keeps
    # every other setting (TLS, limits) as httpx made them.
    transport._pool._network_backend = _Backend()
    return transport
