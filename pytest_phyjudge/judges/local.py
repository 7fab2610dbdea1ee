"""The real judge in this process: base model + PEFT adapter, run the reference script's way."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError, JudgeLoadError, JudgeOutputError
from pytest_phyjudge.engine.adapter import DEFAULT_ADAPTER, ResolvedAdapter, resolve_adapter
from pytest_phyjudge.engine.judgment import Completion, JudgeIdentity, Judgment
from pytest_phyjudge.engine.parse import answer_prefix
from pytest_phyjudge.engine.rubric import Rubric, load_rubric
from pytest_phyjudge.engine.video import (
    DEFAULT_FPS,
    DEFAULT_MAX_PIXELS,
    DecodedVideo,
    decode_video,
    sha256_file,
    video_element,
)
from pytest_phyjudge.judges.base import Judge

DEFAULT_MAX_NEW_TOKENS = 64
#: Everything up to this token is the same for every axis of one video.
VISION_END = "<|vision_end|>"
SCORING_MODES = ("greedy", "distribution")
#: Above this many parameters a CPU run takes minutes per axis: ask before crawling.
CPU_PARAMETER_LIMIT = 1_000_000_000
_DTYPES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "float32": "float32",
    "fp32": "float32",
}


def _estimate_parameters(config: Any) -> int:
    """A rough parameter count of a Qwen-style config, without building the model."""
    text = getattr(config, "text_config", config)
    hidden = int(getattr(text, "hidden_size", 0) or 0)
    layers = int(getattr(text, "num_hidden_layers", 0) or 0)
    inter = int(getattr(text, "intermediate_size", 0) or 0)
    vocab = int(getattr(text, "vocab_size", 0) or 0)
    return layers * (4 * hidden * hidden + 3 * hidden * inter) + 2 * vocab * hidden


def _pick_device(device: str | None, config: Any, base: str) -> str:
    import torch

    if device is not None:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise JudgeLoadError(
                f"device={device!r} was asked for, but torch sees no CUDA device. Use a GPU "
                "machine, or device='cpu' (slow for the 9B judge)."
            )
        return device
    if torch.cuda.is_available():
        return "cuda"
    params = _estimate_parameters(config)
    if params > CPU_PARAMETER_LIMIT:
        raise JudgeLoadError(
            f"The judge's base model {base!r} has about {params / 1e9:.0f} B parameters and this "
            "machine has no CUDA device. PhyJudge-9B needs a GPU with about 24 GB of memory "
            "(bf16). Alternatives: run on a GPU machine and replay its judgments here, use the "
            "tiny test judge for a dry run (--phyjudge-judge tiny), or force it with "
            "device='cpu' (--device cpu) and expect minutes per axis."
        )
    return "cpu"


def _pick_dtype(dtype: str | None, device: str) -> Any:
    import torch

    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in _DTYPES:
        raise JudgeLoadError(
            f"Unknown dtype {dtype!r}; use one of auto, bfloat16, float16, float32."
        )
    return getattr(torch, _DTYPES[dtype])


class LocalJudge(Judge):
    """PhyJudge run in-process with transformers + peft, greedy, one axis per generate call."""

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

    def _shared_prefix_inputs(
        self, decoded: DecodedVideo, texts: dict[str, str]
    ) -> Iterator[tuple[str, dict[str, Any], Any]]:
        """Run [system + video] once; yield each axis's full inputs with a fresh cache copy.

        The rotary offsets (``rope_deltas``) that the video prefill sets are restored before
        each axis; a cache is never reused or cropped, since the linear-attention layers'
        recurrent state cannot be rolled back.
        """
        import copy

        import torch

        first = next(iter(texts.values()))
        cut = first.index(VISION_END) + len(VISION_END)
        prefix = first[:cut]
        prefix_inputs = self._encode(decoded, prefix)
        with torch.inference_mode():
            # Only the cache is wanted: logits for one position, not the whole prefix.
            out = self.model(**prefix_inputs, use_cache=True, logits_to_keep=1)
        prefix_cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        rope_deltas = self._rope_holder().rope_deltas.clone()
        tokenizer = self.processor.tokenizer
        for axis, text in texts.items():
            if not text.startswith(prefix):  # pragma: no cover - a template with text first
                yield axis, self._encode(decoded, text), None
                continue
            suffix = tokenizer(text[cut:], add_special_tokens=False, return_tensors="pt")
            suffix_ids = suffix["input_ids"].to(self.model.device)
            ids = torch.cat([prefix_inputs["input_ids"], suffix_ids], dim=1)
            mm_types = torch.cat(
                [prefix_inputs["mm_token_type_ids"], torch.zeros_like(suffix_ids)], dim=1
            )
            inputs = {
                "input_ids": ids,
                "attention_mask": torch.ones_like(ids),
                "mm_token_type_ids": mm_types,
            }
            self._rope_holder().rope_deltas = rope_deltas.clone()
            yield axis, inputs, copy.deepcopy(prefix_cache)

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
        everything = torch.softmax(out.logits[0, -1].float(), dim=-1)
        digits = everything[self._digit_ids()]
        mass = float(digits.sum())
        return tuple(float(p) for p in digits / digits.sum()), mass

    def _digit_ids(self) -> list[int]:
        tokenizer = self.processor.tokenizer
        ids = [tokenizer(str(d), add_special_tokens=False)["input_ids"] for d in range(1, 6)]
        if any(len(i) != 1 for i in ids):  # pragma: no cover - true of every Qwen tokenizer
            raise JudgeLoadError("distribution scoring needs the digits 1-5 as single tokens")
        return [i[0] for i in ids]

    def _replies(self, decoded: DecodedVideo, texts: dict[str, str]) -> dict[str, Any]:
        """Per axis: the greedy reply (str), or (probs, mass) with distribution scoring."""
        distribution = self.settings["scoring"] == "distribution"
        step = self._digit_probs if distribution else self._generate
        if len(texts) > 1 and self.settings["share_prefix"]:
            return {
                axis: step(inputs, cache)
                for axis, inputs, cache in self._shared_prefix_inputs(decoded, texts)
            }
        return {axis: step(self._encode(decoded, text)) for axis, text in texts.items()}

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
            probs = expected = None
            if distribution:
                probs, extra["digit_mass"] = reply
                score = max(range(5), key=lambda i: probs[i]) + 1
                expected = sum((i + 1) * p for i, p in enumerate(probs))
                raw = f"{answer_prefix(axis)}{score}"
            else:
                raw, score = reply, None
            results[axis] = self._judgment(
                axis,
                raw,
                score=score,
                video=video,
                video_sha256=video_sha,
                prompt_sha256=prompt_sha[axis],
                seconds=seconds,
                caption=caption,
                probs=probs,
                expected=expected,
                extra=extra,
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
        except ImportError:  # pragma: no cover - torch is a dependency
            pass


@dataclass(frozen=True)
class JudgePlan:
    """A local judge as it will be, known without loading a model: the adapter snapshot,
    the identity, the rubric and the settings. Enough to render prompts and key the cache;
    ``load()`` brings up the model when a judgment is really needed."""

    adapter: ResolvedAdapter
    identity: JudgeIdentity
    rubric: Rubric
    settings: Mapping[str, Any]

    def load(
        self,
        *,
        device: str | None = None,
        dtype: str | None = None,
        device_map: str | dict[str, Any] | None = None,
        attn_implementation: str | None = None,
    ) -> LocalJudge:
        from peft import PeftModel
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

        base, folder = self.adapter.base_model, self.adapter.folder
        try:
            config = AutoConfig.from_pretrained(base, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise JudgeLoadError(
                f"Cannot load the configuration of the base model {base!r} named by "
                f"{folder / 'adapter_config.json'} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0]}). Pre-download it ('hf download {base}') into the "
                "Hugging Face cache, or pass a local folder with --base-model."
            ) from exc
        device = _pick_device(device, config, base)
        torch_dtype = _pick_dtype(dtype, device)
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                base,
                dtype=torch_dtype,
                device_map=device_map if device_map is not None else device,
                attn_implementation=attn_implementation,
                use_safetensors=True,
                trust_remote_code=False,
            )
            processor = AutoProcessor.from_pretrained(base, trust_remote_code=False)
            model = PeftModel.from_pretrained(model, str(folder), is_trainable=False)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise JudgeLoadError(
                f"Cannot load the judge (base {base!r}, adapter {str(folder)!r}): "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. Check "
                "that the base holds safetensors weights and a processor, and that the adapter "
                "was trained on that base."
            ) from exc
        model.eval()
        return LocalJudge(model, processor, plan=self, device=device)


def plan_judge(
    adapter: str | Path = DEFAULT_ADAPTER,
    *,
    revision: str | None = None,
    base_model: str | None = None,
    fps: float = DEFAULT_FPS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    share_prefix: bool = True,
    scoring: str = "greedy",
) -> JudgePlan:
    """Resolve the adapter and read its rubric, without loading any model (see load_judge)."""
    from pytest_phyjudge.testing import is_tiny_judge

    if scoring not in SCORING_MODES:
        raise InputError(
            f"Unknown scoring mode {scoring!r}; use 'greedy' (the reference: parse the generated "
            "reply) or 'distribution' (probabilities of the digits 1-5 after the answer prefix)."
        )
    resolved = resolve_adapter(adapter, revision=revision, base_model=base_model)
    identity = JudgeIdentity(
        kind="tiny" if is_tiny_judge(resolved.folder) else "local",
        adapter=resolved.adapter_id,
        revision=resolved.revision,
        base=resolved.base_model,
        adapter_sha256=resolved.weights_sha256,
    )
    settings = {
        "fps": fps,
        "max_pixels": max_pixels,
        "max_new_tokens": max_new_tokens,
        "scoring": scoring,
        "share_prefix": share_prefix,
    }
    return JudgePlan(resolved, identity, load_rubric(resolved.folder), settings)


def load_judge(
    adapter: str | Path = DEFAULT_ADAPTER,
    *,
    revision: str | None = None,
    base_model: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    device_map: str | dict[str, Any] | None = None,
    attn_implementation: str | None = None,
    fps: float = DEFAULT_FPS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    share_prefix: bool = True,
    scoring: str = "greedy",
) -> LocalJudge:
    """Load PhyJudge the way its reference script does, ready to score videos.

    ``adapter`` is a local folder or a hub id (default: PhyJudge-9B); the base model comes
    from its ``adapter_config.json`` unless ``base_model`` is given. Weights load as
    safetensors only and no code from any snapshot is run. With no CUDA device a large base
    refuses to load unless ``device="cpu"`` is passed explicitly.

    ``share_prefix`` lets ``score_many`` run the video once for all axes (same replies, fewer
    tokens). ``scoring="distribution"`` reads the probabilities of the digits 1-5 after the
    forced answer prefix instead of generating; the default, ``greedy``, is the reference.
    """
    plan = plan_judge(
        adapter,
        revision=revision,
        base_model=base_model,
        fps=fps,
        max_pixels=max_pixels,
        max_new_tokens=max_new_tokens,
        share_prefix=share_prefix,
        scoring=scoring,
    )
    return plan.load(
        device=device, dtype=dtype, device_map=device_map, attn_implementation=attn_implementation
    )
