"""The chat exchange with a judge server: requests built, sent and read; httpx errors end here.

Threat model: it reads the replies of the servers named by --phyjudge-url, which may be
anyone's. The worst a reply holds: a body that never ends or a gzip bomb (1 MB that inflates
to 1 GiB), JSON nested without end, a status line dripped a byte at a time. Each reply is
read as a stream and inflated here, a piece at a time, up to MAX_REPLY_BYTES decoded, within
the request's deadline, then parsed by ``parse_json`` (depth-capped); nothing of it is
written anywhere but into the Judgment it becomes.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pytest_phyjudge._exceptions import JudgeBackendError, JudgeLoadError, JudgeOutputError
from pytest_phyjudge._files import FileProblem, parse_json
from pytest_phyjudge.engine.parse import answer_prefix
from pytest_phyjudge.engine.video import sampled_clip
from pytest_phyjudge.judges.remote.contract import API_KEY_ENV
from pytest_phyjudge.judges.remote.deadline import deadline_transport, request_deadline
from pytest_phyjudge.judges.settings import PYTEST_SURFACE, Surface

if TYPE_CHECKING:
    import httpx

#: How much of a refusing server's reply is quoted in the error.
ERROR_BODY_SHOWN = 300
#: The largest reply read, once decoded: a chat reply or a model list is a few KB, and a
#: gzip bomb stops here instead of filling the memory.
MAX_REPLY_BYTES = 16 * 2**20
#: The most bytes inflated in one go.
INFLATE_STEP = 2**20
#: The encodings read (and asked for), each inflated here with a bound: zlib's window bits
#: for each (32: a zlib or a gzip header, whichever comes).
_ENCODINGS = {
    "gzip": zlib.MAX_WBITS | 16,
    "x-gzip": zlib.MAX_WBITS | 16,
    "deflate": zlib.MAX_WBITS | 32,
}


#: A key an HTTP header can carry as it is: visible ASCII, spaces only between words.
_SENDABLE_KEY = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")


def auth_headers() -> dict[str, str]:
    """The bearer token from the environment, when one is set (vLLM's ``--api-key``), and
    the encodings this client inflates itself, with a bound (httpx would take br, zstd).
    A key no header can carry (a trailing newline from a pasted secret) is refused here,
    without its value: httpx's own error quotes the header, and so would print the secret."""
    key = os.environ.get(API_KEY_ENV)
    if key and not _SENDABLE_KEY.fullmatch(key):
        raise JudgeLoadError(
            f"${API_KEY_ENV} holds a newline, a space at either end or a character that is "
            "not ASCII, which no HTTP header can carry (its value is not shown here). Set it "
            "to the key alone, e.g. with the newline of a pasted secret removed."
        )
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    return {"Accept-Encoding": "gzip, deflate", **auth}


def open_client(
    *,
    connect_timeout: float,
    read_timeout: float,
    connections: int | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """A client for the judge servers; ``transport`` replaces the network (tests pass
    ``httpx.MockTransport``)."""
    import httpx

    limits = (
        httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        if connections is not None
        else httpx.Limits()
    )
    return httpx.Client(
        headers=auth_headers(),
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        transport=transport if transport is not None else deadline_transport(limits),
    )


def get_json(
    client: httpx.Client,
    server: str,
    path: str,
    *,
    budget: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    surface: Surface = PYTEST_SURFACE,
) -> Any:
    """``GET server + path``, its reply parsed; JudgeBackendError when there is none
    (naming ``surface``'s flags)."""
    return _exchange(
        server,
        lambda: client.stream("GET", server + path, auth=getattr(server, "auth", None)),
        budget=budget,
        clock=clock,
        surface=surface,
    )


def post_json(
    client: httpx.Client,
    server: str,
    path: str,
    body: Mapping[str, Any],
    *,
    budget: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    surface: Surface = PYTEST_SURFACE,
) -> Any:
    """``POST body`` as JSON to ``server + path``, the reply parsed; JudgeBackendError
    when there is none (``retryable`` unless the server refused the request). ``budget``:
    seconds for the whole reply, however slowly its bytes come."""
    return _exchange(
        server,
        lambda: client.stream("POST", server + path, json=body, auth=getattr(server, "auth", None)),
        budget=budget,
        clock=clock,
        surface=surface,
    )


class Throttled(JudgeBackendError):
    """A 429: the server asks for another attempt later, after ``retry_after`` seconds
    when it said how long (its ``Retry-After`` header)."""

    def __init__(self, message: str, *, urls: tuple[str, ...], retry_after: float | None):
        super().__init__(message, urls=urls, retryable=True)
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    """The seconds of a ``Retry-After`` header; None for a date or anything unreadable
    (then the usual backoff applies)."""
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _exchange(
    server: str,
    send: Callable[[], AbstractContextManager[httpx.Response]],
    *,
    budget: float | None,
    clock: Callable[[], float],
    surface: Surface,
) -> Any:
    """The one place httpx's errors and the server's failures become JudgeBackendError.
    Faults that another attempt may not meet carry a short reason as their message: the
    retry loop lists them, one per attempt, in the error it finally raises."""
    import httpx

    def fault(reason: str) -> JudgeBackendError:
        return JudgeBackendError(reason, urls=(server,), retryable=True)

    started = clock()
    too_slow = f"timed out (no whole reply within {budget:g} s)" if budget else ""
    try:
        with request_deadline(budget), send() as response:
            if 300 <= response.status_code < 400:
                location = response.headers.get("location", "nowhere")
                raise JudgeBackendError(
                    f"The judge server at {server} answered with a redirect (HTTP "
                    f"{response.status_code} to {location}); point {surface.flag('url')} at the "
                    "server itself. A redirect is not followed or retried.",
                    urls=(server,),
                )

            # httpx's read timeout bounds each socket read, not the reply: a server that
            # drips a byte at a time would hold the client for ever without this check.
            def in_time() -> None:
                if budget is not None and clock() - started > budget:
                    raise fault(too_slow)

            content = _read_capped(response, server, in_time, MAX_REPLY_BYTES, surface)
    except httpx.ConnectTimeout as exc:
        raise fault(f"timed out connecting ({exc})") from exc
    except httpx.TimeoutException as exc:
        raise fault(too_slow or f"timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise fault(f"connection failed ({type(exc).__name__}: {exc})") from exc
    except httpx.HTTPError as exc:
        raise fault(f"request failed ({type(exc).__name__}: {exc})") from exc
    if response.status_code == 429:
        raise Throttled(
            "HTTP 429 (too many requests)",
            urls=(server,),
            retry_after=_retry_after(response.headers.get("retry-after")),
        )
    if response.status_code >= 500:
        raise fault(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        text = content.decode(response.encoding or "utf-8", errors="replace")
        raise JudgeBackendError(
            f"The judge server at {server} refused the request with HTTP "
            f"{response.status_code}: {text[:ERROR_BODY_SHOWN]!r}. A 4xx is not "
            f"retried: check the served model name, the API key (${API_KEY_ENV}), that the "
            "server accepts one video per prompt, and its allowed media path.",
            urls=(server,),
        )
    try:
        return parse_json(content.decode(json.detect_encoding(content)))
    except UnicodeDecodeError as exc:
        raise fault(
            f"malformed reply: it is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    except FileProblem as exc:
        raise fault(f"malformed reply: it {exc.reason}") from exc


def _size(count: int) -> str:
    """``count`` bytes in MiB, or KiB when that is not a whole number of MiB."""
    return f"{count // 2**20} MiB" if count % 2**20 == 0 else f"{count / 2**10:g} KiB"


def _too_large(server: str, limit: int, surface: Surface) -> JudgeBackendError:
    return JudgeBackendError(
        f"The judge server at {server} sent a reply larger than {_size(limit)} once "
        "decoded, more than a chat reply holds (a few KB); it was refused there and is not "
        f"retried. Check that {surface.flag('url')} points at a judge server.",
        urls=(server,),
    )


def _read_capped(
    response: httpx.Response,
    server: str,
    in_time: Callable[[], None],
    limit: int,
    surface: Surface = PYTEST_SURFACE,
) -> bytes:
    """The decoded body of ``response``, read a piece at a time: a gzip or deflate body is
    inflated here with zlib's ``max_length``, so no more than ``limit`` bytes (and one
    network read) are ever held; past ``limit`` the request fails, naming the server.
    ``in_time`` raises once the request's budget is spent."""
    if response.is_stream_consumed:  # a reply built in memory (tests' MockTransport)
        if len(response.content) > limit:
            raise _too_large(server, limit, surface)
        return response.content
    coding = response.headers.get("content-encoding", "identity").strip().lower()
    if coding not in ("", "identity", *_ENCODINGS):
        raise JudgeBackendError(
            f"The judge server at {server} sent its reply in the {coding!r} encoding, which "
            "this client does not read (it asks for gzip or deflate, or none).",
            urls=(server,),
        )
    declared = response.headers.get("content-length", "")
    if coding in ("", "identity") and declared.isdigit() and int(declared) > limit:
        raise _too_large(server, limit, surface)
    inflater = zlib.decompressobj(_ENCODINGS[coding]) if coding in _ENCODINGS else None
    body = bytearray()
    for chunk in response.iter_raw():
        pieces = [chunk] if inflater is None else _inflated(inflater, chunk, server, coding)
        for piece in pieces:
            if len(body) + len(piece) > limit:
                raise _too_large(server, limit, surface)
            body += piece
        in_time()
    return bytes(body)


def _inflated(inflater: Any, data: bytes, server: str, coding: str) -> Iterator[bytes]:
    """``data`` inflated, INFLATE_STEP bytes at a time: 64 KB of a bomb is 64 MB, which the
    caller stops taking once past its cap, so no more than a step is ever made at once."""
    while data:
        try:
            piece = inflater.decompress(data, INFLATE_STEP)
        except zlib.error as exc:
            raise JudgeBackendError(
                f"malformed reply (its {coding} body cannot be inflated: {exc})",
                urls=(server,),
                retryable=True,
            ) from exc
        yield piece
        # Input is left over only when the step was filled: the loop always moves on.
        data = inflater.unconsumed_tail


def first_choice(reply: Any, read: Callable[[Any], Any], server: str) -> Any:
    """``read`` applied to a chat reply's first choice; a reply it cannot read is a
    malformed one, which another attempt may not get."""
    try:
        return read(reply["choices"][0])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise JudgeBackendError(
            f"malformed reply ({type(exc).__name__}: {exc})", urls=(server,), retryable=True
        ) from exc


def read_content(choice: Any) -> str:
    """The text of a greedy reply."""
    text = choice["message"]["content"]
    if not isinstance(text, str):
        raise TypeError(f"content is {type(text).__name__}")
    return text


def read_top_logprobs(choice: Any) -> list[tuple[str, float]]:
    """The first generated token's most likely alternatives, as (token, logprob)."""
    top = choice["logprobs"]["content"][0]["top_logprobs"]
    return [
        (str(entry["token"]), checked_logprob(entry["logprob"], entry["token"])) for entry in top
    ]


#: How far above 0 a log-probability may round (float32 softmax) and still be read as 0.
LOGPROB_SLACK = 1e-4


def checked_logprob(value: Any, token: Any) -> float:
    """``value`` as a log-probability: finite and at most 0 (a hair above 0 is rounding).
    ValueError naming the value otherwise; NaN would score as the likeliest digit and
    1000 overflow ``exp``."""
    logprob = float(value)
    if not math.isfinite(logprob) or logprob > LOGPROB_SLACK:
        raise ValueError(
            f"impossible logprob {logprob!r} for token {token!r}: a log-probability is a "
            "finite number at most 0"
        )
    return min(logprob, 0.0)


def video_url_part(
    video: Path, *, media_root: tuple[Path, str] | None, fps: float, max_pixels: int
) -> dict[str, Any]:
    """The message part that carries ``video``: a ``file://`` URL as the servers see it
    when it lies under ``media_root`` (``(local, served)``), else the frames the judge
    samples, as a lossless clip in a data URL."""
    resolved = video.resolve()
    if media_root is not None and resolved.is_relative_to(media_root[0]):
        served = f"{media_root[1]}/{resolved.relative_to(media_root[0]).as_posix()}"
        url = "file://" + quote(served)
    else:
        clip = sampled_clip(video, fps=fps, max_pixels=max_pixels)
        url = "data:video/mp4;base64," + base64.b64encode(clip).decode("ascii")
    return {"type": "video_url", "video_url": {"url": url}}


def chat_body(
    model: str,
    system: str,
    user: str,
    video: Mapping[str, Any],
    *,
    max_tokens: int,
    prefix: str | None = None,
    top_logprobs: int = 0,
) -> dict[str, Any]:
    """A chat request in the reference's messages, greedy. With ``prefix`` (distribution
    scoring) the reply is started with it and one token is asked for, with the
    log-probabilities of the ``top_logprobs`` likeliest ones."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": system}]},
            {"role": "user", "content": [dict(video), {"type": "text", "text": user}]},
        ],
        "temperature": 0,
        "max_tokens": max_tokens,
        # vLLM's extension: Qwen3.5 thinks unless told not to, as in the reference.
        "chat_template_kwargs": {"enable_thinking": False},
    }
    if prefix is not None:
        body["messages"].append(
            {"role": "assistant", "content": [{"type": "text", "text": prefix}]}
        )
        body.update(
            max_tokens=1,
            logprobs=True,
            top_logprobs=top_logprobs,
            # vLLM's extensions: continue the assistant's turn instead of starting one.
            continue_final_message=True,
            add_generation_prompt=False,
        )
    return body


def digit_distribution(
    top: Sequence[tuple[str, float]], axis: str
) -> tuple[tuple[float, ...], float]:
    """Probabilities of the digits 1..5 (renormalised over the five) among a server's top
    next tokens, and the share of the whole distribution they hold. A digit outside the
    top tokens counts as 0; none of them there, or a value no log-probability can have
    (NaN, infinite, above 0), is a JudgeOutputError."""
    try:
        found = {token.strip(): math.exp(checked_logprob(lp, token)) for token, lp in top}
    except (TypeError, ValueError) as exc:
        raise JudgeOutputError(
            f"The top next tokens for {axis!r} hold an {exc}. The server that sent them is "
            "faulty: check its logs and the model it serves.",
            raw=answer_prefix(axis),
            key=axis,
        ) from exc
    digits = [found.get(str(d), 0.0) for d in range(1, 6)]
    mass = sum(digits)
    if mass <= 0:
        shown = ", ".join(repr(t) for t, _ in top[:5])
        raise JudgeOutputError(
            f"None of the digits 1-5 is among the {len(top)} likeliest next tokens for "
            f"{axis!r} (they start {shown}); the served model does not answer in the format "
            "asked. Check that it is the merged PhyJudge.",
            raw=answer_prefix(axis),
            key=axis,
        )
    return tuple(p / mass for p in digits), mass
