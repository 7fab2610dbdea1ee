"""The real judge in this process: base model + PEFT adapter, run the reference script's way."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_phyjudge._exceptions import InputError, JudgeLoadError, JudgeOutputError
from pytest_phyjudge.engine.judgment import Completion, Judgment
from pytest_phyjudge.engine.parse import answer_prefix, distribution_fields
from pytest_phyjudge.engine.video import DecodedVideo, decode_video, sha256_file, video_element
from pytest_phyjudge.judges.axes_batch import (
    DECODED,
    VERIFIED,
    ReplyTokens,
    batched_distribution,
    digit_probs,
    verified_replies,
)
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.judges.rows import Prefix, RowBatch

if TYPE_CHECKING:
    from pytest_phyjudge.judges.loading import JudgePlan

#: Everything up to this token is the same for every axis of one video.
VISION_END = "<|vision_end|>"


@dataclass(frozen=True)
class _SharedPrefix:
    """The video prefix run once: its cache (batch 1), its inputs, where it ends in the chat
    text, and the rotary offsets the prefill set."""

    prefix: Prefix
    inputs: Any
    cut: int
    rope_deltas: Any


class LocalJudge(Judge):
    """PhyJudge run in-process with transformers + peft: the video prefix once, then every
    axis in one batch, greedy replies verified (or decoded where they do not verify)."""

    def __init__(self, model: Any, processor: Any, *, plan: JudgePlan, device: str) -> None:
        self.model = model
        self.processor = processor
        self.plan = plan
        self.adapter = plan.adapter
        self.rubric = plan.rubric
        self.identity = plan.identity
        self.settings = dict(plan.settings)
        self.device = device

    # -- one video -------------------------------------------------------------------------

    def _chat_text(self, messages: list[dict[str, Any]]) -> str:
        return self.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )

    def _encode(self, decoded: DecodedVideo, text: str) -> Any:
        """Token ids and video tensors for ``text``, whose video placeholder gets expanded."""
        inputs = self.processor(
            text=[text],
            videos=[decoded.frames],
            video_metadata=[decoded.metadata],
            do_resize=False,
            do_sample_frames=False,
            cap_pixels_per_frame=True,  # frames are already sized by qwen-vl-utils
            return_tensors="pt",
        )
        return inputs.to(self.model.device)

    def _generate_ids(
        self, inputs: Any, cache: Any = None, max_new_tokens: int | None = None
    ) -> Any:
        """Greedy decoding, as the reference script does; ``cache`` holds an already-run prefix.
        Returns the new token ids."""
        import torch

        extra = {} if cache is None else {"cache": cache}
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                **extra,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                max_new_tokens=max_new_tokens or self.settings["max_new_tokens"],
            )
        return out[0, inputs["input_ids"].shape[1] :]

    def _generate(self, inputs: Any, cache: Any = None) -> str:
        new_tokens = self._generate_ids(inputs, cache)
        return self.processor.tokenizer.decode(new_tokens, skip_special_tokens=True)

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        max_new_tokens: int | None = None,
        prefix: str = "",
        top_logprobs: int = 0,
    ) -> Completion:
        """The greedy reply to chat ``messages`` that hold one video element (qwen-vl-utils
        form: ``{"type": "video", "video": path, "fps": ..., "max_pixels": ...}``).

        This is what a judge server runs for one request. For the messages ``score`` builds,
        the reply is token for token the one ``score`` parses. ``prefix`` continues the
        assistant's turn from that text; ``top_logprobs`` > 0 returns the most likely
        next tokens with their log-probabilities and generates that one token (what
        distribution scoring reads).
        """
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
            fps=float(element.get("fps", self.settings["fps"])),
            max_pixels=int(element.get("max_pixels", self.settings["max_pixels"])),
        )
        inputs = self._encode(decoded, self._chat_text(messages) + prefix)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        tokenizer = self.processor.tokenizer
        if top_logprobs > 0:
            with torch.inference_mode():
                logits = self.model(**inputs, logits_to_keep=1).logits[0, -1].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            values, ids = torch.topk(logprobs, min(top_logprobs, logprobs.shape[0]))
            top = tuple(
                (tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids, strict=True)
            )
            return Completion(top[0][0], prompt_tokens, 1, "length", top_logprobs=top)
        new_tokens = self._generate_ids(inputs, max_new_tokens=max_new_tokens)
        budget = max_new_tokens or self.settings["max_new_tokens"]
        return Completion(
            text=tokenizer.decode(new_tokens, skip_special_tokens=True),
            prompt_tokens=prompt_tokens,
            completion_tokens=int(new_tokens.shape[0]),
            finish_reason="length" if int(new_tokens.shape[0]) >= budget else "stop",
        )

    def _rope_holder(self) -> Any:
        """The inner Qwen model, which keeps the multimodal rotary offsets between calls."""
        return self.model.get_base_model().model

    def _prefix(self, decoded: DecodedVideo, texts: dict[str, str]) -> _SharedPrefix | None:
        """Run [system + video] once (None when some axis's text does not start with it).

        The rotary offsets (``rope_deltas``) that the video prefill sets are kept, to be
        restored before each decoded axis; the cache is only ever copied, never cropped, since
        the linear-attention layers' recurrent state cannot be rolled back.
        """
        import torch

        first = next(iter(texts.values()))
        cut = first.index(VISION_END) + len(VISION_END)
        if not all(t.startswith(first[:cut]) for t in texts.values()):  # pragma: no cover
            return None  # a template with text before the video
        inputs = self._encode(decoded, first[:cut])
        with torch.inference_mode():
            # Only the cache is wanted: logits for one position, not the whole prefix.
            out = self.model(**inputs, use_cache=True, logits_to_keep=1)
        cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        rope_deltas = self._rope_holder().rope_deltas.clone()
        prefix = Prefix(cache, int(inputs["input_ids"].shape[1]), int(rope_deltas.flatten()[0]))
        return _SharedPrefix(prefix, inputs, cut, rope_deltas)

    def _axis_inputs(self, shared: _SharedPrefix, text: str) -> tuple[dict[str, Any], Any]:
        """One axis's full inputs and a fresh copy of the prefix cache, ready to decode."""
        import copy

        import torch

        suffix = self.processor.tokenizer(
            text[shared.cut :], add_special_tokens=False, return_tensors="pt"
        )
        suffix_ids = suffix["input_ids"].to(self.model.device)
        ids = torch.cat([shared.inputs["input_ids"], suffix_ids], dim=1)
        mm_types = torch.cat(
            [shared.inputs["mm_token_type_ids"], torch.zeros_like(suffix_ids)], dim=1
        )
        inputs = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "mm_token_type_ids": mm_types,
        }
        self._rope_holder().rope_deltas = shared.rope_deltas.clone()
        return inputs, copy.deepcopy(shared.prefix.cache)

    def _batched(
        self, shared: _SharedPrefix, texts: dict[str, str], distribution: bool
    ) -> dict[str, Any]:
        """Every axis in one batched pass over the prefix (see judges/axes_batch.py); greedy
        replies that cannot be verified are decoded, that axis alone."""
        tokenizer = self.processor.tokenizer

        def encode(text: str) -> list[int]:
            return tokenizer(text, add_special_tokens=False)["input_ids"]

        prompts = {axis: encode(text[shared.cut :]) for axis, text in texts.items()}
        config = self.model.generation_config
        pad = config.pad_token_id if config.pad_token_id is not None else 0
        batch = RowBatch(self.model, shared.prefix, len(prompts), pad_id=pad)
        if distribution:
            return batched_distribution(batch.feed, prompts, self._digit_ids())
        stops = config.eos_token_id
        stops = [stops] if isinstance(stops, int) else list(stops or [])
        budget = self.settings["max_new_tokens"]
        reply = ReplyTokens(self._digit_ids(), stops, budget)
        found = verified_replies(batch.feed, prompts, encode, reply)
        del batch  # its expanded cache, before any axis is decoded
        return {
            axis: (self._generate(*self._axis_inputs(shared, texts[axis])), DECODED)
            if ids is None
            else (tokenizer.decode(ids, skip_special_tokens=True), VERIFIED)
            for axis, ids in found.items()
        }

    def _digit_probs(self, inputs: Any, cache: Any = None) -> tuple[tuple[float, ...], float]:
        """Probabilities of the digits 1..5 as the next token (renormalised over the five),
        and the share of the whole next-token distribution that the five digits hold."""
        import torch

        with torch.inference_mode():
            if cache is None:
                out = self.model(**inputs, logits_to_keep=1)
            else:
                seen = cache.get_seq_length()
                out = self.model(
                    input_ids=inputs["input_ids"][:, seen:], cache=cache, logits_to_keep=1
                )
        return digit_probs(out.logits[0, -1], self._digit_ids())

    def _digit_ids(self) -> list[int]:
        tokenizer = self.processor.tokenizer
        ids = [tokenizer(str(d), add_special_tokens=False)["input_ids"] for d in range(1, 6)]
        if any(len(i) != 1 for i in ids):  # pragma: no cover - true of every Qwen tokenizer
            raise JudgeLoadError("distribution scoring needs the digits 1-5 as single tokens")
        return [i[0] for i in ids]

    def _replies(self, decoded: DecodedVideo, texts: dict[str, str]) -> dict[str, Any]:
        """Per axis: (greedy reply, VERIFIED or DECODED), or (probs, mass) with distribution
        scoring."""
        distribution = self.settings["scoring"] == "distribution"

        def step(inputs: Any, cache: Any = None) -> Any:
            if distribution:
                return self._digit_probs(inputs, cache)
            return self._generate(inputs, cache), DECODED

        shared = None
        if len(texts) > 1 and self.settings["share_prefix"]:
            shared = self._prefix(decoded, texts)
        if shared is None:
            return {axis: step(self._encode(decoded, text)) for axis, text in texts.items()}
        if self.settings.get("batch_axes", True):
            return self._batched(shared, texts, distribution)
        return {axis: step(*self._axis_inputs(shared, text)) for axis, text in texts.items()}

    def _score_axes(
        self,
        video: Path,
        caption: str,
        axes: list[str],
        criteria: Mapping[str, str] | None,
    ) -> dict[str, Judgment | JudgeOutputError]:
        fps, max_pixels = self.settings["fps"], self.settings["max_pixels"]
        distribution = self.settings["scoring"] == "distribution"
        video_sha = sha256_file(video)
        decoded = decode_video(video, fps=fps, max_pixels=max_pixels)
        element = video_element(video, fps=fps, max_pixels=max_pixels)
        texts, prompt_sha = {}, {}
        for axis in axes:
            prompt = self.rubric.render(axis, caption, criteria=(criteria or {}).get(axis))
            texts[axis] = self._chat_text(prompt.messages(element))
            prompt_sha[axis] = prompt.sha256
        asked = {a: t + answer_prefix(a) if distribution else t for a, t in texts.items()}
        started = time.perf_counter()
        replies = self._replies(decoded, asked)
        seconds = (time.perf_counter() - started) / len(axes)
        results: dict[str, Judgment | JudgeOutputError] = {}
        for axis, reply in replies.items():
            extra: dict[str, Any] = {"scoring": self.settings["scoring"]}
            if distribution:
                probs, extra["digit_mass"] = reply
                fields = distribution_fields(probs, axis)
            else:
                fields = {"raw": reply[0], "greedy": reply[1]}
            results[axis] = self._judgment(
                axis,
                video=video,
                video_sha256=video_sha,
                prompt_sha256=prompt_sha[axis],
                seconds=seconds,
                caption=caption,
                extra=extra,
                **fields,
            )
        return results

    def close(self) -> None:
        """Drop the model and free accelerator memory."""
        if getattr(self, "model", None) is None:
            return
        self.model = None
        self.processor = None
        import gc

        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - a loaded model implies torch
            pass
