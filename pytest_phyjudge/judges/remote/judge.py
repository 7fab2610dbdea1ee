"""The judge behind OpenAI-compatible servers (vLLM or ``phyjudge serve``), for GPUs elsewhere.

Every reply's model is checked against the run's first (``provenance.ModelWatch``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from pytest_phyjudge._exceptions import (
    JudgeBackendError,
    JudgeOutputError,
    PhyJudgeError,
)
from pytest_phyjudge._words import counted
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.engine.parse import answer_prefix, distribution_fields
from pytest_phyjudge.engine.rubric import Rubric, load_rubric
from pytest_phyjudge.engine.video import DEFAULT_FPS, DEFAULT_MAX_PIXELS, sha256_file
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.judges.remote.contract import SERVED_MODEL_NAME
from pytest_phyjudge.judges.remote.http import (
    Throttled,
    chat_body,
    digit_distribution,
    first_choice,
    get_json,
    open_client,
    post_json,
    read_content,
    read_top_logprobs,
    video_url_part,
)
from pytest_phyjudge.judges.remote.provenance import (
    MODELS_PATH,
    Answerer,
    ModelWatch,
    ServedJudge,
    ask_servers,
    read_provenance,
    served_change,
)
from pytest_phyjudge.judges.remote.replicas import (
    BREAKER_COOLDOWN,
    BREAKER_THRESHOLD,
    DEFAULT_BACKOFF,
    MAX_BACKOFF,
    ReplicaPool,
    backoff_delay,
)
from pytest_phyjudge.judges.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RETRIES,
    DEFAULT_TOP_LOGPROBS,
    PYTEST_SURFACE,
    JudgeConfig,
    Surface,
    check_scoring,
    parse_urls,
)

if TYPE_CHECKING:
    import httpx

DEFAULT_CONNECT_TIMEOUT = 5.0
#: How a video travels to the servers.
Transport = Literal["file", "data-url"]
CHAT_PATH = "/v1/chat/completions"


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
    #: Whose flags the messages name: pytest's, or the ``phyjudge`` command's.
    surface: Surface = field(default=PYTEST_SURFACE, compare=False)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class RemotePlan:
    """A remote judge as it will be, known before any request: enough to render prompts
    and key the cache. ``load()`` opens the connections."""

    remote: RemoteSettings
    identity: JudgeIdentity
    rubric: Rubric
    config: JudgeConfig
    #: Alternatives asked for with distribution scoring.
    top_logprobs: int = DEFAULT_TOP_LOGPROBS
    model: str = SERVED_MODEL_NAME
    #: What the servers' /v1/models said at the start (None: the identity came from a
    #: provenance file): asked again before each case, so a swap between replies is seen.
    served: ServedJudge | None = None

    @property
    def transport(self) -> Transport:
        """How a video travels: a ``file://`` URL under the shared media root, or data."""
        return "file" if self.remote.media_root else "data-url"

    @property
    def settings(self) -> dict[str, Any]:
        """``Judge.settings``: the config's keyed values and how requests are made."""
        return {
            **self.config.keyed(),
            "top_logprobs": self.top_logprobs,
            "transport": self.transport,
        }

    def load(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RemoteJudge:
        """The judge, connected; the keywords are seams for tests (see RemoteJudge)."""
        return RemoteJudge(self, transport=transport, clock=clock, sleep=sleep)


def plan_remote(
    urls: str | Sequence[str],
    *,
    identity: str | Path | None = None,
    model: str | None = None,
    config: JudgeConfig | None = None,
    top_logprobs: int = DEFAULT_TOP_LOGPROBS,
    **remote: Any,
) -> RemotePlan:
    """Plan a judge on the servers at ``urls``. Who they serve comes from ``identity`` (the
    merged checkpoint or its provenance file; then no request is made here), else from
    each server's ``/v1/models``; servers that disagree are refused. ``config``: how the judge
    judges (default: the reference's way)."""
    settings = RemoteSettings(urls=parse_urls(urls), **remote)
    asked: ServedJudge | None = None
    if identity is not None:
        who, rubric_dir = read_provenance(identity, settings.surface)
        served = ServedJudge(model or SERVED_MODEL_NAME, who, rubric_dir)
    else:
        served = asked = ask_servers(
            settings.urls,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            surface=settings.surface,
        )
    return RemotePlan(
        remote=settings,
        identity=served.identity,
        rubric=load_rubric(served.rubric_dir),
        config=config or JudgeConfig(),
        top_logprobs=top_logprobs,
        model=model or served.name,
        served=asked,
    )


def connect_judge(
    urls: str | Sequence[str],
    *,
    identity: str | Path | None = None,
    scoring: str = "greedy",
    fps: float = DEFAULT_FPS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    **settings: Any,
) -> RemoteJudge:
    """PhyJudge on OpenAI-compatible servers (vLLM serving the merged checkpoint, or
    ``phyjudge serve``), ready to score videos like ``load_judge``'s.

    ``urls``: ``"http://host:8000"`` or several (a list, or comma-separated). ``identity``:
    the merged checkpoint or its ``phyjudge_provenance.json`` (default: asked from the
    servers). ``settings``: those of :class:`RemoteSettings` (``concurrency``,
    ``read_timeout``, ``retries``, ``media_root``, ...). Close it when done.
    """
    config = JudgeConfig(fps=fps, max_pixels=max_pixels, scoring=check_scoring(scoring))
    return plan_remote(urls, identity=identity, config=config, **settings).load()


# --------------------------------------------------------------------------- the replies


def _distribution_fields(top: Sequence[tuple[str, float]], axis: str) -> dict[str, Any]:
    """A Judgment's fields from the top next tokens after the answer prefix: the likeliest
    digit as the score, the probabilities, their expected value, the digits' mass."""
    probs, mass = digit_distribution(top, axis)
    return {**distribution_fields(probs, axis), "digit_mass": mass}


# --------------------------------------------------------------------------- the judge


class RemoteJudge(Judge):
    """PhyJudge on OpenAI-compatible servers (``/v1/chat/completions``): the in-process
    judge's prompts, decoding and parsing (greedy, or the digits' probabilities from the
    top log-probabilities), the video sent as the frames the judge samples (a lossless clip
    in a data URL) or as a ``file://`` URL when the servers share the filesystem.

    Requests run concurrently on the replica with the fewest outstanding (``ReplicaPool``),
    and are retried with exponential backoff on 5xx, timeouts, dropped connections and
    malformed replies (impossible log-probabilities included), after the wait a 429 asks
    for (capped), until a replica's circuit breaker opens; when every breaker is open
    the remaining requests fail at once, with one message naming every URL.

    Seams for tests: ``transport`` replaces the network (``httpx.MockTransport``), ``clock``
    drives the breakers' cooldowns and ``sleep`` the backoff between attempts.
    """

    def __init__(
        self,
        plan: RemotePlan,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.plan = plan
        self.identity = plan.identity
        self.rubric = plan.rubric
        self.config = plan.config
        self.settings = MappingProxyType(plan.settings)
        self.remote = plan.remote
        self.pool = ReplicaPool(
            plan.remote.urls,
            threshold=plan.remote.breaker_threshold,
            cooldown=plan.remote.breaker_cooldown,
            clock=clock,
            surface=plan.remote.surface,
        )
        self._sleep = sleep
        self._clock = clock
        self._client = open_client(
            connect_timeout=plan.remote.connect_timeout,
            read_timeout=plan.remote.read_timeout,
            connections=max(plan.remote.concurrency, len(plan.remote.urls)),
            transport=transport,
        )
        self._executor = ThreadPoolExecutor(
            max_workers=plan.remote.concurrency, thread_name_prefix="phyjudge-remote"
        )
        self.requests = 0
        self.retried = 0
        #: Which model answers: every reply must name the model of the run's first.
        self.watch = ModelWatch(plan.model, plan.identity.describe(), plan.remote.surface)

    # -- requests --------------------------------------------------------------------------

    def video_part(self, video: Path) -> dict[str, Any]:
        """The message part that carries ``video`` to the server."""
        return video_url_part(
            video,
            media_root=self.remote.media_root,
            fps=self.config.fps,
            max_pixels=self.config.max_pixels,
        )

    def request_body(
        self, system: str, user: str, video_part: dict[str, Any], axis: str | None = None
    ) -> dict[str, Any]:
        """The chat request for one axis (see ``http.chat_body``); ``axis`` is needed with
        distribution scoring."""
        distribution = self.config.distribution
        if distribution and axis is None:
            raise ValueError("distribution scoring needs the axis of the request")
        return chat_body(
            self.plan.model,
            system,
            user,
            video_part,
            max_tokens=self.config.max_new_tokens,
            prefix=answer_prefix(axis) if distribution and axis is not None else None,
            top_logprobs=self.plan.top_logprobs,
        )

    def complete(self, body: Mapping[str, Any], read: Callable[[Any], Any] = read_content) -> Any:
        """POST ``body`` until a replica answers, within the retries, and return
        ``read(first choice)``; a reply ``read`` cannot read counts as malformed and is
        retried. JudgeBackendError when no replica answers."""
        failures: list[tuple[str, JudgeBackendError]] = []
        attempts = 1 + self.remote.retries
        for attempt in range(attempts):
            self.watch.check(None)  # the judge changed already: not another request
            replica = self.pool.acquire()  # raises at once when every replica is down
            self.requests += 1
            try:
                reply = post_json(
                    self._client,
                    replica.url,
                    CHAT_PATH,
                    body,
                    budget=self.remote.read_timeout,
                    clock=self._clock,
                    surface=self.remote.surface,
                )
                self.watch.check(Answerer.of(reply, replica.url))
                value = first_choice(reply, read, replica.url)
            except JudgeBackendError as exc:
                if not exc.retryable:  # the server refused the request: it will again
                    self.pool.release(replica)
                    raise
                self.pool.release(replica, str(exc))
                failures.append((replica.url, exc))
            else:
                self.pool.release(replica)
                return value
            if attempt + 1 < attempts:
                self.retried += 1
                self._sleep(self._wait_after(attempt, failures[-1][1]))
        raise JudgeBackendError(
            f"The judge servers gave no answer after {attempts} attempts "
            f"({'; '.join(f'{url}: {exc}' for url, exc in failures)}). Raise "
            f"{self.remote.surface.flag('timeout')} if the servers are just slow, or check "
            "their logs.",
            urls=tuple(dict.fromkeys(url for url, _ in failures)),
        )

    def _wait_after(self, attempt: int, error: JudgeBackendError) -> float:
        """Seconds before the next attempt: the backoff, or what a 429 asked for, though
        never longer than the backoff's ceiling or a request's whole budget."""
        if isinstance(error, Throttled) and error.retry_after is not None:
            return min(error.retry_after, MAX_BACKOFF, self.remote.read_timeout)
        return backoff_delay(attempt, self.remote.backoff)

    # -- the Judge interface ---------------------------------------------------------------

    def _ask(self, body: Mapping[str, Any]) -> Any:
        """One axis's reply: the text, or the top next tokens (distribution scoring)."""
        distribution = self.config.distribution
        return self.complete(body, read_top_logprobs if distribution else read_content)

    def _score_axes(
        self,
        video: Path,
        caption: str,
        axes: list[str],
        criteria: Mapping[str, str] | None,
    ) -> dict[str, Judgment | PhyJudgeError]:
        video_sha = sha256_file(video)  # checks the file first
        self._check_served()
        part = self.video_part(video)
        prompts = {
            axis: self.rubric.render(axis, caption, criteria=(criteria or {}).get(axis))
            for axis in axes
        }
        started = time.perf_counter()
        futures = {
            axis: self._executor.submit(
                self._ask, self.request_body(prompts[axis].system, prompts[axis].user, part, axis)
            )
            for axis in axes
        }
        for future in futures.values():
            future.exception()  # wait for all of them
        # The axes ran at once and waited for each other: each gets its share of the wall
        # time, so that a cache hit never counts more judge-seconds than were spent.
        share = (time.perf_counter() - started) / len(axes)
        results: dict[str, Judgment | PhyJudgeError] = {}
        for axis, future in futures.items():
            extra: dict[str, Any] = {
                "scoring": self.config.scoring,
                "transport": self.plan.transport,
            }
            try:
                reply = future.result()
                fields: dict[str, Any] = {"raw": reply}
                if self.config.distribution:
                    fields = _distribution_fields(reply, axis)
                    extra["digit_mass"] = fields.pop("digit_mass")
            except (JudgeBackendError, JudgeOutputError) as exc:
                results[axis] = exc
                continue
            results[axis] = self._judgment(
                axis,
                video=video,
                video_sha256=video_sha,
                prompt_sha256=prompts[axis].sha256,
                seconds=share,
                caption=caption,
                extra=extra,
                **fields,
            )
        return results

    def _check_served(self) -> None:
        """Ask each server's /v1/models again (one small GET per case): a server that now
        lists another judge fails this case and every later one. A server that does not
        answer is left to the requests' own retries and errors."""
        before = self.plan.served
        if before is None or self.watch.served_change is not None:
            return
        for url in self.remote.urls:
            try:
                models = get_json(
                    self._client,
                    url,
                    MODELS_PATH,
                    budget=self.remote.read_timeout,
                    surface=self.remote.surface,
                )
            except JudgeBackendError:
                continue
            error = served_change(before, models, url, self.remote.surface)
            if error is not None:
                self.watch.served_changed(error)
                return

    def summary(self) -> str | None:
        served = ", ".join(f"{r.url} {r.served}" for r in self.pool.replicas)
        line = (
            f"judge servers: {counted(self.requests, 'request')}, {self.retried} retried; "
            f"answered: {served}"
        )
        return line + self.watch.note()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()
