"""The HTTP side of ``phyjudge serve``: one request read safely (key first, a bounded body),
then handed to the JudgeServer; and the seam through which tests inject faults."""

from __future__ import annotations

import contextlib
import hmac
import json
import re
import socket
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from pytest_phyjudge._files import FileProblem, parse_json

if TYPE_CHECKING:
    from pytest_phyjudge.deploy.server import JudgeServer

#: The largest request body the server reads: a sampled clip is a few MB, base64 adds a
#: third, so this leaves room for any real request and refuses one meant to exhaust memory.
MAX_BODY_BYTES = 512 * 2**20
#: Content-Length is one or more ASCII digits (RFC 9110); int() would also take "+5", "5_0".
_DIGITS = re.compile(r"[0-9]+")


class BadRequest(Exception):
    """A request the server refuses with 400; its message is the reply's."""


class Exchange:
    """One chat request as a ``before_reply`` hook sees it: its body, and ways to answer
    it other than with the judge's reply (an error, any bytes, or none at all)."""

    def __init__(self, handler: _Handler, payload: bytes) -> None:
        self._handler = handler
        self.payload = payload

    def reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send ``body`` as the reply, whatever it holds, with ``headers`` besides."""
        self._handler.send(status, body, content_type, headers=headers)

    def judge_reply(self) -> dict[str, Any]:
        """The reply the judge would send to this request (for a hook to alter it)."""
        return self._handler.judge_server.chat_completion(_request_json(self.payload))

    def error(self, status: int, message: str) -> None:
        """Reply ``status`` with an OpenAI-style error body."""
        self._handler.send_error_json(status, message)

    def hang_up(self) -> None:
        """Close the connection without a reply."""
        self._handler.close_connection = True
        with contextlib.suppress(OSError):
            self._handler.connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """The HTTP side of a JudgeServer; ``_handler_for`` binds it to one server."""

    judge_server: JudgeServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and
    # the client's delayed ACK add about 40 ms to every reply.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        return None

    def setup(self) -> None:
        # Each socket read waits this long at most: a silent client is dropped.
        self.timeout = self.judge_server.read_timeout
        super().setup()

    def handle_one_request(self) -> None:
        # The socket timeout bounds each read; this bounds reading the whole request, so
        # a client that drips its request line, headers or body a byte at a time cannot
        # hold a thread longer. The watchdog is stopped once the request has been read.
        self._cut_off = False
        self._watchdog = threading.Timer(self.judge_server.read_timeout, self._cut)
        self._watchdog.daemon = True
        self._watchdog.start()
        try:
            super().handle_one_request()
        except OSError:
            if not self._cut_off:
                raise
        finally:
            self._watchdog.cancel()

    def _cut(self) -> None:
        """The request took too long to arrive: close its connection, with no reply."""
        self._cut_off = True
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _request_read(self) -> bool:
        """Stop the watchdog: True when the request arrived in time, and can be answered."""
        self._watchdog.cancel()
        return not self._cut_off

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        *,
        close: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:  # the request's body was not read: the connection cannot carry another
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up: nothing to tell it
            self.wfile.write(body)

    def send_json(self, status: int, data: Any, *, close: bool = False) -> None:
        self.send(status, json.dumps(data).encode("utf-8"), close=close)

    def send_error_json(self, status: int, message: str, *, close: bool = False) -> None:
        error = {"error": {"message": message, "type": "invalid_request_error"}}
        self.send_json(status, error, close=close)

    def _authorized(self) -> bool:
        api_key = self.judge_server.api_key
        if api_key is None:
            return True
        # Compared in constant time, as bytes: the time taken says nothing of the key.
        # http.server decoded the header as latin-1, so encoding it back gives its bytes.
        sent = (self.headers.get("Authorization") or "").encode("latin-1", errors="replace")
        if hmac.compare_digest(sent, f"Bearer {api_key}".encode()):
            return True
        # Refused before any body is read, so the connection is closed after the reply.
        self.send_error_json(
            401,
            "missing or wrong API key: send the header 'Authorization: Bearer <key>' with "
            "the key this server was started with (--api-key)",
            close=True,
        )
        return False

    def _content_length(self) -> int | None:
        """The request's body size, checked before a byte of it is read; None when the
        request was refused (and the connection is to be closed)."""
        values = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding") is not None or not values:
            self.send_error_json(
                411,
                "this server needs a Content-Length header on POST requests (chunked bodies "
                "are not supported): send the JSON body with its length in bytes",
                close=True,
            )
            return None
        text = values[0].strip()
        if len(values) > 1 or not _DIGITS.fullmatch(text):
            shown = ", ".join(repr(v) for v in values)
            self.send_error_json(
                400,
                f"the Content-Length header ({shown}) must be given once, as the body's "
                "length in bytes: a non-negative whole number",
                close=True,
            )
            return None
        length = int(text)
        if length > MAX_BODY_BYTES:
            self.send_error_json(
                413,
                f"the request body ({length} bytes, from its Content-Length) is larger than "
                f"this server reads ({MAX_BODY_BYTES // 2**20} MiB); send the clip sampled "
                "(a few MB), or by file:// URL under the server's --media-root",
                close=True,
            )
            return None
        return length

    def do_GET(self) -> None:
        if not self._request_read() or not self._authorized():
            return
        # A GET's body is never read: left on the connection, it would be taken for the
        # next request (one smuggled past whatever checked this one), so the connection ends.
        length = (self.headers.get("Content-Length") or "0").strip()
        close = self.headers.get("Transfer-Encoding") is not None or length != "0"
        if self.path.rstrip("/") == "/v1/models":
            self.send_json(200, self.judge_server.models(), close=close)
        elif self.path == "/health":
            self.send(200, b"", "text/plain", close=close)
        else:
            self.send_error_json(404, f"no route {self.path}", close=close)

    def do_POST(self) -> None:
        # Everything that can refuse a request does so before its body is read: a client
        # without the key, or announcing a huge body, costs nothing.
        if self._cut_off or not self._authorized():
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.send_error_json(404, f"no route {self.path}", close=True)
            return
        length = self._content_length()
        if length is None:
            return
        server = self.judge_server
        if not server.reserve_body(length):
            message = (
                f"the server holds {server.body_bytes} bytes of other requests' bodies; this "
                f"one's {length} would take it past {server.max_body_bytes}: retry shortly"
            )
            error = {"error": {"message": message, "type": "server_busy"}}
            body = json.dumps(error).encode("utf-8")
            self.send(429, body, headers={"Retry-After": "1"}, close=True)
            return
        try:
            payload = self.rfile.read(length)
            if not self._request_read() or len(payload) < length:
                # Cut off, or the client hung up mid-body: nobody to answer.
                self.close_connection = True
                return
            server.request_began()
            try:
                self._chat(payload)
            finally:
                server.request_ended()
        finally:
            server.release_body(length)

    def _chat(self, payload: bytes) -> None:
        server = self.judge_server
        if server.before_reply is not None and server.before_reply(Exchange(self, payload)):
            return
        started = time.perf_counter()
        try:
            body = _request_json(payload)
            reply = server.chat_completion(body)
        except BadRequest as exc:
            self.send_error_json(400, str(exc))
            return
        except Exception as exc:  # a bug in the judge: the client sees a 500, not a hang-up
            self.send_error_json(500, f"the judge failed: {type(exc).__name__}: {exc}")
            return
        self.send_json(200, reply)
        server.add_handling_time(time.perf_counter() - started)


def _request_json(payload: bytes) -> Any:
    """The JSON of a request body; BadRequest, in one sentence, when it is not JSON text."""
    try:
        # A key given twice is refused: a proxy checking the first and the judge reading
        # the last would disagree about what was asked.
        return parse_json(payload.decode("utf-8"), unique_keys=True)
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"the request body is not UTF-8 text ({exc.reason} at byte {exc.start}); send JSON"
        ) from None
    except FileProblem as problem:
        raise BadRequest(f"the request body {problem.reason}") from None


def handler_for(server: JudgeServer) -> type[_Handler]:
    return type("Handler", (_Handler,), {"judge_server": server})
