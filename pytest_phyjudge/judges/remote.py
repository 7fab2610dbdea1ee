"""The judge behind OpenAI-compatible servers: vLLM serving the merged checkpoint, or
``phyjudge serve``. Same prompts, decoding and parsing as the in-process judge (greedy, or
the digits' probabilities from the top log-probabilities); the video goes as the frames the
judge samples (a lossless clip in a data URL) or as a ``file://`` URL when the servers
share the filesystem.

Requests run concurrently, go to the replica with the fewest requests outstanding, are
retried with exponential backoff on 5xx, timeouts, dropped connections and malformed
replies, and stop at a circuit breaker: a replica that keeps failing is left alone for a
while, and when every replica is left alone the remaining requests fail at once, with one
message that names every URL.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from pytest_phyjudge._exceptions import (
    InputError,
    JudgeBackendError,
    JudgeLoadError,
    JudgeOutputError,
    PhyJudgeError,
)
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.engine.parse import answer_prefix
from pytest_phyjudge.engine.rubric import Rubric, load_rubric
from pytest_phyjudge.engine.video import (
    DEFAULT_FPS,
    DEFAULT_MAX_PIXELS,
    sampled_clip,
    sha256_file,
)
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.judges.loading import DEFAULT_MAX_NEW_TOKENS

#: The name ``phyjudge serve-command`` gives the model (``--served-model-name``).
SERVED_MODEL_NAME = "phyjudge"
DEFAULT_CONCURRENCY = 8
DEFAULT_CONNECT_TIMEOUT = 5.0
#: A 9B judge answers one axis in well under a minute even on a busy server.
DEFAULT_READ_TIMEOUT = 120.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
MAX_BACKOFF = 8.0
#: Consecutive failures after which a replica is left alone for BREAKER_COOLDOWN seconds.
BREAKER_THRESHOLD = 3
BREAKER_COOLDOWN = 30.0
#: Alternatives asked for with distribution scoring: vLLM's default ceiling (--max-logprobs).
DEFAULT_TOP_LOGPROBS = 20
#: The servers' API key (vLLM's --api-key), read from the environment, never from a flag.
API_KEY_ENV = "PHYJUDGE_API_KEY"
_ERROR_BODY_SHOWN = 300


def parse_urls(text: str | Sequence[str]) -> tuple[str, ...]:
    """``http://h1:8000,http://h2:8000`` -> base URLs without a trailing ``/`` or ``/v1``."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    urls: list[str] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        split = urlsplit(part)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise InputError(
                f"{part!r} is not a judge server URL; write http://HOST:PORT (several "
                "separated by commas), e.g. --phyjudge-url http://127.0.0.1:8000."
            )
        base = part.rstrip("/")
        if base.endswith("/v1"):
            base = base[: -len("/v1")]
        if base not in urls:
            urls.append(base)
    if not urls:
        raise InputError("No judge server URL given; write http://HOST:PORT[,http://...].")
    return tuple(urls)


# --------------------------------------------------------------------------- identity


def _identity_from(provenance: Mapping[str, Any], where: str) -> JudgeIdentity:
    adapter = provenance.get("adapter")
    if not isinstance(adapter, str) or not adapter:
        raise JudgeLoadError(
            f"{where} names no adapter, so the judge behind the server is unknown. Point "
            "--phyjudge-remote-identity at the phyjudge_provenance.json that "
            "'phyjudge merge' wrote into the merged checkpoint."
        )
    # A tiny or scripted judge stays marked as such behind a server: its scores mean nothing.
    kind = provenance.get("kind")
    return JudgeIdentity(
        kind=kind if kind in ("tiny", "scripted") else "remote",
        adapter=adapter,
        revision=provenance.get("revision"),
        base=provenance.get("base"),
        adapter_sha256=provenance.get("adapter_sha256"),
    )


def read_provenance(source: str | Path) -> tuple[JudgeIdentity, Path]:
    """The identity recorded by ``phyjudge merge``, from the merged folder or its
    provenance file; also returns the folder (it holds the adapter's rubric files)."""
    from pytest_phyjudge.engine.merge import PROVENANCE_FILE

    path = Path(source)
    file = path / PROVENANCE_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise JudgeLoadError(
            f"Cannot read the served judge's provenance from {str(file)!r} "
            f"({type(exc).__name__}: {exc}). Give the merged checkpoint folder, or the "
            f"{PROVENANCE_FILE} that 'phyjudge merge' wrote into it."
        ) from exc
    if not isinstance(data, dict):
        raise JudgeLoadError(f"{str(file)!r} is not a provenance record (a JSON object).")
    return _identity_from(data, str(file)), file.parent


