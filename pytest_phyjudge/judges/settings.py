"""How to get the judge, parsed once where it comes in: from pytest's options and ini, or from
the ``phyjudge`` command line. Every parser here is an argparse ``type=``, so a bad value
becomes a usage error that names the flag, the value and what would be accepted."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import unquote, urlsplit, urlunsplit

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.engine.adapter import DEFAULT_ADAPTER
from pytest_phyjudge.engine.axes import MAX_SCORE, MIN_SCORE
from pytest_phyjudge.engine.frames import MIN_FRAME_PIXELS
from pytest_phyjudge.engine.video import DEFAULT_FPS, DEFAULT_MAX_PIXELS

Scoring = Literal["greedy", "distribution"]
CacheMode = Literal["use", "refresh", "off", "only"]
#: What a pytest run does with a score below its threshold: fail the item, or record it.
Verdicts = Literal["enforce", "report"]
SCORING_MODES: tuple[Scoring, ...] = get_args(Scoring)
CACHE_MODES: tuple[CacheMode, ...] = get_args(CacheMode)
#: What a judge that fails its canary check does to the run (``--phyjudge-canary-mode``).
CanaryMode = Literal["fail", "warn"]
CANARY_MODES: tuple[CanaryMode, ...] = get_args(CanaryMode)
VERDICT_MODES: tuple[Verdicts, ...] = get_args(Verdicts)

#: ``--phyjudge-judge tiny`` / ``--judge tiny``: the tiny test judge (a CPU dry run).
TINY = "tiny"
#: The folders of the judgment cache and of the tiny judge under pytest's cache dir
#: (``.pytest_cache/d/``), shared by pytest and the ``phyjudge`` command.
CACHE_DIR_NAME = "phyjudge-judgments"
TINY_DIR_NAME = "phyjudge-tiny"
#: The reference script's reply budget.
DEFAULT_MAX_NEW_TOKENS = 64
#: Judge servers: requests in flight, seconds to wait for a reply, retries of a failure.
DEFAULT_CONCURRENCY = 8
DEFAULT_READ_TIMEOUT = 120.0
DEFAULT_RETRIES = 3
#: Alternatives asked for with distribution scoring: vLLM's default ceiling (--max-logprobs).
DEFAULT_TOP_LOGPROBS = 20
#: Clips judged in one batch by an in-process judge: one on a CPU, where a batch gains little.
DEFAULT_BATCH_CLIPS = 1
BATCH_CLIPS_HELP = (
    "clips judged together in one batch by the in-process judge: their video prefixes in one "
    "padded forward pass, then every axis of every clip in one more; the replies are the same "
    f"as one clip at a time (default {DEFAULT_BATCH_CLIPS}; more pays on a GPU)"
)
#: The threshold of an axis that names none.
DEFAULT_MIN_SCORE = 3
DEVICES_HELP = "cpu, cuda, cuda:N, mps or auto"
#: Weight dtypes by the names people write, to torch's names ("auto": by device).
DTYPE_NAMES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "float32": "float32",
    "fp32": "float32",
}
DTYPES = ("auto", *DTYPE_NAMES)

_OBJECT_SPEC = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_DEVICE = re.compile(r"cpu|cuda(?::\d+)?|mps|auto")
_T = TypeVar("_T")


# --------------------------------------------------------------------------- value parsers


def parse_number(
    value: str, convert: Callable[[str], _T], ok: Callable[[_T], bool], what: str
) -> _T:
    """``convert(value)`` when it gives a number that is ``ok``; else a usage error."""
    try:
        number: _T | None = convert(str(value).strip())
    except ValueError:
        number = None
    if number is None or not ok(number):
        raise argparse.ArgumentTypeError(f"{value!r} is not {what}.")
    return number


def parse_positive_int(value: str) -> int:
    return parse_number(value, int, lambda n: n >= 1, "a whole number of at least 1")


def parse_batch_clips(value: str) -> int:
    """How many clips to judge in one batch (``--batch-clips``, ``--phyjudge-batch-clips``)."""
    return parse_number(
        value, int, lambda n: n >= 1, "a number of clips per batch (a whole number, 1 or more)"
    )


def parse_max_pixels(value: str) -> int:
    return parse_number(
        value,
        int,
        lambda n: n >= MIN_FRAME_PIXELS,
        f"a pixel budget for a sampled frame; a frame needs at least {MIN_FRAME_PIXELS} pixels "
        f"(the default is {DEFAULT_MAX_PIXELS}, 360x640)",
    )


def parse_count(value: str) -> int:
    return parse_number(value, int, lambda n: n >= 0, "a whole number of at least 0")


def parse_positive_float(value: str) -> float:
    return parse_number(value, float, lambda n: 0 < n < math.inf, "a finite number greater than 0")


def parse_port(value: str) -> int:
    return parse_number(value, int, lambda n: 1 <= n <= 65535, "a TCP port (1 to 65535)")


def parse_listen_port(value: str) -> int:
    return parse_number(
        value, int, lambda n: 0 <= n <= 65535, "a TCP port (1 to 65535, or 0 for any free one)"
    )


def parse_confidence(value: str) -> float:
    return parse_number(value, float, lambda v: 0 < v < 1, "a confidence in (0, 1), e.g. 0.95")


def parse_min_score(value: str | int) -> int:
    """A whole-number threshold from 1 to 5."""
    return parse_number(
        str(value),
        int,
        lambda n: MIN_SCORE <= n <= MAX_SCORE,
        f"a minimum score; scores are whole numbers from {MIN_SCORE} to {MAX_SCORE}",
    )


def _one_of(value: str, choices: tuple[str, ...], what: str, hint: str) -> str:
    value = value.strip()
    if value in choices:
        return value
    raise argparse.ArgumentTypeError(f"{value!r} is not a {what}; use {hint}.")


def parse_scoring(value: str) -> Scoring:
    hint = "greedy (the reference: parse the reply) or distribution (probabilities of 1-5)"
    return _one_of(value, SCORING_MODES, "scoring mode", hint)  # type: ignore[return-value]


def parse_cache_mode(value: str) -> CacheMode:
    hint = "use (read and record), refresh (judge again), off, or only (replay: never load a model)"
    return _one_of(value, CACHE_MODES, "cache mode", hint)  # type: ignore[return-value]


def parse_canary_mode(value: str) -> CanaryMode:
    hint = "fail (a drifted judge fails every judged item) or warn (judge, and report it)"
    return _one_of(value, CANARY_MODES, "canary mode", hint)  # type: ignore[return-value]


def parse_fraction(value: str) -> float:
    """A share from 0 to 1 (a canary tolerance: the digits that may differ, a distance)."""
    return parse_number(value, float, lambda v: 0 <= v <= 1, "a number from 0 to 1")


def parse_score_diff(value: str) -> float:
    """A difference of two scores on the 1-5 scale: from 0 to 4."""
    return parse_number(value, float, lambda v: 0 <= v <= 4, "a score difference from 0 to 4")


def parse_verdicts(value: str) -> Verdicts:
    hint = (
        "enforce (a score below its threshold fails the item) or report (it is recorded as "
        "'would fail')"
    )
    return _one_of(value, VERDICT_MODES, "verdicts mode", hint)  # type: ignore[return-value]


def parse_dtype(value: str) -> str:
    return _one_of(value, DTYPES, "dtype", f"one of {', '.join(DTYPES)}")


def torch_dtype_name(dtype: str | None) -> str | None:
    """torch's name of ``dtype`` (None for auto: chosen by device); an InputError for a name
    that is no dtype."""
    if dtype is None or dtype == "auto":
        return None
    if dtype not in DTYPE_NAMES:
        raise InputError(f"Unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}.")
    return DTYPE_NAMES[dtype]


def parse_device(value: str) -> str:
    value = value.strip()
    if _DEVICE.fullmatch(value):
        return value
    raise argparse.ArgumentTypeError(f"{value!r} is not a device; use {DEVICES_HELP}.")


def parse_judge_spec(value: str) -> str:
    """``tiny`` or ``package.module:factory``."""
    value = value.strip()
    if value == TINY or _OBJECT_SPEC.fullmatch(value):
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r} names no judge; write '{TINY}' (the tiny test judge) or "
        "'package.module:factory' (a callable that returns a pytest_phyjudge.Judge)."
    )


class ServerURL(str):
    """A judge server's base URL as every message, report and identity shows it: without the
    user name and password a URL may carry (``https://user:pass@host``). Those are kept in
    ``auth`` for the requests alone (HTTP basic authentication), so that a secret given in
    ``--phyjudge-url`` never reaches a printed line, ``scores.json`` or a CI artifact."""

    auth: tuple[str, str] | None

    def __new__(cls, url: str, auth: tuple[str, str] | None = None) -> ServerURL:
        made = super().__new__(cls, url)
        made.auth = auth
        return made


#: ``scheme://user:password@``: the credentials a URL in a message would show.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")


def hide_credentials(text: str) -> str:
    """``text`` with the user name and password of every URL in it shown as ``***`` (a
    command line, a message quoting what was given)."""
    return _USERINFO.sub(r"\1***@", text)


def _server_url(part: str) -> ServerURL:
    try:
        split = urlsplit(part)
    except ValueError:  # e.g. an unclosed IPv6 bracket: http://[::1
        split = urlsplit("")
    if split.scheme not in ("http", "https") or not split.hostname:
        raise InputError(
            f"{hide_credentials(part)!r} is not a judge server URL; write http://HOST:PORT "
            "(several separated by commas), e.g. http://127.0.0.1:8000."
        )
    auth = getattr(part, "auth", None)
    if split.username is not None or split.password is not None:
        auth = (unquote(split.username or ""), unquote(split.password or ""))
        split = split._replace(netloc=split.netloc.rpartition("@")[2])
    base = urlunsplit(split).rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return ServerURL(base, auth)


def parse_urls(text: str | Sequence[str]) -> tuple[ServerURL, ...]:
    """``http://h1:8000,http://h2:8000`` -> base URLs without a trailing ``/`` or ``/v1``, and
    without credentials, which each keeps aside (:class:`ServerURL`)."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    urls: list[ServerURL] = []
    for part in parts:
        if isinstance(part, ServerURL):
            url = part
        elif not part.strip():
            continue
        else:
            url = _server_url(part.strip())
        if url not in urls:
            urls.append(url)
    if not urls:
        raise InputError("No judge server URL given; write http://HOST:PORT[,http://...].")
    return tuple(urls)


def parse_url_list(value: str) -> tuple[ServerURL, ...]:
    """``URL[,URL...]`` of judge servers (argparse ``type=``)."""
    try:
        return parse_urls(value)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_media_root(value: str) -> tuple[Path, str]:
    """``DIR`` or ``DIR=SERVED_DIR``: where videos sit here, and where the servers see them."""
    local, _, served = value.partition("=")
    if not local.strip():
        raise argparse.ArgumentTypeError(
            f"{value!r} names no folder; write DIR, or DIR=SERVED_DIR when the servers see it "
            "under another path."
        )
    folder = Path(local.strip()).expanduser().resolve()
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(
            f"{value!r}: {str(folder)!r} is not a folder on this machine; DIR is where the "
            "videos are here."
        )
    served = served.strip().rstrip("/")
    if served and not served.startswith("/"):
        raise argparse.ArgumentTypeError(
            f"{value!r}: the served folder {served!r} is not an absolute path; write "
            "DIR=SERVED_DIR with SERVED_DIR as the servers see it (e.g. /data/clips)."
        )
    return folder, served or str(folder)


def check_scoring(mode: str) -> Scoring:
    """``mode`` when it is a scoring mode; an InputError that says which there are."""
    if mode not in SCORING_MODES:
        raise InputError(
            f"Unknown scoring mode {mode!r}; use 'greedy' (the reference: parse the generated "
            "reply) or 'distribution' (probabilities of the digits 1-5 after the answer prefix)."
        )
    return mode  # type: ignore[return-value]


# --------------------------------------------------------------------------- surfaces


@dataclass(frozen=True)
class Surface:
    """Where the user set the judge: pytest (``--phyjudge-x``) or the ``phyjudge`` command
    (``--x``). Messages name a setting in this surface's words, so a user is never told to
    pass a flag the command they ran does not have. The flags come from the option table
    (``judges/options.py``); a setting it does not rename is ``prefix`` + its name."""

    name: str
    prefix: str
    #: (setting, flag) pairs where the flag is not ``prefix + setting``.
    renamed: tuple[tuple[str, str], ...] = ()

    def flag(self, setting: str, value: object = None) -> str:
        """The flag that sets ``setting`` here, with ``value`` after it when given."""
        flag = dict(self.renamed).get(setting, self.prefix + setting)
        return flag if value is None else f"{flag} {value}"


#: pytest's surface: every judge setting is ``--phyjudge-<name>`` (ini ``phyjudge_<name>``).
PYTEST_SURFACE = Surface("pytest", "--phyjudge-")


# --------------------------------------------------------------------------- the config

#: The fields of :class:`JudgeConfig` that enter a judgment's cache key, declared once: the
#: judgment cache keys, stores and checks exactly these (``judges/trust.py``).
KEYED_SETTINGS = ("fps", "max_pixels", "max_new_tokens", "scoring")


@dataclass(frozen=True)
class JudgeConfig:
    """How a judge judges, typed, from the plan down into the judge: what the cache keys
    (:data:`KEYED_SETTINGS`) and how the in-process judge splits its work (which does not
    change a reply). ``Judge.settings`` is this config as plain values."""

    fps: float = DEFAULT_FPS
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    scoring: Scoring = "greedy"
    #: In-process judge only: the video's prefix run once for all axes, and the axes'
    #: suffixes as one batch over it (same replies, fewer forward calls).
    share_prefix: bool = True
    batch_axes: bool = True

    def __post_init__(self) -> None:
        check_scoring(self.scoring)

    @property
    def distribution(self) -> bool:
        """Scores read from the digits' probabilities rather than a generated reply."""
        return self.scoring == "distribution"

    def keyed(self) -> dict[str, Any]:
        """The values that enter the cache key, by name (what the store records)."""
        return {name: getattr(self, name) for name in KEYED_SETTINGS}

    def as_settings(self) -> dict[str, Any]:
        """Every field as a plain value (an in-process judge's ``Judge.settings``)."""
        return {**self.keyed(), "share_prefix": self.share_prefix, "batch_axes": self.batch_axes}


#: The keyed settings of a run that sets none: what an export line without its settings (an
#: export of an older version) is checked against.
DEFAULT_KEYED_SETTINGS: dict[str, Any] = JudgeConfig().keyed()


# --------------------------------------------------------------------------- the settings


@dataclass(frozen=True)
class JudgeSettings:
    """Everything that decides which judge a run gets and how it judges; built once, from
    pytest's options or from the command line, then handed to :func:`build_judge`."""

    #: The adapter: a hub id or a folder; its hub revision; another base model.
    adapter: str = DEFAULT_ADAPTER
    revision: str | None = None
    base_model: str | None = None
    #: ``tiny`` or ``package.module:factory`` instead of the adapter.
    judge: str | None = None
    device: str | None = None
    dtype: str | None = None
    attn_implementation: str | None = None
    scoring: Scoring = "greedy"
    fps: float = DEFAULT_FPS
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    #: The judgment cache: its folder (None: no cache at all) and mode.
    cache_dir: Path | None = None
    cache_mode: CacheMode = "use"
    #: A judge identity file (``phyjudge cache export`` writes one) for replay without a model.
    identity_file: Path | None = None
    #: Judge servers instead of a model in this process.
    url: tuple[str, ...] = ()
    remote_identity: Path | None = None
    media_root: tuple[Path, str] | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_READ_TIMEOUT
    retries: int = DEFAULT_RETRIES
    #: Next tokens asked for with distribution scoring on servers (the digits must be among them).
    top_logprobs: int = DEFAULT_TOP_LOGPROBS
    #: Clips judged together in one batch (score-dir and suites; the replies do not change).
    batch_clips: int = DEFAULT_BATCH_CLIPS
    #: Let every pytest-xdist worker load a model of its own (refused by default).
    per_worker_model: bool = False
    #: Where the tiny judge is built (the pytest cache dir, or a temporary folder).
    tiny_folder: Path | None = None
    #: CPU threads for torch in this process (None: torch's default, one per core).
    threads: int | None = None
    #: Whose flags messages name: pytest's (the default) or the ``phyjudge`` command's.
    surface: Surface = field(default=PYTEST_SURFACE, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.url and self.judge:
            raise InputError(
                f"{self.flag('url')} and {self.flag('judge', self.judge)} both choose the "
                "judge; keep one of them."
            )
        if self.identity_file is not None and (self.url or self.judge):
            chosen = self.flag("url") if self.url else self.flag("judge", self.judge)
            raise InputError(
                f"{self.flag('identity', self.identity_file)} and {chosen} both choose the "
                "judge (the identity replays a recorded judge); keep one of them."
            )
        check_scoring(self.scoring)
        if self.max_pixels < MIN_FRAME_PIXELS:
            raise InputError(
                f"max_pixels={self.max_pixels} is below the {MIN_FRAME_PIXELS} pixels a sampled "
                f"frame needs; use at least that (the default is {DEFAULT_MAX_PIXELS})."
            )
        if self.batch_clips < 1:
            raise InputError(
                f"batch_clips={self.batch_clips} judges no clip at all; use 1 or more (clips "
                "judged together in one batch)."
            )
        if self.cache_mode not in CACHE_MODES:
            raise InputError(
                f"Unknown cache mode {self.cache_mode!r}; use {', '.join(CACHE_MODES)}."
            )

    def flag(self, setting: str, value: object = None) -> str:
        """The flag of ``setting`` on the surface these settings came from."""
        return self.surface.flag(setting, value)

    @property
    def config(self) -> JudgeConfig:
        """How the judge judges, typed (what the plan carries into the judge)."""
        return JudgeConfig(
            fps=self.fps,
            max_pixels=self.max_pixels,
            max_new_tokens=self.max_new_tokens,
            scoring=self.scoring,
        )

    @property
    def is_tiny(self) -> bool:
        return self.judge == TINY

    @property
    def factory(self) -> str | None:
        """``package.module:factory`` when a user factory makes the judge."""
        return self.judge if self.judge and self.judge != TINY else None

    def replace(self, **changes: Any) -> JudgeSettings:
        return replace(self, **changes)

    def describe_source(self) -> str:
        """Where the judge comes from, in a few words (the report header)."""
        if self.url:
            return f"served at {', '.join(self.url)}"
        if self.judge:
            return f"{self.judge} ({self.flag('judge')})"
        return self.adapter + (f"@{self.revision}" if self.revision else "")

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for reports."""
        data: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            if name == "surface":
                continue
            value = getattr(self, name)
            if isinstance(value, Path):
                value = str(value)
            elif name == "url":
                value = list(value)
            elif name == "media_root" and value is not None:
                value = f"{value[0]}={value[1]}"
            data[name] = value
        return data
