"""``phyjudge serve``: an in-process judge behind a small OpenAI-compatible server, for one GPU.

Threat model: it reads chat requests from any client that can reach its port (with the API
key, when one is set). The worst a request holds: a field of another type or out of range
(``temperature: [1]``, ``max_tokens: 1e400``, a string for ``video_url``), JSON nested
without end, a key given twice, a clip that is not a video, a ``file://`` URL outside the
media root, on another host, or naming a pipe, a device, a folder or a symlink loop. Every
field is checked before the judge runs (``checked_request``), and a bad one is a 400 that
names the field and what it accepts; a 500 means a fault of the server's own. It writes
only uploaded clips, under its own temporary folder, removed after each request.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pytest_phyjudge._exceptions import PhyJudgeError
from pytest_phyjudge._files import not_a_file, resolve_path
from pytest_phyjudge.deploy.server_http import BadRequest, Exchange, handler_for
from pytest_phyjudge.engine.judgment import stand_in_notice
from pytest_phyjudge.engine.video import DEFAULT_FPS, DEFAULT_MAX_PIXELS
from pytest_phyjudge.judges.remote.contract import SERVED_MODEL_NAME

#: A hook called with each chat request (an ``Exchange``) before the judge answers it;
#: it returns True when it answered (or hung up) itself. A seam for tests, which inject
#: faults through it (``pytest_phyjudge.testing.faults``).
BeforeReply = Callable[["Exchange"], bool]
#: Seconds a client has to send one whole request: a real one (a few MB) takes a fraction
#: of that; a client dripping its headers or body is cut off at it.
REQUEST_READ_SECONDS = 120.0
_Server = TypeVar("_Server", bound="JudgeServer")
#: The most new tokens a request may ask for: a judge's reply is a few dozen.
MAX_TOKENS = 4096
#: The most alternatives per token a request may ask for: the client asks for 20 (vLLM's
#: default ceiling); tests ask for a small model's whole vocabulary. More would make a reply
#: of megabytes.
MAX_TOP_LOGPROBS = 4096
#: The most bytes of request bodies held at once, across requests: each may be 512 MiB and
#: every connection has its own thread, so without this a few clients could exhaust memory.
#: One body is always taken, however large (up to the per-request cap).
MAX_BODIES_BYTES = 1024 * 2**20
#: The roles of the messages the judge reads.
ROLES = ("system", "user", "assistant")


def _shown(value: Any) -> str:
    """A client's value as JSON, cut short, for a message."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):  # not from JSON; never expected
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wrong(field: str, accepts: str, value: Any) -> BadRequest:
    return BadRequest(f"the request field {field!r} must be {accepts}, not {_shown(value)}")


def _optional(body: dict[str, Any], field: str, kind: type | tuple[type, ...], accepts: str) -> Any:
    """``body[field]`` when it is of ``kind`` (bool is no number here), None when absent
    or null; BadRequest naming the field otherwise."""
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        raise _wrong(field, accepts, value)
    return value


def _whole(body: dict[str, Any], field: str, low: int, high: int) -> int | None:
    accepts = f"a whole number from {low} to {high}"
    value = _optional(body, field, int, accepts)
    if value is not None and not low <= value <= high:
        raise _wrong(field, accepts, value)
    return value


@dataclass(frozen=True)
class ChatRequest:
    """The fields of a chat request this server uses, checked (``checked_request``)."""

    messages: list[dict[str, Any]]
    max_tokens: int | None
    top_logprobs: int
    logprobs: bool
    continue_final_message: bool