def _served_judge(models: Any, url: str) -> tuple[str, JudgeIdentity, Path | None]:
    """The served model's name and identity from a ``/v1/models`` reply: ``phyjudge
    serve`` includes the provenance; for vLLM it is read from the model's folder (``root``)
    when this machine can see that folder."""
    from pytest_phyjudge.engine.merge import PROVENANCE_FILE

    entries = models.get("data") if isinstance(models, dict) else None
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise JudgeLoadError(f"{url}/v1/models lists no model; is this a judge server?")
    entry = entries[0]
    name = str(entry.get("id") or SERVED_MODEL_NAME)
    if isinstance(entry.get("phyjudge"), dict):
        root = entry["phyjudge"].get("rubric_dir")
        identity = _identity_from(entry["phyjudge"], f"{url}/v1/models")
        return name, identity, Path(root) if root and Path(root).is_dir() else None
    root = entry.get("root")
    if isinstance(root, str) and (Path(root) / PROVENANCE_FILE).is_file():
        identity, folder = read_provenance(root)
        return name, identity, folder
    raise JudgeLoadError(
        f"The server at {url} serves {name!r} but does not say which PhyJudge it is (its "
        f"folder {root!r} is not readable here). Pass --phyjudge-remote-identity with the "
        f"merged checkpoint's {PROVENANCE_FILE}, so that cached judgments and reports name "
        "the judge."
    )


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RemoteSettings:
    """How the client talks to the servers. Timeouts in seconds."""

    urls: tuple[str, ...]
    concurrency: int = DEFAULT_CONCURRENCY
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    breaker_threshold: int = BREAKER_THRESHOLD
    breaker_cooldown: float = BREAKER_COOLDOWN
    #: ``(local, served)``: videos under ``local`` are sent as ``file://`` URLs under
    #: ``served`` (the same folder as the servers see it); others go as data URLs.
    media_root: tuple[Path, str] | None = None


def parse_media_root(text: str) -> tuple[Path, str]:
    """``DIR`` (the servers see it at the same path) or ``LOCAL=SERVED``."""
    local, sep, served = text.partition("=")
    folder = Path(local.strip()).expanduser().resolve()
    return folder, (served.strip().rstrip("/") if sep else str(folder))


@dataclass
class _Replica:
    url: str
    index: int
    outstanding: int = 0
    failures: int = 0
    open_until: float = 0.0
    last_error: str = ""
    served: int = 0


class ReplicaPool:
    """Picks the replica with the fewest outstanding requests, and keeps a circuit breaker
    per replica: ``threshold`` consecutive failures leave it out for ``cooldown`` seconds
    (one more failure after that leaves it out again)."""

    def __init__(self, urls: Sequence[str], *, threshold: int, cooldown: float) -> None:
        self.replicas = [_Replica(url, index) for index, url in enumerate(urls)]
        self.threshold = threshold
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._turn = 0

    def acquire(self) -> _Replica:
        with self._lock:
            now = time.monotonic()
            ready = [r for r in self.replicas if r.open_until <= now]
            if not ready:
                raise self.all_down_error(now)
            self._turn += 1
            n = len(self.replicas)
            # Fewest outstanding first; ties rotate so that idle replicas share the load.
            best = min(ready, key=lambda r: (r.outstanding, (r.index - self._turn) % n))
            best.outstanding += 1
            return best

    def release(self, replica: _Replica, error: str | None = None) -> None:
        with self._lock:
            replica.outstanding -= 1
            if error is None:
                replica.failures, replica.open_until = 0, 0.0
                replica.served += 1
                return
            replica.failures += 1
            replica.last_error = error
            if replica.failures >= self.threshold:
                replica.open_until = time.monotonic() + self.cooldown

    def all_down_error(self, now: float | None = None) -> JudgeBackendError:
        now = time.monotonic() if now is None else now
        lines = "; ".join(
            f"{r.url} ({r.last_error or 'failing'}, "
            f"tried again in {max(0.0, r.open_until - now):.0f} s)"
            for r in self.replicas
        )
        return JudgeBackendError(
            f"Every judge server is down: {lines}. The remaining items fail without waiting. "
            "Check that the servers run and are reachable from here (curl URL/v1/models), "
            "or change --phyjudge-url.",
            urls=tuple(r.url for r in self.replicas),
        )


