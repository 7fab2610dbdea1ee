"""A diffusers pipeline loaded safely, called for a batch of prompts and seeds, and released.

diffusers, torch and transformers are imported inside the functions that need them (the
light core never imports them). Loading goes through the pipeline class the snapshot names,
checked to be one of diffusers' own (``generation.snapshot`` has refused code, pickles and
other libraries first), with ``use_safetensors=True`` and neither ``trust_remote_code`` nor
``custom_pipeline``. Each clip's noise comes from ``torch.Generator(device).manual_seed(seed)``
of its own, so a clip depends on its seed, not on the other prompts of its batch.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.generation.snapshot import check_snapshot, hub_snapshot
from pytest_phyjudge.suites.model import PipelineSpec

#: Frame rates of the pipeline families whose config does not say (their model cards' own).
FAMILY_FPS = (
    ("Wan", 16.0),
    ("CogVideoX", 8.0),
    ("LTX", 24.0),
    ("HunyuanVideo", 15.0),
    ("Mochi", 30.0),
    ("Cosmos", 30.0),
    ("SkyReels", 24.0),
)
DEFAULT_FPS = 16.0


def family_fps(class_name: str) -> float:
    """The frame rate a pipeline class's family makes clips for; 16 (Wan's) when unknown."""
    for prefix, fps in FAMILY_FPS:
        if class_name.startswith(prefix):
            return fps
    return DEFAULT_FPS


def resolve_device(device: str) -> str:
    """``auto``: CUDA when torch sees one, else the CPU (the CPU when torch is absent)."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | None, device: str) -> str:
    """The dtype the pipeline runs in: the suite's, else float32 on a CPU, else bfloat16."""
    if dtype is not None:
        return dtype
    return "float32" if device == "cpu" else "bfloat16"


@dataclass(frozen=True)
class LoadKey:
    """What one load of a pipeline is shared by: the model, its weights, dtype and device."""

    id: str
    folder: bool
    identity: str
    dtype: str
    device: str
    cpu_offload: bool


def load_key(spec: PipelineSpec, identity: str) -> LoadKey:
    device = resolve_device(spec.device)
    return LoadKey(
        spec.id, spec.folder, identity, resolve_dtype(spec.dtype, device), device, spec.cpu_offload
    )


class LoadedPipeline:
    """One diffusers pipeline in memory; :meth:`release` drops it."""

    def __init__(self, key: LoadKey, pipe: Any, class_name: str) -> None:
        self.key = key
        self.pipe: Any = pipe
        self.class_name = class_name

    @property
    def where(self) -> str:
        return f"{self.key.id!r}" + ("" if self.key.folder else f" at {self.key.identity[:12]}")

    def frames(
        self, prompts: list[str], seeds: list[int], params: dict[str, Any], image: bytes | None
    ) -> list[Any]:
        """One uint8 array (T, H, W, 3) per prompt: the pipeline called once for the batch,
        each prompt with a generator seeded by its own seed; ``image``: the PNG of the first
        frame (already decoded once within limits, see ``ClipMaker.first_frame``)."""
        import io

        import numpy as np
        import torch

        device = "cpu" if self.key.device == "mps" else self.key.device
        generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
        extra: dict[str, Any] = {}
        if image is not None:
            from PIL import Image

            with Image.open(io.BytesIO(image), formats=("PNG",)) as opened:
                extra["image"] = opened.convert("RGB")
        with torch.inference_mode():
            out = self.pipe(
                prompt=prompts if len(prompts) > 1 else prompts[0],
                generator=generators if len(generators) > 1 else generators[0],
                output_type="np",
                **extra,
                **params,
            )
        videos = out.frames if hasattr(out, "frames") else out[0]
        clips = []
        for video in videos[: len(prompts)]:
            array = np.asarray(video)
            if array.dtype != np.uint8:
                array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
            clips.append(array)
        return clips

    def release(self) -> None:
        """Drop the pipeline: garbage-collected, the CUDA cache emptied, before a judge
        takes the memory."""
        self.pipe = None
        gc.collect()
        try:
            import torch
        except ImportError:
            return
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def load_pipeline(key: LoadKey) -> LoadedPipeline:
    """Load the pipeline ``key`` names: a checked snapshot, through the diffusers class it
    names, safetensors only; moved to its device (or set up for CPU offload)."""
    import diffusers
    import torch

    if key.folder:
        folder, where = Path(key.id), f"folder {key.id}"
    else:
        folder, where = hub_snapshot(key.id, key.identity), f"{key.id!r} at {key.identity[:12]}"
    class_name = check_snapshot(folder, where)
    cls = getattr(diffusers, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline)):
        raise InputError(
            f"The pipeline {where} is refused: its model_index.json names {class_name!r}, "
            f"which is not a pipeline class of diffusers {diffusers.__version__}. A suite's "
            "pipeline loads only diffusers' own pipeline classes (custom pipelines run code "
            "from the model); upgrade diffusers if the class is new."
        )
    import transformers.utils.logging

    dtype = getattr(torch, key.dtype)
    # Their loading bars would break the one bar of the clips; turned back on after.
    bars = [
        module
        for module in (diffusers.utils.logging, transformers.utils.logging)
        if module.is_progress_bar_enabled()
    ]
    for module in bars:
        module.disable_progress_bar()
    try:
        pipe = cls.from_pretrained(folder, use_safetensors=True, **_dtype_argument(dtype))
    finally:
        for module in bars:
            module.enable_progress_bar()
    pipe.set_progress_bar_config(disable=True)
    if key.cpu_offload:
        pipe.enable_model_cpu_offload(device=key.device)
    else:
        pipe.to(key.device)
    return LoadedPipeline(key, pipe, class_name)


def _dtype_argument(dtype: Any) -> dict[str, Any]:
    """diffusers 0.42 renamed ``torch_dtype`` to ``dtype`` (the old name warns)."""
    import diffusers

    major, minor = (int(part) for part in diffusers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (0, 42) else {"torch_dtype": dtype}
