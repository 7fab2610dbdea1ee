"""Judging canary items: each (clip, caption, axis) twice, greedy and with the digit
distribution, on judges made with the cache off (a canary is never answered from the cache);
and what the judge says of itself (identity, server, device, dtype, library versions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError, JudgeOutputError, PhyJudgeError
from pytest_phyjudge._fields import server_text
from pytest_phyjudge.canary.compare import Tolerances, Verdict, compare
from pytest_phyjudge.canary.model import PACKAGES, SETTING_NAMES, CanaryFile, Reading, Setup
from pytest_phyjudge.engine.judgment import Judgment, portable_name
from pytest_phyjudge.judges.base import ClipRequest, Judge
from pytest_phyjudge.judges.cache.judge import CachedJudge
from pytest_phyjudge.judges.factory import build_judge
from pytest_phyjudge.judges.settings import JudgeConfig, JudgeSettings


@dataclass(frozen=True)
class Ask:
    """One canary item to judge: the clip here, its caption and axis."""

    clip: Path
    caption: str
    axis: str


@dataclass(frozen=True)
class Answer:
    """What the judge answered one item: the reading and the prompt's sha256."""

    reading: Reading
    prompt_sha256: str


@dataclass(frozen=True)
class Observation:
    """A judge's answers to canary items, who it said it was, and how many calls it took."""

    answers: tuple[Answer, ...]
    setup: Setup
    calls: int
    seconds: float

    def compared_with(self, canaries: CanaryFile, tolerances: Tolerances) -> Verdict:
        """How these answers hold against the recorded ones (the check's one verdict, for
        pytest and the command alike)."""
        return compare(
            canaries.items,
            [answer.reading for answer in self.answers],
            [answer.prompt_sha256 for answer in self.answers],
            canaries.setup,
            self.setup,
            tolerances,
        )


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def server_identity(judge: Judge) -> dict[str, Any] | None:
    """What a judge server says of itself (None for a judge in this process, or one not
    loaded yet): the model /v1/models lists and the judge it names there, and the model and
    vLLM's ``system_fingerprint`` that the run's first reply named (None before any reply)."""
    if isinstance(judge, CachedJudge):
        inner = judge.loaded
        if inner is None:
            return None
        judge = inner
    plan = getattr(judge, "plan", None)
    served = getattr(plan, "served", None)
    if served is None and getattr(plan, "remote", None) is None:
        return None
    first = getattr(getattr(judge, "watch", None), "first", None)
    return {
        "model": server_text(getattr(served, "name", None) or getattr(plan, "model", None)),
        "identity": None if served is None else served.identity.to_dict(),
        "answered_by": None if first is None else server_text(first.model),
        "system_fingerprint": None if first is None else server_text(first.fingerprint),
    }


def describe_setup(judge: Judge, settings: JudgeSettings) -> Setup:
    """What ``judge`` says it is: identity, keyed settings, the server's self-description
    (:func:`server_identity`), device and dtype where known, library versions."""
    keyed = settings.config.keyed()
    model = getattr(judge, "model", None)
    dtype = getattr(model, "dtype", None) or settings.dtype
    device = getattr(judge, "device", None) or settings.device
    identity = judge.identity
    # A local folder by its last component: the same judge in another folder is the same.
    identity = replace(
        identity, adapter=portable_name(identity.adapter), base=portable_name(identity.base)
    )
    return Setup(
        judge=identity,
        settings={name: keyed[name] for name in SETTING_NAMES},
        server=server_identity(judge),
        device=None if device is None else str(device),
        dtype=None if dtype is None else str(dtype).removeprefix("torch."),
        versions=versions(),
    )


def _judge_pass(judge: Judge, asks: Sequence[Ask]) -> list[Judgment | PhyJudgeError]:
    """Every ask judged, a clip's axes in one request (as score-dir asks them)."""
    by_clip: dict[tuple[Path, str], list[int]] = {}
    for index, ask in enumerate(asks):
        by_clip.setdefault((ask.clip, ask.caption), []).append(index)
    requests = [
        ClipRequest(clip, caption, [asks[i].axis for i in indices])
        for (clip, caption), indices in by_clip.items()
    ]
    results: list[Judgment | PhyJudgeError | None] = [None] * len(asks)
    for outcomes, indices in zip(judge.score_clips(requests), by_clip.values(), strict=True):
        for index in indices:
            results[index] = outcomes[asks[index].axis]
    return [r for r in results if r is not None]


def _failed(ask: Ask, outcome: PhyJudgeError) -> InputError:
    return InputError(
        f"The canary clip {ask.clip.name!r} could not be judged on {ask.axis!r}: {outcome} "
        "A canary is a clip the judge reads; choose clips it can judge."
    )


def observe(
    settings: JudgeSettings,
    asks: Sequence[Ask],
    *,
    clock: Callable[[], float],
) -> Observation:
    """``asks`` judged greedy and then with the digit distribution (:func:`observe_judge`) on
    a judge made from ``settings`` with the cache off, closed after."""
    judge = build_judge(settings.replace(scoring="greedy", cache_mode="off", cache_dir=None))
    try:
        return observe_judge(judge, settings, asks, clock=clock)
    finally:
        judge.close()


def observe_judge(
    judge: Judge,
    settings: JudgeSettings,
    asks: Sequence[Ask],
    *,
    clock: Callable[[], float],
) -> Observation:
    """``asks`` judged greedy and then with the digit distribution on ``judge`` itself (a
    judge behind no cache: a canary is never answered from it). A judge whose scoring is read
    on every call (in this process, or on servers) is switched between the passes and back
    after, so the model already loaded serves both (loading PhyJudge-9B twice would cost
    minutes); any other judge (a scripted one, a user's) answers both passes as it is."""
    started = clock()
    config = getattr(judge, "config", None)
    switch = isinstance(config, JudgeConfig)
    prompts = [judge.rubric.render(a.axis, a.caption).sha256 for a in asks]
    try:
        if switch:
            judge.config = replace(config, scoring="greedy")  # type: ignore[attr-defined]
        greedy = _judge_pass(judge, asks)
        setup = describe_setup(judge, settings)
        if switch:
            judge.config = replace(config, scoring="distribution")  # type: ignore[attr-defined]
        dist = _judge_pass(judge, asks)
    finally:
        if switch:
            judge.config = config  # type: ignore[attr-defined]
    answers = tuple(
        _answer(ask, g, d, sha) for ask, g, d, sha in zip(asks, greedy, dist, prompts, strict=True)
    )
    return Observation(answers, setup, calls=2 * len(asks), seconds=clock() - started)


def _answer(
    ask: Ask,
    greedy: Judgment | PhyJudgeError,
    dist: Judgment | PhyJudgeError,
    prompt_sha: str,
) -> Answer:
    """One item's reading from its two judgments; a judgment that failed for another reason
    than an unreadable reply is an InputError naming the clip."""
    if isinstance(greedy, JudgeOutputError):
        reply, digit = greedy.raw, None
    elif isinstance(greedy, PhyJudgeError):
        raise _failed(ask, greedy)
    else:
        reply, digit = greedy.raw, greedy.score
    if isinstance(dist, JudgeOutputError):
        probs, expected = None, None
    elif isinstance(dist, PhyJudgeError):
        raise _failed(ask, dist)
    else:
        probs = None if dist.probs is None else tuple(float(p) for p in dist.probs)
        expected = float(dist.expected if dist.expected is not None else dist.score)
    return Answer(Reading(reply, digit, probs, expected), prompt_sha)