# --------------------------------------------------------------------------- the judge


@dataclass(frozen=True)
class RemotePlan:
    """A remote judge as it will be, known before any request: enough to render prompts
    and key the cache. ``load()`` opens the connections."""

    remote: RemoteSettings
    identity: JudgeIdentity
    rubric: Rubric
    settings: Mapping[str, Any]
    model: str = SERVED_MODEL_NAME

    def load(self) -> RemoteJudge:
        return RemoteJudge(self)


def plan_remote(
    urls: str | Sequence[str],
    *,
    identity: str | Path | None = None,
    model: str | None = None,
    fps: float = DEFAULT_FPS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    scoring: str = "greedy",
    top_logprobs: int = DEFAULT_TOP_LOGPROBS,
    **remote: Any,
) -> RemotePlan:
    """Plan a judge on the servers at ``urls``. Who they serve comes from ``identity`` (the
    merged checkpoint or its provenance file; then no request is made here), else from
    each server's ``/v1/models``; servers that disagree are refused."""
    if scoring not in ("greedy", "distribution"):
        raise InputError(f"Unknown scoring mode {scoring!r}; use 'greedy' or 'distribution'.")
    settings = RemoteSettings(urls=parse_urls(urls), **remote)
    rubric_dir: Path | None = None
    if identity is not None:
        who, rubric_dir = read_provenance(identity)
        name = model or SERVED_MODEL_NAME
    else:
        name, who, rubric_dir = _ask_servers(settings, model)
    return RemotePlan(
        remote=settings,
        identity=who,
        rubric=load_rubric(rubric_dir),
        settings={
            "fps": fps,
            "max_pixels": max_pixels,
            "max_new_tokens": DEFAULT_MAX_NEW_TOKENS,
            "scoring": scoring,
            "top_logprobs": top_logprobs,
            "transport": "file" if settings.media_root else "data-url",
        },
        model=name,
    )


def _headers() -> dict[str, str]:
    key = os.environ.get(API_KEY_ENV)
    return {"Authorization": f"Bearer {key}"} if key else {}


def connect_judge(
    urls: str | Sequence[str],
    *,
    identity: str | Path | None = None,
    scoring: str = "greedy",
    **settings: Any,
) -> RemoteJudge:
    """PhyJudge on OpenAI-compatible servers (vLLM serving the merged checkpoint, or
    ``phyjudge serve``), ready to score videos like ``load_judge``'s.

    ``urls``: ``"http://host:8000"`` or several (a list, or comma-separated). ``identity``:
    the merged checkpoint or its ``phyjudge_provenance.json`` (default: asked from the
    servers). ``settings``: those of :class:`RemoteSettings` (``concurrency``,
    ``read_timeout``, ``retries``, ``media_root``, ...). Close it when done.
    """
    return plan_remote(urls, identity=identity, scoring=scoring, **settings).load()


def _ask_servers(settings: RemoteSettings, model: str | None) -> tuple[str, JudgeIdentity, Any]:
    import httpx

    found: dict[str, tuple[str, JudgeIdentity, Any]] = {}
    errors: list[str] = []
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    with httpx.Client(timeout=timeout, headers=_headers()) as client:
        for url in settings.urls:
            try:
                response = client.get(f"{url}/v1/models")
                response.raise_for_status()
                found[url] = _served_judge(response.json(), url)
            except (httpx.HTTPError, ValueError) as exc:
                errors.append(f"{url} ({type(exc).__name__}: {exc})")
    if not found:
        raise JudgeLoadError(
            f"No judge server answered /v1/models: {'; '.join(errors)}. Start the servers "
            "(see 'phyjudge serve-command'), or, to replay cached judgments without them, "
            "pass --phyjudge-remote-identity with the merged checkpoint's provenance."
        )
    identities = {who for _, who, _ in found.values()}
    if len(identities) > 1:
        listing = "; ".join(f"{url}: {who.describe()}" for url, (_, who, _) in found.items())
        raise JudgeLoadError(
            f"The judge servers do not serve the same judge ({listing}). Point "
            "--phyjudge-url at replicas of one merged checkpoint."
        )
    name, who, folder = next(iter(found.values()))
    return model or name, who, folder


