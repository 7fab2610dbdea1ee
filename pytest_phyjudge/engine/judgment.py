"""Value types shared by every judge: who judged, what was asked, and what came back."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.engine.axes import check_axis

#: Slack for sums of floating-point probabilities (a mean of 1..5 may come out as 5.0000001).
_SLACK = 1e-6


def portable_name(name: str | None) -> str | None:
    """A hub id as it is; a local folder by its last component, so that what names a judge
    is the same on every machine (the same model in another folder is the same judge)."""
    if name is None or not Path(name).is_absolute():
        return name
    return Path(name).name


#: Judge kinds whose scores say nothing about the clips (a random model, canned answers).
STAND_IN_KINDS = ("tiny", "scripted")
#: What a stand-in judge's scores are worth, said wherever they are shown (pytest, the CLI).
STAND_IN_WARNING = "a {kind} test stand-in for PhyJudge: THESE SCORES ARE MEANINGLESS"


def stand_in_notice(kind: str) -> str | None:
    """For a stand-in judge's output (a command's JSON, a server's answers): that its scores
    are meaningless and what they are for; None for a real judge."""
    if kind not in STAND_IN_KINDS:
        return None
    return (
        f"the judge is {STAND_IN_WARNING.format(kind=kind)}; they only check the plumbing "
        "(decoding, prompts, reports), not the clips. Judge with PhyJudge-9B for real scores."
    )


@dataclass(frozen=True)
class JudgeIdentity:
    """Names the judge behind a score, so a score is never separated from its source.

    ``kind`` says what produced the scores: ``local`` (the real model in this process),
    ``tiny`` (a random tiny model, scores meaningless), ``scripted`` (canned scores for
    tests), ``replay`` (judgments read back from a cache) or ``remote``.
    """

    kind: str
    adapter: str
    revision: str | None = None
    base: str | None = None
    adapter_sha256: str | None = None

    def describe(self, *, portable: bool = False) -> str:
        """``adapter@revision on base (kind)``; ``portable``: local folders by their last
        component (reports read on other machines, where this machine's paths mean nothing)."""
        adapter = portable_name(self.adapter) if portable else self.adapter
        base = portable_name(self.base) if portable else self.base
        rev = f"@{self.revision}" if self.revision else ""
        on = f" on {base}" if base else ""
        return f"{adapter}{rev}{on} ({self.kind})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RenderedPrompt:
    """The two texts the judge reads for one axis; the video comes before ``user``."""

    key: str
    system: str
    user: str

    @property
    def sha256(self) -> str:
        """Identifies the prompt text; computable without loading any model."""
        text = json.dumps([self.key, self.system, self.user], ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def messages(self, video: dict[str, Any]) -> list[dict[str, Any]]:
        """Chat messages in the reference order: system, then user = [video, text]."""
        return [
            {"role": "system", "content": [{"type": "text", "text": self.system}]},
            {"role": "user", "content": [video, {"type": "text", "text": self.user}]},
        ]


@dataclass(frozen=True)
class Judgment:
    """One score on one axis of one video, with everything needed to trust or reproduce it.

    ``score`` is the integer 1-5 the judge gave. With distribution scoring, ``probs`` holds
    the probabilities of the digits 1..5 and ``expected`` their mean; otherwise both are None.
    ``greedy`` says how a local greedy reply was obtained: ``verified`` (the expected reply
    teacher-forced, each token the argmax, so exactly greedy's reply) or ``decoded`` (step by
    step); None where nothing was said (distribution scoring, other judges, older caches).
    """

    key: str
    score: int
    raw: str
    video: str
    video_sha256: str
    prompt_sha256: str
    judge: JudgeIdentity
    seconds: float
    caption: str = ""
    probs: tuple[float, ...] | None = None
    expected: float | None = None
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    greedy: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["judge"] = self.judge.to_dict()
        data["probs"] = None if self.probs is None else list(self.probs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Judgment:
        """The inverse of ``to_dict`` (for the cache and for reports read back)."""
        check_judgment_fields(data)
        fields = dict(data)
        fields["judge"] = JudgeIdentity(**fields["judge"])
        if fields.get("probs") is not None:
            fields["probs"] = tuple(fields["probs"])
        return cls(**fields)

    def cli_line(self) -> dict[str, Any]:
        """The reference script's one-line output: key, score, raw."""
        return {"key": self.key, "score": self.score, "raw": self.raw}


@dataclass(frozen=True)
class Completion:
    """A reply to one chat request, with its token counts: what a judge server sends back."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"
    #: The most likely first tokens and their log-probabilities, when they were asked for.
    top_logprobs: tuple[tuple[str, float], ...] | None = None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_judgment_fields(data: Any) -> None:
    """Raise ``InputError`` (a ValueError) naming the first field of a stored or imported
    judgment that no judge could have written, so a bad record is never replayed as a score."""
    if not isinstance(data, dict):
        raise InputError(f"a judgment is a JSON object, not {type(data).__name__}")
    score = data.get("score")
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise InputError(f"'score' is {score!r}; it must be an integer from 1 to 5")
    probs = data.get("probs")
    if probs is not None and (
        not isinstance(probs, (list, tuple))
        or len(probs) != 5
        or not all(_finite(p) and -_SLACK <= p <= 1 + _SLACK for p in probs)
    ):
        raise InputError(f"'probs' is {probs!r}; it must be null or 5 numbers from 0 to 1")
    expected = data.get("expected")
    if expected is not None and not (_finite(expected) and 1 - _SLACK <= expected <= 5 + _SLACK):
        raise InputError(f"'expected' is {expected!r}; it must be null or a number from 1 to 5")
    seconds = data.get("seconds")
    if not (_finite(seconds) and seconds >= 0):
        raise InputError(f"'seconds' is {seconds!r}; it must be a number of seconds, 0 or more")
    key = data.get("key")
    if not isinstance(key, str):
        raise InputError(f"'key' is {key!r}; it must name an axis")
    try:
        check_axis(key)
    except InputError as exc:
        raise InputError(f"'key' is {key!r}, not an axis") from exc
    if not isinstance(data.get("raw"), str):
        raise InputError(f"'raw' is {data.get('raw')!r}; it must be the judge's reply text")
    if data.get("greedy") not in (None, "verified", "decoded"):
        raise InputError(f"'greedy' is {data['greedy']!r}; it must be null, verified or decoded")
    if not isinstance(data.get("judge"), dict):
        raise InputError(f"'judge' is {data.get('judge')!r}; it must be a JSON object")
