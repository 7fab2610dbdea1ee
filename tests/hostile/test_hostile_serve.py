"""``phyjudge serve`` under hostile requests (issue 11, class 5): a body the API key never
allowed, a Content-Length too large, missing, negative, not a number or given twice, and
uploaded clips left behind. Raw sockets send what no HTTP client would; every read has a
timeout, so a server that hangs fails the test instead of stalling it."""

from __future__ import annotations

import base64
import json
import select
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge.deploy.server import JudgeServer
from pytest_phyjudge.testing import write_test_video

#: Generous: the server answers at once; a hang is what this bounds.
SOCKET_TIMEOUT = 10.0
KEY = "s3cret"


@pytest.fixture
def server() -> Iterator[JudgeServer]:
    with JudgeServer(ScriptedJudge({"*": 4}, name="scripted-hostile"), serial=False) as srv:
        yield srv


@pytest.fixture
def keyed_server() -> Iterator[JudgeServer]:
    judge = ScriptedJudge({"*": 4}, name="scripted-hostile")
    with JudgeServer(judge, serial=False, api_key=KEY) as srv:
        yield srv


def _raw_request(server: JudgeServer, head: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Send ``head`` (request line and headers, no blank line) and ``body`` on a fresh
    socket; return the status, the headers and the body of the reply."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n\r\n" + body)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)  # socket.timeout here: the server hung
            assert chunk, f"the server closed the connection without a reply: {received!r}"
            received += chunk
        raw_head, _, rest = received.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection in the middle of its reply"
            rest += chunk
    return status, headers, rest


def _error_message(body: bytes) -> str:
    return json.loads(body)["error"]["message"]


def test_a_wrong_api_key_is_refused_before_the_body_is_read(keyed_server):
    # The body announced is never sent: a server that reads it first would wait forever.
    status, headers, body = _raw_request(
        keyed_server,
        "POST /v1/chat/completions HTTP/1.1\nHost: x\nAuthorization: Bearer wrong\n"
        "Content-Type: application/json\nContent-Length: 100000",
    )
    assert status == 401
    assert "API key" in _error_message(body)
    assert headers.get("connection") == "close"


def test_a_missing_api_key_is_refused_before_the_body_is_read(keyed_server):
    status, _, body = _raw_request(
        keyed_server, "POST /v1/chat/completions HTTP/1.1\nHost: x\nContent-Length: 5000"
    )
    assert status == 401
    assert "API key" in _error_message(body)


def test_a_body_too_large_is_refused_with_413_before_it_is_read(keyed_server):
    status, headers, body = _raw_request(
        keyed_server,
        f"POST /v1/chat/completions HTTP/1.1\nHost: x\nAuthorization: Bearer {KEY}\n"
        f"Content-Length: {10**12}",
    )
    assert status == 413
    message = _error_message(body)
    assert "Content-Length" in message and "MiB" in message
    assert headers.get("connection") == "close"


def test_a_post_without_content_length_gets_411(server):
    status, _, body = _raw_request(server, "POST /v1/chat/completions HTTP/1.1\nHost: x")
    assert status == 411
    assert "Content-Length" in _error_message(body)


def test_a_chunked_post_gets_411(server):
    status, _, body = _raw_request(
        server,
        "POST /v1/chat/completions HTTP/1.1\nHost: x\nTransfer-Encoding: chunked",
        b"2\r\n{}\r\n0\r\n\r\n",
    )
    assert status == 411
    assert "Content-Length" in _error_message(body)


@pytest.mark.parametrize(
    "headers",
    [
        "Content-Length: -1",
        "Content-Length: abc",
        "Content-Length: 2, 2",
        "Content-Length: 2\nContent-Length: 2",
        "Content-Length: 2\nContent-Length: 3",
        "Content-Length: +2",
    ],
    ids=["negative", "not-a-number", "list", "twice-same", "twice-different", "signed"],
)
def test_a_bad_content_length_gets_a_clear_400(server, headers):
    status, _, body = _raw_request(
        server, f"POST /v1/chat/completions HTTP/1.1\nHost: x\n{headers}", b"{}"
    )
    assert status == 400
    message = _error_message(body)
    assert "Content-Length" in message