def _content(choice: Any) -> str:
    text = choice["message"]["content"]
    if not isinstance(text, str):
        raise TypeError(f"content is {type(text).__name__}")
    return text


def _top_logprobs(choice: Any) -> list[tuple[str, float]]:
    """The first generated token's most likely alternatives, as (token, logprob)."""
    top = choice["logprobs"]["content"][0]["top_logprobs"]
    return [(str(entry["token"]), float(entry["logprob"])) for entry in top]


def digit_distribution(
    top: Sequence[tuple[str, float]], axis: str
) -> tuple[tuple[float, ...], float]:
    """Probabilities of the digits 1..5 (renormalised over the five) among a server's top
    next tokens, and the share of the whole distribution they hold. A digit outside the
    top tokens counts as 0; none of them there is a JudgeOutputError."""
    import math

    found = {token.strip(): math.exp(logprob) for token, logprob in top}
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


class RemoteJudge(Judge):
    """PhyJudge on OpenAI-compatible servers (``/v1/chat/completions``), greedy."""

    def __init__(self, plan: RemotePlan, *, transport: Any = None) -> None:
        import httpx

        self.plan = plan
        self.identity = plan.identity
        self.rubric = plan.rubric
        self.settings = dict(plan.settings)
        self.remote = plan.remote
        self.pool = ReplicaPool(
            plan.remote.urls,
            threshold=plan.remote.breaker_threshold,
            cooldown=plan.remote.breaker_cooldown,
        )
        connections = max(plan.remote.concurrency, len(plan.remote.urls))
        self._client = httpx.Client(
            headers=_headers(),
            timeout=httpx.Timeout(plan.remote.read_timeout, connect=plan.remote.connect_timeout),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            transport=transport,
        )
        self._executor = ThreadPoolExecutor(
            max_workers=plan.remote.concurrency, thread_name_prefix="phyjudge-remote"
        )
        self.requests = 0
        self.retried = 0

    # -- requests --------------------------------------------------------------------------

    def video_part(self, video: Path) -> dict[str, Any]:
        """The message part that carries ``video`` to the server."""
        root = self.remote.media_root
        resolved = video.resolve()
        if root is not None and resolved.is_relative_to(root[0]):
            served = f"{root[1]}/{resolved.relative_to(root[0]).as_posix()}"
            url = "file://" + quote(served)
        else:
            clip = sampled_clip(
                video, fps=self.settings["fps"], max_pixels=self.settings["max_pixels"]
            )
            url = "data:video/mp4;base64," + base64.b64encode(clip).decode("ascii")
        return {"type": "video_url", "video_url": {"url": url}}

    def request_body(
        self, system: str, user: str, video_part: dict[str, Any], axis: str | None = None
    ) -> dict[str, Any]:
        """The chat request for one axis: the reference's messages, greedy, 64 tokens. With
        distribution scoring the reply is started with the answer prefix (``{"axis": ``) and
        one token is asked for, with the log-probabilities of the likeliest ones."""
        body: dict[str, Any] = {
            "model": self.plan.model,
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": system}]},
                {"role": "user", "content": [video_part, {"type": "text", "text": user}]},
            ],
            "temperature": 0,
            "max_tokens": self.settings["max_new_tokens"],
            # vLLM's extension: Qwen3.5 thinks unless told not to, as in the reference.
            "chat_template_kwargs": {"enable_thinking": False},
        }
        if self.settings["scoring"] == "distribution":
            if axis is None:
                raise ValueError("distribution scoring needs the axis of the request")
            prefix = {
                "role": "assistant",
                "content": [{"type": "text", "text": answer_prefix(axis)}],
            }
            body["messages"].append(prefix)
            body.update(
                max_tokens=1,
                logprobs=True,
                top_logprobs=self.settings["top_logprobs"],
                # vLLM's extensions: continue the assistant's turn instead of starting one.
                continue_final_message=True,
                add_generation_prompt=False,
            )
        return body

    def complete(self, body: Mapping[str, Any], read: Callable[[Any], Any] = _content) -> Any:
        """POST ``body`` until a replica answers, within the retries, and return
        ``read(first choice)``; a reply ``read`` cannot read counts as malformed and is
        retried. JudgeBackendError when no replica answers."""
        import httpx

        failures: list[str] = []
        attempts = 1 + self.remote.retries
        for attempt in range(attempts):
            replica = self.pool.acquire()  # raises at once when every replica is down
            self.requests += 1
            error: str | None = None
            try:
                response = self._client.post(f"{replica.url}/v1/chat/completions", json=body)
            except httpx.TimeoutException as exc:
                error = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                error = f"connection failed ({type(exc).__name__}: {exc})"
            else:
                if response.status_code >= 500:
                    error = f"HTTP {response.status_code}"
                elif response.status_code >= 400:
                    self.pool.release(replica)
                    raise JudgeBackendError(
                        f"The judge server at {replica.url} refused the request with HTTP "
                        f"{response.status_code}: {response.text[:_ERROR_BODY_SHOWN]!r}. A 4xx "
                        "is not retried: check the served model name, that the server accepts "
                        "one video per prompt, and its allowed media path.",
                        urls=(replica.url,),
                    )
                else:
                    try:
                        value = read(response.json()["choices"][0])
                    except (ValueError, KeyError, IndexError, TypeError) as exc:
                        error = f"malformed reply ({type(exc).__name__}: {exc})"
                    else:
                        self.pool.release(replica)
                        return value
            self.pool.release(replica, error)
            failures.append(f"{replica.url}: {error}")
            if attempt + 1 < attempts:
                self.retried += 1
                time.sleep(min(MAX_BACKOFF, self.remote.backoff * 2**attempt))
        raise JudgeBackendError(
            f"The judge servers gave no answer after {attempts} attempts "
            f"({'; '.join(failures)}). Raise --phyjudge-timeout if the servers are just slow, "
            "or check their logs.",
            urls=tuple(dict.fromkeys(f.split(": ", 1)[0] for f in failures)),
        )

    # -- the Judge interface ---------------------------------------------------------------

    def _score_axes(
        self,
        video: Path,
        caption: str,
        axes: list[str],
        criteria: Mapping[str, str] | None,
    ) -> dict[str, Judgment | PhyJudgeError]:
        video_sha = sha256_file(video)  # checks the file first
        part = self.video_part(video)
        prompts = {
            axis: self.rubric.render(axis, caption, criteria=(criteria or {}).get(axis))
            for axis in axes
        }

        distribution = self.settings["scoring"] == "distribution"

        def ask(axis: str) -> tuple[Any, float]:
            started = time.perf_counter()
            prompt = prompts[axis]
            body = self.request_body(prompt.system, prompt.user, part, axis)
            reply = self.complete(body, _top_logprobs if distribution else _content)
            return reply, time.perf_counter() - started

        futures = {axis: self._executor.submit(ask, axis) for axis in axes}
        results: dict[str, Judgment | PhyJudgeError] = {}
        for axis, future in futures.items():
            try:
                reply, seconds = future.result()
            except JudgeBackendError as exc:
                results[axis] = exc
                continue
            extra: dict[str, Any] = {
                "scoring": self.settings["scoring"],
                "transport": self.settings["transport"],
            }
            fields: dict[str, Any] = {}
            if distribution:
                try:
                    probs, extra["digit_mass"] = digit_distribution(reply, axis)
                except JudgeOutputError as exc:
                    results[axis] = exc
                    continue
                score = max(range(5), key=lambda i: probs[i]) + 1
                fields = {
                    "score": score,
                    "probs": probs,
                    "expected": sum((i + 1) * p for i, p in enumerate(probs)),
                }
                reply = f"{answer_prefix(axis)}{score}"
            results[axis] = self._judgment(
                axis,
                reply,
                video=video,
                video_sha256=video_sha,
                prompt_sha256=prompts[axis].sha256,
                seconds=seconds,
                caption=caption,
                extra=extra,
                **fields,
            )
        return results

    def summary(self) -> str | None:
        served = ", ".join(f"{r.url} {r.served}" for r in self.pool.replicas)
        return (
            f"judge servers: {self.requests} requests, {self.retried} retried; answered: {served}"
        )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()