def checked_request(body: Any, served_name: str) -> ChatRequest:
    """The fields of a chat request this server uses, each checked for its type and range
    before the judge runs: BadRequest naming the first field that is wrong and what it
    accepts. Fields it does not use (``chat_template_kwargs``, ``seed``, ...) are left alone,
    as vLLM's clients send them; ``stream: true`` and ``n`` > 1, which would change what a
    reply is, are refused."""
    if not isinstance(body, dict):
        raise BadRequest(f"the request body must be a JSON object, not {_shown(body)}")
    model = _optional(body, "model", str, "a string")
    if model is not None and model != served_name:
        raise _wrong("model", f"{served_name!r} (the model this server serves)", model)
    temperature = _optional(body, "temperature", (int, float), "the number 0")
    if temperature is not None and temperature != 0:
        raise _wrong("temperature", "0 (this server decodes greedily only)", temperature)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _wrong("messages", "a list of messages (objects with a role and content)", messages)
    for index, message in enumerate(messages):
        _check_message(message, f"messages[{index}]")
    # Asked for, these would change what a reply is: refused rather than silently ignored.
    if _optional(body, "stream", bool, "true or false"):
        raise _wrong("stream", "false (this server sends whole replies, never streams)", True)
    choices = _optional(body, "n", int, "1 (one reply per request)")
    if choices is not None and choices != 1:
        raise _wrong("n", "1 (one reply per request)", choices)
    flags = {
        name: bool(_optional(body, name, bool, "true or false"))
        for name in ("logprobs", "continue_final_message", "add_generation_prompt")
    }
    return ChatRequest(
        messages=messages,
        max_tokens=_whole(body, "max_tokens", 1, MAX_TOKENS),
        top_logprobs=_whole(body, "top_logprobs", 0, MAX_TOP_LOGPROBS) or 0,
        logprobs=flags["logprobs"],
        continue_final_message=flags["continue_final_message"],
    )