# --------------------------------------------------------------------------- slow clients


@pytest.mark.parametrize(
    ("head", "dripped"),
    [
        ("", b"POST /v1/chat/completions HTTP/1.1\r\nX-Slow: " + b"a" * 200),
        ("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 500\r\n\r\n", b"{" * 200),
    ],
    ids=["request-line-and-headers", "body"],
)
def test_a_client_dripping_its_request_is_cut_off_and_others_are_served(head, dripped):
    """Each byte comes well within the per-read timeout, so only the deadline on the
    whole request frees the thread; meanwhile the server answers everyone else."""
    judge = ScriptedJudge({"*": 4}, name="scripted-hostile")
    with JudgeServer(judge, serial=False, read_timeout=1.5) as srv:
        host, port = srv.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT) as sock:
            sock.sendall(head.encode("latin-1"))
            started = time.monotonic()
            closed = False
            for byte in dripped:
                try:
                    sock.sendall(bytes([byte]))
                    if select.select([sock], [], [], 0)[0]:  # a reply, or the close
                        closed = sock.recv(1) == b""
                except OSError:  # reset: the server closed it
                    closed = True
                if closed:
                    break
                assert _raw_request(srv, "GET /health HTTP/1.1\nHost: x")[0] == 200
                time.sleep(0.1)
            elapsed = time.monotonic() - started
        assert closed, "the server was still reading the dripped request"
        assert 1.0 < elapsed < 10
        assert srv.requests == 0


# --------------------------------------------------------------------------- uploads


def _data_url(path: Path) -> str:
    return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _post_json(server: JudgeServer, data: object) -> tuple[int, bytes]:
    payload = json.dumps(data).encode()
    status, _, body = _raw_request(
        server,
        "POST /v1/chat/completions HTTP/1.1\nHost: x\nContent-Type: application/json\n"
        f"Content-Length: {len(payload)}",
        payload,
    )
    return status, body


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


class _BrokenJudge(ScriptedJudge):
    """A scripted judge with a bug: every completion raises."""

    def complete(self, messages, *, max_new_tokens=None):
        raise RuntimeError("the scripted judge broke")


@pytest.mark.parametrize(
    ("judge", "text", "second_video", "expected"),
    [
        (ScriptedJudge({"*": 4}, name="s"), 'Answer {"gravity": <1-5>}', False, 200),
        (ScriptedJudge({"*": 4}, name="s"), "no answer key: the judge refuses", False, 400),
        (_BrokenJudge({"*": 4}, name="s"), 'Answer {"gravity": <1-5>}', False, 500),
        (ScriptedJudge({"*": 4}, name="s"), 'Answer {"gravity": <1-5>}', True, 400),
    ],
    ids=["judged", "judge-refuses", "judge-crashes", "bad-second-message"],
)
def test_uploaded_clips_are_removed_after_each_request(
    tmp_path, monkeypatch, judge, text, second_video, expected
):
    clip = write_test_video(tmp_path / "clip.mp4", frames=4, fps=2)
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    # The server's uploads go under the process's temporary folder: point it here.
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "video_url", "video_url": {"url": _data_url(clip)}},
                {"type": "text", "text": text},
            ],
        }
    ]
    if second_video:  # the first clip is written, then the second message is refused
        messages.append({"role": "user", "content": [{"type": "video_url", "video_url": {}}]})
    with JudgeServer(judge, serial=False) as srv:
        for _ in range(2):  # the same clip twice: neither request leaves it behind
            status, body = _post_json(srv, {"model": "phyjudge", "messages": messages})
            assert status == expected, body
            assert _files_under(temp_root) == []
