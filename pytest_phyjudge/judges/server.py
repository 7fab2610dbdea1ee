"""``phyjudge serve``: an in-process judge behind a small OpenAI-compatible server, for one GPU."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pytest_phyjudge._exceptions import PhyJudgeError
from pytest_phyjudge.engine.video import DEFAULT_FPS, DEFAULT_MAX_PIXELS
from pytest_phyjudge.judges.vllm import SERVED_MODEL_NAME

#: A hook called with each chat request (an ``Exchange``) before the judge answers it;
#: it returns True when it answered (or hung up) itself. A seam for tests, which inject
#: faults through it (``pytest_phyjudge.testing.faults``).
BeforeReply = Callable[["Exchange"], bool]
_Server = TypeVar("_Server", bound="JudgeServer")

#: The largest request body the server reads: a sampled clip is a few MB, base64 adds a
#: third, so this leaves room for any real request and refuses one meant to exhaust memory.
MAX_BODY_BYTES = 512 * 2**20
#: Content-Length is one or more ASCII digits (RFC 9110); int() would also take "+5", "5_0".
_DIGITS = re.compile(r"[0-9]+")


class _BadRequest(Exception):
    pass


class JudgeServer:
    """An in-process judge behind ``/v1/chat/completions`` on ``host:port`` (0: any free
    port), in a background thread. Use as a context manager, or ``start()``/``stop()``.

    It answers ``GET /v1/models`` (with the judge's provenance) and chat requests for one
    video and greedy decoding: what the remote backend sends. It runs one request at a
    time on its model: it is for one GPU shared by many pytest-xdist workers, and for
    tests (``before_reply`` is their seam). For throughput, serve the merged checkpoint
    with vLLM (``judges.vllm``).
    """

    def __init__(
        self,
        judge: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        served_name: str = SERVED_MODEL_NAME,
        media_root: str | Path | None = None,
        before_reply: BeforeReply | None = None,
        serial: bool = True,
        api_key: str | None = None,
    ) -> None:
        self.judge = judge
        #: One request at a time on the model (a LocalJudge is not thread-safe); a scripted
        #: judge may answer in parallel, like a batching server.
        self.serial = serial
        #: When set, requests must carry ``Authorization: Bearer <api_key>`` (as vLLM's).
        self.api_key = api_key
        #: Seconds spent handling requests once read (for the client-overhead benchmark).
        self.handling_seconds = 0.0
        #: Chat requests being handled now, and the most at any one time.
        self.in_flight = 0
        self.max_in_flight = 0
        self.served_name = served_name
        self.media_root = None if media_root is None else Path(media_root).resolve()
        #: Called with each chat request before the judge sees it; True: it answered.
        self.before_reply = before_reply
        self.requests = 0
        self._model_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._clips = tempfile.TemporaryDirectory(prefix="phyjudge-serve-")
        #: Uploaded clips on disk, with how many requests are using each now.
        self._uploads: dict[Path, int] = {}
        self._uploads_lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self: _Server) -> _Server:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="phyjudge-serve", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._clips.cleanup()

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the handler calls ------------------------------------------------------------

    def models(self) -> dict[str, Any]:
        identity = self.judge.identity
        adapter = getattr(self.judge, "adapter", None)
        provenance = {
            **identity.to_dict(),
            "rubric_dir": None if adapter is None else str(adapter.folder),
        }
        entry = {
            "id": self.served_name,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "pytest-phyjudge",
            "phyjudge": provenance,
        }
        return {"object": "list", "data": [entry]}

    def chat_completion(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise _BadRequest("the body must be a JSON object with a 'messages' list")
        if body.get("model", self.served_name) != self.served_name:
            raise _BadRequest(f"this server serves {self.served_name!r}, not {body['model']!r}")
        if float(body.get("temperature", 0) or 0) != 0:
            raise _BadRequest("this server decodes greedily only: send temperature 0")
        uploads: list[Path] = []
        try:
            return self._chat_completion(body, uploads)
        finally:
            self._release(uploads)

    def _chat_completion(self, body: dict[str, Any], uploads: list[Path]) -> dict[str, Any]:
        messages = [self._message(m, uploads) for m in body["messages"]]
        prefix = ""
        if body.get("continue_final_message"):
            # vLLM's extension: the last (assistant) message is the start of the reply.
            if not messages or messages[-1]["role"] != "assistant":
                raise _BadRequest("continue_final_message needs a final assistant message")
            last = messages.pop()
            prefix = "".join(p.get("text", "") for p in last["content"])
        top = int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
        options: dict[str, Any] = {"prefix": prefix, "top_logprobs": top} if prefix or top else {}
        max_tokens = body.get("max_tokens") or self.judge.settings.get("max_new_tokens", 64)
        with self._model_lock if self.serial else contextlib.nullcontext():
            try:
                completion = self.judge.complete(
                    messages, max_new_tokens=int(max_tokens), **options
                )
            except PhyJudgeError as exc:
                raise _BadRequest(str(exc)) from exc
        logprobs = None
        if completion.top_logprobs is not None:
            first = {"token": completion.text, "logprob": completion.top_logprobs[0][1]}
            first["top_logprobs"] = [
                {"token": token, "logprob": value} for token, value in completion.top_logprobs
            ]
            logprobs = {"content": [first]}
        return {
            "id": f"chatcmpl-{self.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.served_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": completion.text},
                    "logprobs": logprobs,
                    "finish_reason": completion.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "total_tokens": completion.prompt_tokens + completion.completion_tokens,
            },
        }

    def _message(self, message: Any, uploads: list[Path]) -> dict[str, Any]:
        if not isinstance(message, dict) or "role" not in message:
            raise _BadRequest("every message needs a 'role' and 'content'")
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise _BadRequest("message content must be a string or a list of parts")
        parts = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            elif kind == "video_url":
                url = (part.get("video_url") or {}).get("url", "")
                parts.append(
                    {
                        "type": "video",
                        "video": str(self._video_file(url, uploads)),
                        "fps": self.judge.settings.get("fps", DEFAULT_FPS),
                        "max_pixels": self.judge.settings.get("max_pixels", DEFAULT_MAX_PIXELS),
                    }
                )
            else:
                raise _BadRequest(f"unsupported content part {kind!r}; send text and video_url")
        return {"role": message["role"], "content": parts}

    def _video_file(self, url: str, uploads: list[Path]) -> Path:
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            if ";base64" not in header:
                raise _BadRequest("a video data URL must be base64-encoded")
            try:
                clip = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise _BadRequest(f"the video data URL is not valid base64: {exc}") from exc
            path = Path(self._clips.name, hashlib.sha256(clip).hexdigest() + ".mp4")
            with self._uploads_lock:
                # Named by content, so concurrent requests for one clip share the file; it
                # is removed when the last of them is done (``_release``).
                if path not in self._uploads:
                    path.write_bytes(clip)
                    # A fixed mtime: the decode caches key on (path, size, mtime), and the
                    # name already fixes the content, so a clip uploaded again is not
                    # decoded again.
                    os.utime(path, ns=(0, 0))
                    self._uploads[path] = 0
                self._uploads[path] += 1
                uploads.append(path)
            return path
        if url.startswith("file://"):
            path = Path(unquote(urlsplit(url).path)).resolve()
            if self.media_root is None or not path.is_relative_to(self.media_root):
                raise _BadRequest(
                    f"{path} is outside the media root this server may read "
                    f"({self.media_root}); start it with --media-root"
                )
            return path
        raise _BadRequest("the video must be a data: URL or a file:// URL")

    def _release(self, uploads: list[Path]) -> None:
        """Delete the clips a request uploaded, unless another request is using them."""
        with self._uploads_lock:
            for path in uploads:
                self._uploads[path] -= 1
                if self._uploads[path] == 0:
                    del self._uploads[path]
                    path.unlink(missing_ok=True)


class Exchange:
    """One chat request as a ``before_reply`` hook sees it: its body, and ways to answer
    it other than with the judge's reply (an error, any bytes, or none at all)."""

    def __init__(self, handler: _Handler, payload: bytes) -> None:
        self._handler = handler
        self.payload = payload

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """Send ``body`` as the reply, whatever it holds."""
        self._handler.send(status, body, content_type)

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

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        *,
        close: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
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
        if api_key is None or self.headers.get("Authorization") == f"Bearer {api_key}":
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
        if not self._authorized():
            return
        if self.path.rstrip("/") == "/v1/models":
            self.send_json(200, self.judge_server.models())
        elif self.path == "/health":
            self.send(200, b"", "text/plain")
        else:
            self.send_error_json(404, f"no route {self.path}")

    def do_POST(self) -> None:
        # Everything that can refuse a request does so before its body is read: a client
        # without the key, or announcing a huge body, costs nothing.
        if not self._authorized():
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.send_error_json(404, f"no route {self.path}", close=True)
            return
        length = self._content_length()
        if length is None:
            return
        payload = self.rfile.read(length)
        if len(payload) < length:  # the client hung up mid-body: nobody to answer
            self.close_connection = True
            return
        server = self.judge_server
        with server._stats_lock:
            server.requests += 1
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            self._chat(payload)
        finally:
            with server._stats_lock:
                server.in_flight -= 1

    def _chat(self, payload: bytes) -> None:
        server = self.judge_server
        if server.before_reply is not None and server.before_reply(Exchange(self, payload)):
            return
        started = time.perf_counter()
        try:
            reply = server.chat_completion(json.loads(payload or b"null"))
        except (ValueError, _BadRequest) as exc:
            self.send_error_json(400, str(exc))
            return
        except Exception as exc:  # a bug in the judge: the client sees a 500, not a hang-up
            self.send_error_json(500, f"the judge failed: {type(exc).__name__}: {exc}")
            return
        self.send_json(200, reply)
        with server._stats_lock:
            server.handling_seconds += time.perf_counter() - started


def _handler_for(server: JudgeServer) -> type[_Handler]:
    return type("Handler", (_Handler,), {"judge_server": server})
