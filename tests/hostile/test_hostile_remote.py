"""Hostile judge servers (issue 11, classes 4 and 5): impossible log-probabilities, a reply
dripped a byte at a time, a 429 asking to wait, and a redirect. The servers are an
``httpx.MockTransport`` with a fake clock, except the dripping one, which is a real server
on 127.0.0.1 (only a socket shows httpx's per-read timeout)."""

from __future__ import annotations

import http.server
import math
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from pytester_kit import FakeClock

from pytest_phyjudge import JudgeOutputError
from pytest_phyjudge._exceptions import JudgeBackendError
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.engine.rubric import load_rubric
from pytest_phyjudge.judges.remote.http import digit_distribution as digits
from pytest_phyjudge.judges.remote.http import read_top_logprobs
from pytest_phyjudge.judges.remote.judge import RemoteJudge, RemotePlan, RemoteSettings
from pytest_phyjudge.judges.remote.replicas import MAX_BACKOFF
from pytest_phyjudge.judges.settings import JudgeConfig

URL = "http://judge-a:8000"
BODY = {"model": "phyjudge", "messages": []}


def _judge(
    urls: tuple[str, ...],
    *,
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
    clock: FakeClock | None = None,
    **remote: float,
) -> RemoteJudge:
    """A remote judge on ``urls``: ``handler`` stands for the servers when given."""
    settings = {"read_timeout": 1.0, "connect_timeout": 1.0, "retries": 2, "backoff": 0.01}
    plan = RemotePlan(
        remote=RemoteSettings(urls=urls, **{**settings, **remote}),
        identity=JudgeIdentity(kind="scripted", adapter="hostile-servers"),
        rubric=load_rubric(None),
        config=JudgeConfig(scoring="distribution"),
        top_logprobs=20,
    )
    if handler is None:
        return plan.load()
    clock = clock or FakeClock()
    return plan.load(transport=httpx.MockTransport(handler), clock=clock, sleep=clock.sleep)


def _logprobs_reply(logprob: str) -> httpx.Response:
    """A chat reply whose likeliest digit has ``logprob``, written as raw JSON (Python's
    parser reads ``NaN`` and ``Infinity``, as a careless server may send them)."""
    content = (
        '{"choices": [{"logprobs": {"content": [{"top_logprobs": ['
        f'{{"token": "4", "logprob": {logprob}}}, {{"token": "3", "logprob": -2.0}}'
        "]}]}}]}"
    )
    return httpx.Response(200, content=content.encode())


# --------------------------------------------------------------------------- impossible values


@pytest.mark.parametrize("logprob", ["NaN", "Infinity", "-Infinity", "1000", "0.5"])
def test_an_impossible_logprob_is_a_server_fault_retried_then_named(logprob):
    judge = _judge((URL,), handler=lambda r: _logprobs_reply(logprob), breaker_threshold=10)
    try:
        with pytest.raises(JudgeBackendError) as info:
            judge.complete(BODY, read_top_logprobs)
    finally:
        judge.close()
    message = str(info.value)
    assert judge.requests == 3 and info.value.urls == (URL,)
    assert "after 3 attempts" in message and URL in message
    assert f"impossible logprob {float(logprob)!r} for token '4'" in message


@pytest.mark.parametrize("logprob", [math.nan, math.inf, 1000.0])
def test_digits_from_impossible_logprobs_are_an_output_error(logprob):
    with pytest.raises(JudgeOutputError, match=rf"impossible logprob {logprob!r} for token '4'"):
        digits([("4", logprob), ("3", -1.0)], "gravity")


def test_a_logprob_rounded_a_hair_above_zero_is_certainty():
    probs, mass = digits([("4", 1e-7)], "gravity")
    assert probs == (0, 0, 0, 1.0, 0) and mass == 1.0


# --------------------------------------------------------------------------- a dripping server


class _Dripper(http.server.BaseHTTPRequestHandler):
    """Reads the request, then answers a byte every 0.2 s until told to stop: in the body
    of a long JSON reply, or (``part = "head"``) in the status line and headers."""

    stop = threading.Event()
    part = "body"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.part == "body":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
        self.wfile.flush()
        dripped = b"HTTP/1.1 200 OK\r\nX-Slow: " if self.part == "head" else b""
        index = 0
        while not self.stop.wait(0.2):
            try:
                self.wfile.write(dripped[index : index + 1] or b"a")
                self.wfile.flush()
            except OSError:  # the client gave up
                return
            index += 1

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=["body", "head"])
def dripping_url(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Dripper", (_Dripper,), {"part": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    _Dripper.stop.clear()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        _Dripper.stop.set()  # frees a client the fix did not, so the test still ends
        server.shutdown()
        server.server_close()


def test_a_reply_dripped_byte_by_byte_is_cut_at_the_timeout(dripping_url):
    """The budget covers the whole reply: a slow body, and a slow status line or headers
    (which httpx's per-read timeout alone never cuts)."""
    judge = _judge((dripping_url,), read_timeout=1.0, retries=0)
    outcome: list[BaseException | object] = []

    def ask() -> None:
        try:
            outcome.append(judge.complete(BODY))
        except BaseException as exc:
            outcome.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=ask, daemon=True)
    worker.start()
    worker.join(timeout=60)
    elapsed = time.monotonic() - started
    try:
        assert not worker.is_alive(), "the client was still reading after 60 s"
        (error,) = outcome
        assert isinstance(error, JudgeBackendError)
        assert "timed out (no whole reply within 1 s)" in str(error)
        assert elapsed < 15
    finally:
        _Dripper.stop.set()
        worker.join(timeout=10)
        judge.close()


# --------------------------------------------------------------------------- 429 and redirects


@pytest.mark.parametrize(("retry_after", "waited"), [("3", 3.0), ("100", MAX_BACKOFF)])
def test_a_429_is_retried_after_its_retry_after(retry_after, waited):
    replies = [httpx.Response(429, headers={"Retry-After": retry_after}, text="slow down")]

    def handler(request: httpx.Request) -> httpx.Response:
        if replies:
            return replies.pop(0)
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]})

    clock = FakeClock()
    judge = _judge((URL,), handler=handler, clock=clock, read_timeout=60.0)
    try:
        assert judge.complete(BODY) == "ok"
    finally:
        judge.close()
    assert clock.sleeps == [waited] and judge.requests == 2


def test_a_429_never_waits_longer_than_a_requests_budget():
    clock = FakeClock()
    judge = _judge(
        (URL,),
        handler=lambda r: httpx.Response(429, headers={"Retry-After": "6"}),
        clock=clock,
        read_timeout=2.0,
        retries=1,
    )
    try:
        with pytest.raises(JudgeBackendError, match=r"after 2 attempts.*HTTP 429"):
            judge.complete(BODY)
    finally:
        judge.close()
    assert clock.sleeps == [2.0]


def test_a_redirect_is_named_as_such_and_not_retried():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(307, headers={"Location": "http://elsewhere:9000/v1/chat"})

    clock = FakeClock()
    judge = _judge((URL,), handler=handler, clock=clock)
    try:
        with pytest.raises(JudgeBackendError) as info:
            judge.complete(BODY)
    finally:
        judge.close()
    assert (
        "answered with a redirect (HTTP 307 to http://elsewhere:9000/v1/chat); "
        "point --phyjudge-url at the server itself"
    ) in str(info.value)
    assert not info.value.retryable and judge.requests == 1 and clock.sleeps == []
