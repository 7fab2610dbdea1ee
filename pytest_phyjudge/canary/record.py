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
from pytest_phyjudge.canary.model import SETTING_NAMES, Reading, Setup
from pytest_phyjudge.engine.judgment import Judgment, portable_name
from pytest_phyjudge.judges.base import ClipRequest, Judge
from pytest_phyjudge.judges.factory import build_judge
from pytest_phyjudge.judges.local.judge import LocalJudge
from pytest_phyjudge.judges.settings import JudgeSettings

#: The libraries whose versions a canary records, where installed.
PACKAGES = ("pytest-phyjudge", "torch", "transformers", "peft", "vllm")


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


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def describe_setup(judge: Judge, settings: JudgeSettings) -> Setup:
    """What ``judge`` says it is: identity, keyed settings, the server's self-description
    (remote judges: the model /v1/models lists, and the model and ``system_fingerprint`` its
    replies named), device and dtype where known, library versions."""
    keyed = settings.config.keyed()
    server = None
    plan = getattr(judge, "plan", None)
    served = getattr(plan, "served", None)
    watch = getattr(judge, "watch", None)
    if served is not None or getattr(plan, "remote", None) is not None:
        first = getattr(watch, "first", None)
        server = {
            "model": getattr(served, "name", None) or getattr(plan, "model", None),
            "identity": None if served is None else served.identity.to_dict(),
            "answered_by": None if first is None else _plain(first.model),
            "system_fingerprint": None if first is None else _plain(first.fingerprint),
        }
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
        server=server,
        device=None if device is None else str(device),
        dtype=None if dtype is None else str(dtype).removeprefix("torch."),
        versions=versions(),
    )


def _plain(value: Any) -> str | None:
    return None if value is None else str(value)


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
    """``asks`` judged greedy and then with the digit distribution, on judges made from
    ``settings`` with the cache off: one in-process model serves both passes (its scoring
    switched between them), any other judge is made again for the second."""
    started = clock()
    passes: dict[str, list[Judgment | PhyJudgeError]] = {}
    judge = build_judge(settings.replace(scoring="greedy", cache_mode="off", cache_dir=None))
    try:
        prompts = [judge.rubric.render(a.axis, a.caption).sha256 for a in asks]
        passes["greedy"] = _judge_pass(judge, asks)
        setup = describe_setup(judge, settings)
        if isinstance(judge, LocalJudge):
            # Its scoring is read on every call: the model already loaded serves both passes
            # (loading PhyJudge-9B twice would cost minutes).
            judge.config = replace(judge.config, scoring="distribution")
        else:
            judge.close()
            judge = build_judge(
                settings.replace(scoring="distribution", cache_mode="off", cache_dir=None)
            )
        passes["distribution"] = _judge_pass(judge, asks)
    finally:
        judge.close()
    answers = []
    for ask, greedy, dist, prompt_sha in zip(
        asks, passes["greedy"], passes["distribution"], prompts, strict=True
    ):
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
        answers.append(Answer(Reading(reply, digit, probs, expected), prompt_sha))
    return Observation(tuple(answers), setup, calls=2 * len(asks), seconds=clock() - started)
