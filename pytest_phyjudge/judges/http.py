"""The chat exchange with a judge server: requests built, sent and read; httpx errors end here."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pytest_phyjudge._exceptions import JudgeBackendError
from pytest_phyjudge.engine.video import sampled_clip
from pytest_phyjudge.judges.vllm import API_KEY_ENV

if TYPE_CHECKING:
    import httpx

#: How much of a refusing server's reply is quoted in the error.
ERROR_BODY_SHOWN = 300


def auth_headers() -> dict[str, str]:
    """The bearer token from the environment, when one is set (vLLM's ``--api-key``)."""
    key = os.environ.get(API_KEY_ENV)
    return {"Authorization": f"Bearer {key}"} if key else {}


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
        limits=limits,
        transport=transport,
    )


def get_json(client: httpx.Client, server: str, path: str) -> Any:
    """``GET server + path``, its reply parsed; JudgeBackendError when there is none."""
    return _exchange(server, lambda: client.get(server + path))


def post_json(client: httpx.Client, server: str, path: str, body: Mapping[str, Any]) -> Any:
    """``POST body`` as JSON to ``server + path``, the reply parsed; JudgeBackendError
    when there is none (``retryable`` unless the server refused the request)."""
    return _exchange(server, lambda: client.post(server + path, json=body))


def _exchange(server: str, send: Callable[[], httpx.Response]) -> Any:
    """The one place httpx's errors and the server's failures become JudgeBackendError.
    Faults that another attempt may not meet carry a short reason as their message: the
    retry loop lists them, one per attempt, in the error it finally raises."""
    import httpx

    def fault(reason: str) -> JudgeBackendError:
        return JudgeBackendError(reason, urls=(server,), retryable=True)

    try:
        response = send()
    except httpx.TimeoutException as exc:
        raise fault(f"timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise fault(f"connection failed ({type(exc).__name__}: {exc})") from exc
    except httpx.HTTPError as exc:
        raise fault(f"request failed ({type(exc).__name__}: {exc})") from exc
    if response.status_code >= 500:
        raise fault(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        raise JudgeBackendError(
            f"The judge server at {server} refused the request with HTTP "
            f"{response.status_code}: {response.text[:ERROR_BODY_SHOWN]!r}. A 4xx is not "
            f"retried: check the served model name, the API key (${API_KEY_ENV}), that the "
            "server accepts one video per prompt, and its allowed media path.",
            urls=(server,),
        )
    try:
        return response.json()
    except ValueError as exc:
        raise fault(f"malformed reply ({type(exc).__name__}: {exc})") from exc


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
    return [(str(entry["token"]), float(entry["logprob"])) for entry in top]


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
