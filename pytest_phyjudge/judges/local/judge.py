"""The real judge in this process: base model + PEFT adapter, run the reference script's way."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pytest_phyjudge._exceptions import InputError, JudgeLoadError
from pytest_phyjudge.engine.judgment import Completion
from pytest_phyjudge.engine.parse import answer_prefix, distribution_fields
from pytest_phyjudge.engine.video import DecodedVideo, decode_video, sha256_file, video_element
from pytest_phyjudge.judges.base import ClipOutcomes, ClipRequest, Judge
from pytest_phyjudge.judges.local import completion
from pytest_phyjudge.judges.local.axes_batch import (
    DECODED,
    VERIFIED,
    ReplyTokens,
    batched_distribution,
    digit_probs,
    verified_replies,
)
from pytest_phyjudge.judges.local.rows import Prefix, RowBatch, prefill
from pytest_phyjudge.judges.settings import JudgeConfig

if TYPE_CHECKING:
    from pytest_phyjudge.judges.local.loading import JudgePlan

#: Everything up to this token is the same for every axis of one video.
VISION_END = "<|vision_end|>"


@dataclass(frozen=True)
class SharedPrefix:
    """A video prefix run once (batch 1 when decoded from), the processor's inputs for it,
    and where it ends in the chat text."""

    prefix: Prefix
    inputs: Any
    cut: int


@dataclass(frozen=True)
class PreparedClip:
    """One clip ready to judge: its decoded video and, per axis, the chat text (ending in the
    answer prefix under distribution scoring) and the prompt's hash."""

    video: Path
    caption: str
    video_sha256: str
    decoded: DecodedVideo
    texts: dict[str, str]
    prompt_sha256: dict[str, str]


