"""Every axis of one clip in one batched pass over the shared video prefix: digit probabilities
read at each row's own answer position, and greedy replies verified instead of decoded."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_phyjudge.engine.parse import answer_prefix

#: How a greedy reply was obtained: the expected reply teacher-forced, every token of it the
#: argmax where it stands (so it IS greedy's reply), or real step-by-step decoding.
VERIFIED = "verified"
DECODED = "decoded"

#: ``feed(rows, keep)``: run each row's tokens after what it has seen so far, in one call,
#: and return per row the logits at the ``keep`` indices of its new tokens (RowBatch.feed).
Feed = Callable[[Sequence[Sequence[int]], Sequence[Sequence[int]]], list[Any]]


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
    feed: Feed, prompts: Mapping[str, Sequence[int]], digits: Sequence[int]
) -> dict[str, tuple[tuple[float, ...], float]]:
    """Per axis, the digit probabilities after its prompt (which ends in the answer prefix):
    one forward call for every axis."""
    rows = list(prompts.values())
    logits = feed(rows, [[len(r) - 1] for r in rows])
    return {axis: digit_probs(lg[0], digits) for axis, lg in zip(prompts, logits, strict=True)}


def verified_replies(
    feed: Feed,
    prompts: Mapping[str, Sequence[int]],
    encode: Callable[[str], list[int]],
    tokens: ReplyTokens,
) -> dict[str, list[int] | None]:
    """Per axis, greedy's reply token ids (end of turn included) where the expected reply is
    verified, or None where any forced token is not the argmax (that axis must be decoded).

    Two forward calls: the prompts with the answer prefix forced, which verifies the prefix
    and picks the digit; then the digit and closing brace, which must lead to end of turn.
    """
    import torch

    heads = {axis: encode(answer_prefix(axis)) for axis in prompts}
    rows = [list(p) + heads[a] for a, p in prompts.items()]
    keep = [list(range(len(p) - 1, len(r))) for p, r in zip(prompts.values(), rows, strict=True)]
    first = feed(rows, keep)
    tails: dict[str, list[int]] = {}
    for axis, logits in zip(prompts, first, strict=True):
        picked = torch.argmax(logits, dim=-1).tolist()
        head, digit = heads[axis], picked[-1]
        if picked[:-1] != head or digit not in tokens.digits:
            continue
        reply = encode(expected_reply(axis, list(tokens.digits).index(digit) + 1))
        fits = len(reply) + 1 <= tokens.budget  # a longer reply would have been cut
        if fits and reply[: len(head)] == head and reply[len(head)] == digit:
            tails[axis] = reply[len(head) :]
    found: dict[str, list[int] | None] = dict.fromkeys(prompts)
    if not tails:
        return found
    # Rows with nothing to verify still take part (one pad-free token), to keep one call.
    order = list(prompts)
    second = feed(
        [tails.get(a, [tokens.digits[0]]) for a in order],
        [list(range(len(tails.get(a, [0])))) for a in order],
    )
    for axis, logits in zip(order, second, strict=True):
        if axis not in tails:
            continue
        picked = torch.argmax(logits, dim=-1).tolist()
        tail = tails[axis]
        if picked[:-1] == tail[1:] and picked[-1] in tokens.stops:
            found[axis] = heads[axis] + tail + [picked[-1]]
    return found
