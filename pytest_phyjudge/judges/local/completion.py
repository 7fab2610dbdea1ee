"""One chat request on the in-process judge, as a judge server runs it (``phyjudge serve``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.engine.judgment import Completion
from pytest_phyjudge.engine.video import decode_video

if TYPE_CHECKING:
    from pytest_phyjudge.judges.local.judge import LocalJudge


def complete(
    judge: LocalJudge,
    messages: list[dict[str, Any]],
    *,
    max_new_tokens: int | None = None,
    prefix: str = "",
    top_logprobs: int = 0,
) -> Completion:
    """``LocalJudge.complete``: the greedy reply to ``messages``, or the top next tokens."""
    import torch

    elements = [
        part
        for message in messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "video"
    ]
    if len(elements) != 1:
        raise InputError(
            f"The messages hold {len(elements)} videos; the judge reads exactly one per "
            "prompt. Send one video part in the user message."
        )
    (element,) = elements
    decoded = decode_video(
        element["video"],
        fps=float(element.get("fps", judge.config.fps)),
        max_pixels=int(element.get("max_pixels", judge.config.max_pixels)),
    )
    inputs = judge.encode(decoded, judge.chat_text(messages) + prefix)
    prompt_tokens = int(inputs["input_ids"].shape[1])
    tokenizer = judge.processor.tokenizer
    if top_logprobs > 0:
        with torch.inference_mode():
            logits = judge.model(**inputs, logits_to_keep=1).logits[0, -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        values, ids = torch.topk(logprobs, min(top_logprobs, logprobs.shape[0]))
        top = tuple(
            (tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids, strict=True)
        )
        return Completion(top[0][0], prompt_tokens, 1, "length", top_logprobs=top)
    new_tokens = judge.generate_ids(inputs, max_new_tokens=max_new_tokens)
    budget = max_new_tokens or judge.config.max_new_tokens
    return Completion(
        text=tokenizer.decode(new_tokens, skip_special_tokens=True),
        prompt_tokens=prompt_tokens,
        completion_tokens=int(new_tokens.shape[0]),
        finish_reason="length" if int(new_tokens.shape[0]) >= budget else "stop",
    )
