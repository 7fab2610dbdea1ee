"""Serving the judge: the ``vllm serve`` lines for a merged checkpoint, and a small
OpenAI-compatible server that runs an in-process judge (``phyjudge serve``).

The small server answers ``GET /v1/models`` (with the judge's provenance) and
``POST /v1/chat/completions`` for one video and greedy decoding: what the remote backend
sends. It runs one request at a time on its model; it is for one GPU shared by many
pytest-xdist workers, and for tests, where it can inject faults (:class:`Faults`). For
throughput, serve the merged checkpoint with vLLM.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import shlex
import socket
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pytest_phyjudge._exceptions import InputError, PhyJudgeError
from pytest_phyjudge.engine.video import DEFAULT_FPS, DEFAULT_MAX_PIXELS
from pytest_phyjudge.judges.remote import API_KEY_ENV, SERVED_MODEL_NAME

DEFAULT_PORT = 8000
#: Enough for about a minute of video at 2 fps and 360x640, the prompt and the reply.
DEFAULT_MAX_MODEL_LEN = 32768
FAULT_KINDS = ("error", "delay", "malformed", "drop")


# --------------------------------------------------------------------------- vllm serve


def vllm_serve_commands(
    model: str | Path,
    *,
    replicas: int = 1,
    tensor_parallel: int = 1,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    max_model_len: int = DEFAULT_MAX_MODEL_LEN,
    media_root: str | Path | None = None,
) -> list[str]:
    """One ``vllm serve`` line per replica for the merged checkpoint in ``model``.

    Replica ``i`` listens on ``port + i`` and owns GPUs ``i*tp .. i*tp + tp - 1``. Each
    accepts one video per prompt (no images), keeps every frame of the clip it is sent
    (the client already sampled it), and, with ``media_root``, may read videos from there.
    """
    from pytest_phyjudge.engine.merge import PROVENANCE_FILE

    folder = Path(model)
    if (folder / "adapter_config.json").is_file():
        raise InputError(
            f"{str(folder)!r} is a LoRA adapter; vLLM cannot serve it on Qwen3.5's packed "
            "projections. Merge it first: phyjudge merge --adapter-dir "
            f"{shlex.quote(str(folder))} --out merged/, then serve merged/."
        )
    if not (folder / "config.json").is_file():
        raise InputError(
            f"{str(folder)!r} holds no config.json: give the folder that 'phyjudge merge' "
            "wrote (the merged checkpoint)."
        )
    if not (folder / PROVENANCE_FILE).is_file():
        raise InputError(
            f"{str(folder)!r} has no {PROVENANCE_FILE}, so clients could not tell which judge "
            "it is; serve a checkpoint written by 'phyjudge merge'."
        )
    if replicas < 1 or tensor_parallel < 1:
        raise InputError("--replicas and --tensor-parallel must be at least 1.")
    lines = []
    for i in range(replicas):
        gpus = ",".join(str(g) for g in range(i * tensor_parallel, (i + 1) * tensor_parallel))
        argv = [
            "vllm",
            "serve",
            str(folder.resolve()),
            "--served-model-name",
            SERVED_MODEL_NAME,
            "--host",
            host,
            "--port",
            str(port + i),
            "--tensor-parallel-size",
            str(tensor_parallel),
            "--max-model-len",
            str(max_model_len),
            "--limit-mm-per-prompt",
            json.dumps({"image": 0, "video": 1}),
            "--media-io-kwargs",
            json.dumps({"video": {"num_frames": -1}}),
            "--generation-config",
            "vllm",
        ]
        if media_root is not None:
            argv += ["--allowed-local-media-path", str(Path(media_root).resolve())]
        line = f"CUDA_VISIBLE_DEVICES={gpus} " + shlex.join(argv)
        if os.environ.get(API_KEY_ENV):  # named, never printed: the shell expands it
            line += f' --api-key "${API_KEY_ENV}"'
        lines.append(line)
    return lines


# --------------------------------------------------------------------------- faults


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


class Faults:
    """Faults for the next requests, in order (one per request), or for every request."""

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


# --------------------------------------------------------------------------- the server


class _BadRequest(Exception):
    pass


class JudgeServer:
    """An in-process judge behind ``/v1/chat/completions`` on ``host:port`` (0: any free
    port), in a background thread. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(
        self,
        judge: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        served_name: str = SERVED_MODEL_NAME,
        media_root: str | Path | None = None,
        faults: Faults | None = None,
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
        self.faults = faults or Faults()
        self.requests = 0
        self._model_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._clips = tempfile.TemporaryDirectory(prefix="phyjudge-serve-")
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> JudgeServer:
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

    def __enter__(self) -> JudgeServer:
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
        messages = [self._message(m) for m in body["messages"]]
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

    def _message(self, message: Any) -> dict[str, Any]:
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
                        "video": str(self._video_file(url)),
                        "fps": self.judge.settings.get("fps", DEFAULT_FPS),
                        "max_pixels": self.judge.settings.get("max_pixels", DEFAULT_MAX_PIXELS),
                    }
                )
            else:
                raise _BadRequest(f"unsupported content part {kind!r}; send text and video_url")
        return {"role": message["role"], "content": parts}

    def _video_file(self, url: str) -> Path:
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            if ";base64" not in header:
                raise _BadRequest("a video data URL must be base64-encoded")
            try:
                clip = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise _BadRequest(f"the video data URL is not valid base64: {exc}") from exc
            path = Path(self._clips.name, hashlib.sha256(clip).hexdigest() + ".mp4")
            if not path.exists():  # written aside then renamed: concurrent requests see all or none
                part = path.with_name(f"{path.name}.{threading.get_ident()}.part")
                part.write_bytes(clip)
                part.replace(path)
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


def _handler_for(server: JudgeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # the client's delayed ACK add about 40 ms to every reply.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet by default
            return None

        def _send(self, status: int, body: bytes, content_type: str = "application/json"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up: nothing to tell it
                self.wfile.write(body)

        def _json(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode("utf-8"))

        def _error(self, status: int, message: str) -> None:
            self._json(status, {"error": {"message": message, "type": "invalid_request_error"}})

        def _authorized(self) -> bool:
            if server.api_key is None:
                return True
            if self.headers.get("Authorization") == f"Bearer {server.api_key}":
                return True
            self._error(401, "missing or wrong API key")
            return False

        def do_GET(self) -> None:
            if not self._authorized():
                return
            if self.path.rstrip("/") == "/v1/models":
                self._json(200, server.models())
            elif self.path == "/health":
                self._send(200, b"", "text/plain")
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length)
            if not self._authorized():
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"no route {self.path}")
                return
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
            fault = server.faults.next()
            if fault is not None and fault.kind == "drop":
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.kind == "error":
                self._error(fault.status, "injected fault")
                return
            if fault is not None and fault.kind == "malformed":
                self._send(200, b'{"choices": [{"message": ')
                return
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.seconds)
            started = time.perf_counter()
            try:
                reply = server.chat_completion(json.loads(payload or b"null"))
            except (ValueError, _BadRequest) as exc:
                self._error(400, str(exc))
                return
            except Exception as exc:  # a bug in the judge: the client sees a 500, not a hang-up
                self._error(500, f"the judge failed: {type(exc).__name__}: {exc}")
                return
            self._json(200, reply)
            with server._stats_lock:
                server.handling_seconds += time.perf_counter() - started

    return Handler
