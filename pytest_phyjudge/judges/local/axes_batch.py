"""Every axis of one clip (or of several clips) in one batched pass over the shared video
prefixes: digit probabilities read at each row's own answer position, and greedy replies
verified instead of decoded.

Rows are keyed by axis name, or by ``(clip, axis)`` when several clips share the batch."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pytest_phyjudge.engine.parse import answer_prefix

#: How a greedy reply was obtained: the expected reply teacher-forced, every token of it the
#: argmax where it stands (so it IS greedy's reply), or real step-by-step decoding.
VERIFIED = "verified"
DECODED = "decoded"

#: ``feed(rows, keep)``: run each row's tokens after what it has seen so far, in one call,
#: and return per row the logits at the ``keep`` indices of its new tokens (RowBatch.feed).
Feed = Callable[[Sequence[Sequence[int]], Sequence[Sequence[int]]], list[Any]]
#: A row's key: its axis, or (clip index, axis).
RowKey = TypeVar("RowKey", str, tuple[int, str])


def axis_of(key: str | tuple[int, str]) -> str:
    """The axis a row judges, from its key."""
    return key if isinstance(key, str) else key[1]


@dataclass(frozen=True)
class ReplyTokens:
    """What greedy decoding is checked against, as token ids of the chat's tokenizer."""

    digits: Sequence[int]  # the ids of "1".."5"
    stops: Collection[int]  # end-of-turn ids that stop generation
    budget: int  # max_new_tokens: a reply longer than this would have been cut


def expected_reply(axis: str, digit: int) -> str:
    """The reply the judge is trained to give: ``{"gravity": 4}``."""
    return f"{answer_prefix(axis)}{digit}}}"


def digit_probs(logits: Any, digits: Sequence[int]) -> tuple[tuple[float, ...], float]:
    """The digits 1..5's probabilities as the next token (renormalised over the five), and
    the share of the whole next-token distribution that they hold."""
    import torch

    everything = torch.softmax(logits.float(), dim=-1)
    picked = everything[list(digits)]
    return tuple(float(p) for p in picked / picked.sum()), float(picked.sum())


def batched_distribution(
    feed: Feed, prompts: Mapping[RowKey, Sequence[int]], digits: Sequence[int]
) -> dict[RowKey, tuple[tuple[float, ...], float]]:
    """Per axis, the digit probabilities after its prompt (which ends in the answer prefix):
    one forward call for every axis."""
    rows = list(prompts.values())
    logits = feed(rows, [[len(r) - 1] for r in rows])
    return {key: digit_probs(lg[0], digits) for key, lg in zip(prompts, logits, strict=True)}


def verified_replies(
    feed: Feed,
    prompts: Mapping[RowKey, Sequence[int]],
    encode: Callable[[str], list[int]],
    tokens: ReplyTokens,
) -> dict[RowKey, list[int] | None]:
    """Per row, greedy's reply token ids (end of turn included) where the expected reply is
    verified, or None where any forced token is not the argmax (that row must be decoded).

    Two forward calls: the prompts with the answer prefix forced, which verifies the prefix
    and picks the digit; then the digit and closing brace, which must lead to end of turn.
    """
    import torch

    heads = {key: encode(answer_prefix(axis_of(key))) for key in prompts}
    rows = [list(p) + heads[a] for a, p in prompts.items()]
    keep = [list(range(len(p) - 1, len(r))) for p, r in zip(prompts.values(), rows, strict=True)]
    first = feed(rows, keep)
    tails: dict[RowKey, list[int]] = {}
    for key, logits in zip(prompts, first, strict=True):
        picked = torch.argmax(logits, dim=-1).tolist()
        head, digit = heads[key], picked[-1]
        if picked[:-1] != head or digit not in tokens.digits:
            continue
        reply = encode(expected_reply(axis_of(key), list(tokens.digits).index(digit) + 1))
        fits = len(reply) + 1 <= tokens.budget  # a longer reply would have been cut
        if fits and reply[: len(head)] == head and reply[len(head)] == digit:
            tails[key] = reply[len(head) :]
    found: dict[RowKey, list[int] | None] = dict.fromkeys(prompts)
    if not tails:
        return found
    # Rows with nothing to verify still take part (one pad-free token), to keep one call.
    order = list(prompts)
    second = feed(
        [tails.get(a, [tokens.digits[0]]) for a in order],
        [list(range(len(tails.get(a, [0])))) for a in order],
    )
    for key, logits in zip(order, second, strict=True):
        if key not in tails:
            continue
        picked = torch.argmax(logits, dim=-1).tolist()
        tail = tails[key]
        if picked[:-1] == tail[1:] and picked[-1] in tokens.stops:
            found[key] = heads[key] + tail + [picked[-1]]
    return found
