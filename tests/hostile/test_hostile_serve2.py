"""``phyjudge serve`` under hostile chat requests not covered by test_hostile_serve.py:
``file://`` URLs that name something other than a clip under the media root (a pipe that
would block the model's lock, a folder, a loop of links, a NUL byte, another host, a
missing file), and JSON that gives a key twice. Each is a 400 naming what is wrong, before
the judge opens anything; a 500 would blame the server for the client's request."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge.deploy.server import JudgeServer
from pytest_phyjudge.testing import write_test_video

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("serve2")
    root = tmp_path / "media"
    root.mkdir()
    write_test_video(root / "clip.mp4", frames=4, fps=2)
    (root / "folder.mp4").mkdir()
    (root / "loop.mp4").symlink_to(root / "loop.mp4")
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.mp4")
    (tmp_path / "secret.txt").write_text("PRIVATE")
    (root / "out.mp4").symlink_to(tmp_path / "secret.txt")
    return root


@pytest.fixture(scope="module")  # one server: stopping one takes half a second
def server(media: Path) -> Iterator[JudgeServer]:
    with JudgeServer(ScriptedJudge({"*": 4}, name="s"), serial=True, media_root=media) as srv:
        yield srv


def _post(server: JudgeServer, payload: bytes) -> tuple[int, str]:
    request = urllib.request.Request(
        server.url + "/v1/chat/completions",
        data=payload,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["error"]["message"]


def _ask(url: str) -> bytes:
    content = [
        {"type": "video_url", "video_url": {"url": url}},
        {"type": "text", "text": 'Answer {"gravity": <1-5>}'},
    ]
    body = {"model": "phyjudge", "messages": [{"role": "user", "content": content}]}
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("folder.mp4", "is a folder"),
        ("loop.mp4", "loop of symbolic links"),
        ("pipe.mp4", "is a pipe"),
        ("missing.mp4", "missing"),
        ("a%00b.mp4", "NUL"),
        ("out.mp4", "outside the media root"),
        ("../secret.txt", "outside the media root"),
    ],
)
def test_a_file_url_that_names_no_clip_under_the_root_is_a_400(server, media, name, said):
    if name == "pipe.mp4" and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    status, message = _post(server, _ask(f"file://{media}/{name}"))
    assert status == 400, message
    assert said in message and "PRIVATE" not in message


def test_a_file_url_naming_another_host_is_a_400(server, media):
    status, message = _post(server, _ask(f"file://evil.example{media}/clip.mp4"))
    assert (status, "evil.example" in message) == (400, True), message


def test_a_clip_under_the_root_is_still_judged(server, media):
    for url in (f"file://{media}/clip.mp4", f"file://localhost{media}/clip.mp4"):
        status, body = _post(server, _ask(url))
        assert status == 200, body


@pytest.mark.parametrize("first", ["other", "phyjudge"])
def test_a_key_given_twice_is_a_400_whichever_comes_first(server, first):
    """A proxy reading the first ``model`` and the server the last would disagree."""
    second = "phyjudge" if first == "other" else "other"
    payload = (
        f'{{"model": "{first}", "model": "{second}", '
        '"messages": [{"role": "user", "content": "hi"}]}'
    ).encode()
    status, message = _post(server, payload)
    assert status == 400 and "'model' twice" in message, message


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"stream": True}, "stream"),
        ({"n": 5}, "n"),
        ({"n": True}, "n"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_a_reply_shape_the_server_cannot_give_is_a_400_not_ignored(server, extra, field):
    """A client asking to stream, or for five replies, would get one whole reply instead."""
    body = {"model": "phyjudge", "messages": [{"role": "user", "content": "hi"}], **extra}
    status, message = _post(server, json.dumps(body).encode())
    assert status == 400 and f"'{field}'" in message, message


@pytest.mark.parametrize("framing", ["Content-Length: {n}", "Transfer-Encoding: chunked"])
def test_a_get_s_body_is_never_answered_as_a_second_request(server, framing):
    """The body of a GET is not read; answered as the next request on the connection, it
    would be one smuggled past whatever checked the GET (a proxy's rules)."""
    inner = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    head = f"GET /v1/models HTTP/1.1\r\nHost: x\r\n{framing.format(n=len(inner))}\r\n\r\n"
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(head.encode() + inner)
        received = b""
        while chunk := sock.recv(65536):  # the server closes: recv returns b""
            received += chunk
    assert received.count(b"HTTP/1.1 ") == 1, received[:300]
    assert received.startswith(b"HTTP/1.1 200")


def test_bodies_held_at_once_are_capped_across_connections(media):
    """Each body may be large, and each connection has its own thread: a client holding
    one body half-sent makes a second that would pass the cap wait (429, Retry-After),
    and once the first is done the second is taken."""
    judge = ScriptedJudge({"*": 4}, name="s")
    with JudgeServer(judge, serial=False, media_root=media, read_timeout=5) as srv:
        srv.max_body_bytes = 1000
        host, port = srv.url.removeprefix("http://").split(":")
        head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n"
        held = b"{" + b" " * 798 + b"}"
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as first:
            first.sendall(head.format(len(held)).encode() + held[:10])
            for _ in range(250):  # until the server has begun reading it
                if srv.body_bytes:
                    break
                time.sleep(0.02)
            payload = _ask(f"file://{media}/clip.mp4")
            status, message = _post(srv, payload)
            assert status == 429, message
            first.sendall(held[10:])
            assert first.recv(12).startswith(b"HTTP/1.1 400")
        assert _post(srv, payload)[0] == 200
        assert srv.body_bytes == 0
