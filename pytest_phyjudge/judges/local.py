"""The real judge in this process: base model + PEFT adapter, run the reference script's way."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import JudgeLoadError, JudgeOutputError
from pytest_phyjudge.hub import DEFAULT_ADAPTER, ResolvedAdapter, resolve_adapter
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.parse import parse_score
from pytest_phyjudge.rubric import Rubric, load_rubric
from pytest_phyjudge.video import (
    DEFAULT_FPS,
    DEFAULT_MAX_PIXELS,
    DecodedVideo,
    decode_video,
    sha256_file,
    video_element,
)

DEFAULT_MAX_NEW_TOKENS = 64
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

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        adapter: ResolvedAdapter,
        rubric: Rubric,
        identity: JudgeIdentity,
        device: str,
        fps: float = DEFAULT_FPS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    ) -> None:
        self.model = model
        self.processor = processor
        self.adapter = adapter
        self.rubric = rubric
        self.identity = identity
        self.device = device
        self.settings = {
            "fps": fps,
            "max_pixels": max_pixels,
            "max_new_tokens": max_new_tokens,
            "scoring": "greedy",
        }

    # -- one video -------------------------------------------------------------------------

    def _inputs(self, decoded: DecodedVideo, messages: list[dict[str, Any]]) -> tuple[Any, str]:
        text = self.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
        inputs = self.processor(
            text=[text],
            videos=[decoded.frames],
            video_metadata=[decoded.metadata],
            do_resize=False,
            do_sample_frames=False,
            return_tensors="pt",
        )
        return inputs.to(self.model.device), text

    def _generate(self, inputs: Any) -> str:
        import torch

        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                max_new_tokens=self.settings["max_new_tokens"],
            )
        new_tokens = out[0, inputs["input_ids"].shape[1] :]
        return self.processor.tokenizer.decode(new_tokens, skip_special_tokens=True)

    def _score_axes(
        self,
        video: Path,
        caption: str,
        axes: list[str],
        criteria: Mapping[str, str] | None,
    ) -> dict[str, Judgment | JudgeOutputError]:
        video_sha = sha256_file(video)
        decoded = decode_video(
            video, fps=self.settings["fps"], max_pixels=self.settings["max_pixels"]
        )
        element = video_element(
            video, fps=self.settings["fps"], max_pixels=self.settings["max_pixels"]
        )
        results: dict[str, Judgment | JudgeOutputError] = {}
        for axis in axes:
            started = time.perf_counter()
            rendered = self.rubric.render(axis, caption, criteria=(criteria or {}).get(axis))
            inputs, text = self._inputs(decoded, rendered.messages(element))
            raw = self._generate(inputs)
            try:
                score = parse_score(raw, axis)
            except JudgeOutputError as exc:
                results[axis] = exc
                continue
            results[axis] = Judgment(
                key=axis,
                score=score,
                raw=raw,
                video=str(video),
                video_sha256=video_sha,
                prompt_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                judge=self.identity,
                seconds=time.perf_counter() - started,
                caption=caption,
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
) -> LocalJudge:
    """Load PhyJudge the way its reference script does, ready to score videos.

    ``adapter`` is a local folder or a hub id (default: PhyJudge-9B); the base model comes
    from its ``adapter_config.json`` unless ``base_model`` is given. Weights load as
    safetensors only and no code from any snapshot is run. With no CUDA device a large base
    refuses to load unless ``device="cpu"`` is passed explicitly.
    """
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    from pytest_phyjudge.testing import is_tiny_judge

    resolved = resolve_adapter(adapter, revision=revision, base_model=base_model)
    base = resolved.base_model
    try:
        config = AutoConfig.from_pretrained(base, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise JudgeLoadError(
            f"Cannot load the configuration of the base model {base!r} named by "
            f"{resolved.folder / 'adapter_config.json'} ({type(exc).__name__}: "
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
        model = PeftModel.from_pretrained(model, str(resolved.folder), is_trainable=False)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise JudgeLoadError(
            f"Cannot load the judge (base {base!r}, adapter {str(resolved.folder)!r}): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. Check that "
            "the base holds safetensors weights and a processor, and that the adapter was "
            "trained on that base."
        ) from exc
    model.eval()
    tiny = is_tiny_judge(resolved.folder)
    identity = JudgeIdentity(
        kind="tiny" if tiny else "local",
        adapter=resolved.adapter_id,
        revision=resolved.revision,
        base=base,
        adapter_sha256=resolved.weights_sha256,
    )
    return LocalJudge(
        model,
        processor,
        adapter=resolved,
        rubric=load_rubric(resolved.folder),
        identity=identity,
        device=device,
        fps=fps,
        max_pixels=max_pixels,
        max_new_tokens=max_new_tokens,
    )