class LocalJudge(Judge):
    """PhyJudge run in-process with transformers + peft: the video prefix once, then every
    axis in one batch, greedy replies verified (or decoded where they do not verify).

    Besides the Judge interface, a small public one for the code that runs the same model
    its own way: one chat request (``completion.py``) uses ``chat_text``, ``encode`` and
    ``generate_ids``; the tiny judge's reply-format training (``judges/tiny/training``) uses
    ``prepare``, ``run_prefix``, ``token_encoder``, ``pad_id`` and ``digit_ids``. Everything
    with a leading underscore is this class's own.
    """

    def __init__(self, model: Any, processor: Any, *, plan: JudgePlan, device: str) -> None:
        self.model = model
        self.processor = processor
        self.plan = plan
        self.adapter = plan.adapter
        self.rubric = plan.rubric
        self.identity = plan.identity
        #: How it judges, typed; tests and benchmarks may swap it (``dataclasses.replace``).
        self.config: JudgeConfig = plan.config
        self.device = device

    @property
    def settings(self) -> Mapping[str, Any]:  # type: ignore[override]
        """``Judge.settings``: the config as plain values (read-only: change ``config``)."""
        return MappingProxyType(self.config.as_settings())

    # -- one video -------------------------------------------------------------------------

    def chat_text(self, messages: list[dict[str, Any]]) -> str:
        """The chat text of ``messages`` as the model reads it: the processor's template, the
        assistant's turn opened, thinking off (an empty think block), as the reference does."""
        return self.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )

    def encode(self, decoded: DecodedVideo, text: str) -> Any:
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

    def generate_ids(
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
                max_new_tokens=max_new_tokens or self.config.max_new_tokens,
            )
        return out[0, inputs["input_ids"].shape[1] :]

    def _generate(self, inputs: Any, cache: Any = None) -> str:
        new_tokens = self.generate_ids(inputs, cache)
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
        return completion.complete(
            self, messages, max_new_tokens=max_new_tokens, prefix=prefix, top_logprobs=top_logprobs
        )

    def _rope_holder(self) -> Any:
        """The inner Qwen model, which keeps the multimodal rotary offsets between calls."""
        return self.model.get_base_model().model

    def _head(self, decoded: DecodedVideo, texts: dict[str, str]) -> tuple[Any, int] | None:
        """The processor's inputs for [system + video] and where that ends in the chat text
        (None when some axis's text does not start with it)."""
        first = next(iter(texts.values()))
        cut = first.index(VISION_END) + len(VISION_END)
        if not all(t.startswith(first[:cut]) for t in texts.values()):  # pragma: no cover
            return None  # a template with text before the video
        return self.encode(decoded, first[:cut]), cut

    def run_prefix(self, decoded: DecodedVideo, texts: dict[str, str]) -> SharedPrefix | None:
        """Run [system + video] once (None when some axis's text does not start with it).

        The rotary offset (``rope_deltas``) that the video prefill sets is kept, to be
        restored before each decoded axis; the cache is only ever copied, never cropped, since
        the linear-attention layers' recurrent state cannot be rolled back.
        """
        import torch

        head = self._head(decoded, texts)
        if head is None:  # pragma: no cover - a template with text before the video
            return None
        inputs, cut = head
        with torch.inference_mode():
            # Only the cache is wanted: logits for one position, not the whole prefix.
            out = self.model(**inputs, use_cache=True, logits_to_keep=1)
        cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        delta = int(self._rope_holder().rope_deltas.flatten()[0])
        return SharedPrefix(
            Prefix.single(cache, int(inputs["input_ids"].shape[1]), delta), inputs, cut
        )

    def _axis_inputs(self, shared: SharedPrefix, text: str) -> tuple[dict[str, Any], Any]:
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
        delta = shared.prefix.rope_deltas[0]
        self._rope_holder().rope_deltas = torch.tensor([[delta]], device=self.model.device)
        return inputs, copy.deepcopy(shared.prefix.cache)

    def token_encoder(self) -> Callable[[str], list[int]]:
        """A function from text to its token ids, with no special tokens added: for text that
        continues a prompt already encoded (an axis's rows after the shared prefix)."""
        tokenizer = self.processor.tokenizer

        def encode(text: str) -> list[int]:
            return tokenizer(text, add_special_tokens=False)["input_ids"]

        return encode

    def pad_id(self) -> int:
        """The token that pads rows of unequal length (0 where the model names none)."""
        config = self.model.generation_config
        return config.pad_token_id if config.pad_token_id is not None else 0

    def _batched(
        self,
        prefix: Prefix,
        heads: list[tuple[Any, int]],
        texts: list[dict[str, str]],
        distribution: bool,
    ) -> list[dict[str, Any]]:
        """Every axis of every clip in one batched pass over their prefixes (row i of
        ``prefix`` is clip i's; see axes_batch.py); greedy replies that cannot be
        verified are decoded, that axis alone, over its clip's prefix alone."""
        encode = self.token_encoder()
        prompts = {
            (i, axis): encode(text[cut:])
            for i, ((_, cut), clip) in enumerate(zip(heads, texts, strict=True))
            for axis, text in clip.items()
        }
        batch = RowBatch(self.model, prefix, [i for i, _ in prompts], pad_id=self.pad_id())
        replies: list[dict[str, Any]] = [{} for _ in texts]
        if distribution:
            for (i, axis), probs in batched_distribution(
                batch.feed, prompts, self.digit_ids()
            ).items():
                replies[i][axis] = probs
            return replies
        stops = self.model.generation_config.eos_token_id
        stops = [stops] if isinstance(stops, int) else list(stops or [])
        reply = ReplyTokens(self.digit_ids(), stops, self.config.max_new_tokens)
        found = verified_replies(batch.feed, prompts, encode, reply)
        del batch  # its expanded cache, before any axis is decoded
        alone: dict[int, SharedPrefix] = {}
        for (i, axis), ids in found.items():
            if ids is not None:
                text = self.processor.tokenizer.decode(ids, skip_special_tokens=True)
                replies[i][axis] = (text, VERIFIED)
                continue
            if i not in alone:
                one = prefix if len(heads) == 1 else prefix.row(i)
                alone[i] = SharedPrefix(one, *heads[i])
            replies[i][axis] = (
                self._generate(*self._axis_inputs(alone[i], texts[i][axis])),
                DECODED,
            )
        return replies

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
        return digit_probs(out.logits[0, -1], self.digit_ids())

    def digit_ids(self) -> list[int]:
        """The token ids of the digits 1..5, in order (each digit is one token in Qwen's
        tokenizers; a JudgeLoadError where not)."""
        tokenizer = self.processor.tokenizer
        ids = [tokenizer(str(d), add_special_tokens=False)["input_ids"] for d in range(1, 6)]
        if any(len(i) != 1 for i in ids):  # pragma: no cover - true of every Qwen tokenizer
            raise JudgeLoadError("distribution scoring needs the digits 1-5 as single tokens")
        return [i[0] for i in ids]

    def _replies(self, decoded: DecodedVideo, texts: dict[str, str]) -> dict[str, Any]:
        """Per axis: (greedy reply, VERIFIED or DECODED), or (probs, mass) with distribution
        scoring."""
        distribution = self.config.distribution

        def step(inputs: Any, cache: Any = None) -> Any:
            if distribution:
                return self._digit_probs(inputs, cache)
            return self._generate(inputs, cache), DECODED

        shared = None
        if len(texts) > 1 and self.config.share_prefix:
            shared = self.run_prefix(decoded, texts)
        if shared is None:
            return {axis: step(self.encode(decoded, text)) for axis, text in texts.items()}
        if self.config.batch_axes:
            head = [(shared.inputs, shared.cut)]
            return self._batched(shared.prefix, head, [texts], distribution)[0]
        return {axis: step(*self._axis_inputs(shared, text)) for axis, text in texts.items()}

    def _clips_replies(self, clips: list[PreparedClip]) -> list[dict[str, Any]]:
        """Each clip's replies (see ``_replies``): with several clips, their prefixes in one
        batched prefill, then every axis of every clip in one batch over it."""
        config = self.config
        together = len(clips) > 1 and config.share_prefix and config.batch_axes
        heads = [self._head(clip.decoded, clip.texts) for clip in clips] if together else []
        if not together or any(head is None for head in heads):
            return [self._replies(clip.decoded, clip.texts) for clip in clips]
        ready = [head for head in heads if head is not None]
        prefix = prefill(self.model, [inputs for inputs, _ in ready], pad_id=self.pad_id())
        distribution = config.distribution
        return self._batched(prefix, ready, [clip.texts for clip in clips], distribution)

    def prepare(
        self, video: Path, caption: str, axes: list[str], criteria: Mapping[str, str] | None
    ) -> PreparedClip:
        """Decode the clip and render each axis's chat text, as judging it would; a clip
        that cannot be read raises InputError here."""
        fps, max_pixels = self.config.fps, self.config.max_pixels
        distribution = self.config.distribution
        video_sha = sha256_file(video)
        decoded = decode_video(video, fps=fps, max_pixels=max_pixels)
        element = video_element(video, fps=fps, max_pixels=max_pixels)
        texts, prompt_sha = {}, {}
        for axis in axes:
            prompt = self.rubric.render(axis, caption, criteria=(criteria or {}).get(axis))
            text = self.chat_text(prompt.messages(element))
            texts[axis] = text + answer_prefix(axis) if distribution else text
            prompt_sha[axis] = prompt.sha256
        return PreparedClip(video, caption, video_sha, decoded, texts, prompt_sha)

    def _results(self, clip: PreparedClip, replies: dict[str, Any], seconds: float) -> ClipOutcomes:
        """The Judgment (or JudgeOutputError) of each axis's reply."""
        distribution = self.config.distribution
        results: ClipOutcomes = {}
        for axis, reply in replies.items():
            extra: dict[str, Any] = {"scoring": self.config.scoring}
            if distribution:
                probs, extra["digit_mass"] = reply
                fields = distribution_fields(probs, axis)
            else:
                fields = {"raw": reply[0], "greedy": reply[1]}
            results[axis] = self._judgment(
                axis,
                video=clip.video,
                video_sha256=clip.video_sha256,
                prompt_sha256=clip.prompt_sha256[axis],
                seconds=seconds,
                caption=clip.caption,
                extra=extra,
                **fields,
            )
        return results

    def _score_axes(
        self,
        video: Path,
        caption: str,
        axes: list[str],
        criteria: Mapping[str, str] | None,
    ) -> ClipOutcomes:
        clip = self.prepare(video, caption, axes, criteria)
        started = time.perf_counter()
        replies = self._replies(clip.decoded, clip.texts)
        return self._results(clip, replies, (time.perf_counter() - started) / max(1, len(axes)))

    def _score_clips(self, clips: list[ClipRequest]) -> list[ClipOutcomes]:
        """Several clips in one batch (``score_clips``); a clip that cannot be read gives its
        error for each of its axes, and the others are judged without it."""
        prepared: list[PreparedClip | InputError] = []
        for request in clips:
            video, axes = Path(request.video), list(request.axes)
            try:
                prepared.append(self.prepare(video, request.caption, axes, request.criteria))
            except InputError as exc:
                prepared.append(exc)
        ready = [clip for clip in prepared if isinstance(clip, PreparedClip) and clip.texts]
        started = time.perf_counter()
        replies = dict(zip(map(id, ready), self._clips_replies(ready), strict=True))
        seconds = (time.perf_counter() - started) / max(1, sum(len(c.texts) for c in ready))
        return [
            dict.fromkeys(request.axes, clip)
            if isinstance(clip, InputError)
            else self._results(clip, replies.get(id(clip), {}), seconds)
            for request, clip in zip(clips, prepared, strict=True)
        ]

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