def _check_message(message: Any, where: str) -> None:
    """BadRequest naming the field of ``message`` (at ``where``) that is wrong."""
    if not isinstance(message, dict):
        raise _wrong(where, "an object with a 'role' and 'content'", message)
    if message.get("role") not in ROLES:
        raise _wrong(f"{where}.role", " or ".join(repr(r) for r in ROLES), message.get("role"))
    content = message.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _wrong(f"{where}.content", "a string or a list of parts", content)
    for index, part in enumerate(content):
        at = f"{where}.content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise _wrong(f"{at}.text", "a string", part.get("text"))
        elif kind == "video_url":
            video = part.get("video_url")
            if not isinstance(video, dict) or not isinstance(video.get("url"), str):
                raise _wrong(
                    f"{at}.video_url", 'an object {"url": "data:..." or "file://..."}', video
                )
        else:
            raise _wrong(at, 'a part of type "text" or "video_url"', part)


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
        read_timeout: float = REQUEST_READ_SECONDS,
    ) -> None:
        self.judge = judge
        #: Seconds a client has to send a whole request (and for any one socket read).
        self.read_timeout = read_timeout
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
        #: Bytes of request bodies being read or handled now, and the most allowed at once.
        self.body_bytes = 0
        self.max_body_bytes = MAX_BODIES_BYTES
        self._model_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._clips = tempfile.TemporaryDirectory(prefix="phyjudge-serve-")
        #: Uploaded clips on disk, with how many requests are using each now.
        self._uploads: dict[Path, int] = {}
        self._uploads_lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- the handler's statistics (deploy/server_http.py), under one lock ------------------

    def reserve_body(self, size: int) -> bool:
        """Count ``size`` bytes of a body about to be read; False (nothing counted) when
        they would take the bodies held at once past ``max_body_bytes``."""
        with self._stats_lock:
            if self.body_bytes and self.body_bytes + size > self.max_body_bytes:
                return False
            self.body_bytes += size
            return True

    def release_body(self, size: int) -> None:
        with self._stats_lock:
            self.body_bytes -= size

    def request_began(self) -> None:
        """A chat request was read whole and is being handled."""
        with self._stats_lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def request_ended(self) -> None:
        """A chat request's handling ended, answered or not."""
        with self._stats_lock:
            self.in_flight -= 1

    def add_handling_time(self, seconds: float) -> None:
        """Seconds spent answering one request (for the client-overhead benchmark)."""
        with self._stats_lock:
            self.handling_seconds += seconds

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
        notice = stand_in_notice(identity.kind)
        if notice is not None:  # its replies look like the real judge's: the card says so
            entry["stand_in"] = notice
        return {"object": "list", "data": [entry]}

    def chat_completion(self, body: Any) -> dict[str, Any]:
        """The reply to the chat request ``body`` (parsed JSON); BadRequest for a request
        this server does not take, naming the field."""
        request = checked_request(body, self.served_name)
        uploads: list[Path] = []
        try:
            return self._chat_completion(request, uploads)
        finally:
            self._release(uploads)

    def _chat_completion(self, request: ChatRequest, uploads: list[Path]) -> dict[str, Any]:
        messages = [self._message(m, uploads) for m in request.messages]
        prefix = ""
        if request.continue_final_message:
            # vLLM's extension: the last (assistant) message is the start of the reply.
            if not messages or messages[-1]["role"] != "assistant":
                raise BadRequest("continue_final_message needs a final assistant message")
            last = messages.pop()
            prefix = "".join(p.get("text", "") for p in last["content"])
        top = request.top_logprobs if request.logprobs else 0
        options: dict[str, Any] = {"prefix": prefix, "top_logprobs": top} if prefix or top else {}
        max_tokens = request.max_tokens or self.judge.settings.get("max_new_tokens", 64)
        with self._model_lock if self.serial else contextlib.nullcontext():
            try:
                completion = self.judge.complete(
                    messages, max_new_tokens=int(max_tokens), **options
                )
            except PhyJudgeError as exc:
                raise BadRequest(str(exc)) from exc
        logprobs = None
        if completion.top_logprobs is not None:
            first = {"token": completion.text, "logprob": completion.top_logprobs[0][1]}
            first["top_logprobs"] = [
                {"token": token, "logprob": value} for token, value in completion.top_logprobs
            ]
            logprobs = {"content": [first]}
        notice = stand_in_notice(self.judge.identity.kind)
        return {
            **({} if notice is None else {"stand_in": notice}),
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
            raise BadRequest("every message needs a 'role' and 'content'")
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise BadRequest("message content must be a string or a list of parts")
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
                raise BadRequest(f"unsupported content part {kind!r}; send text and video_url")
        return {"role": message["role"], "content": parts}

    def _video_file(self, url: str, uploads: list[Path]) -> Path:
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            if ";base64" not in header:
                raise BadRequest("a video data URL must be base64-encoded")
            try:
                clip = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BadRequest(f"the video data URL is not valid base64: {exc}") from exc
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
            return self._media_file(url)
        raise BadRequest("the video must be a data: URL or a file:// URL")

    def _media_file(self, url: str) -> Path:
        """The clip a ``file://`` URL names: a regular file under the media root (links
        followed), on this machine; anything else is refused before the judge opens it (a
        pipe would block the model's lock, a device never ends)."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise BadRequest(
                f"the file:// URL names the host {parts.netloc!r}: this server reads only "
                "its own files (file:///path/under/the/media/root)"
            )
        text = unquote(parts.path)
        if "\x00" in text:
            raise BadRequest("the file:// URL holds a NUL byte (%00), which no path may")
        path = resolve_path(Path(text))
        if self.media_root is None or not path.is_relative_to(self.media_root):
            raise BadRequest(
                f"{path} is outside the media root this server may read "
                f"({self.media_root}); start it with --media-root"
            )
        kind = not_a_file(path)
        if kind is not None or not path.exists():
            raise BadRequest(f"{path} is {kind or 'missing'}, not a clip: name a video file")
        return path

    def _release(self, uploads: list[Path]) -> None:
        """Delete the clips a request uploaded, unless another request is using them."""
        with self._uploads_lock:
            for path in uploads:
                self._uploads[path] -= 1
                if self._uploads[path] == 0:
                    del self._uploads[path]
                    path.unlink(missing_ok=True)
