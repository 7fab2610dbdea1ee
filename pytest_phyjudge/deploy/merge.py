"""Fold the LoRA into its base: a plain checkpoint that vLLM can serve (it cannot serve this
adapter as a LoRA on Qwen3.5's packed projections), with a record of where it came from."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError, JudgeLoadError
from pytest_phyjudge.engine.adapter import DEFAULT_ADAPTER
from pytest_phyjudge.engine.extras import MODEL_MODULES, peft_quietly, require_local
from pytest_phyjudge.engine.infer_constants import CONSTANTS_FILE
from pytest_phyjudge.engine.rubric import TEMPLATE_FILE
from pytest_phyjudge.judges.local.loading import plan_judge
from pytest_phyjudge.judges.remote.contract import PROVENANCE_FILE
from pytest_phyjudge.judges.settings import torch_dtype_name


def merge_adapter(
    adapter: str | Path = DEFAULT_ADAPTER,
    out: str | Path = "phyjudge-merged",
    *,
    revision: str | None = None,
    base_model: str | None = None,
    dtype: str = "bfloat16",
    max_shard_size: str = "5GB",
) -> Path:
    """Write base + adapter merged (W += alpha/r * B @ A, by peft) to ``out``: safetensors
    shards, the processor and its chat template, the generation config, the adapter's
    rubric files, and ``phyjudge_provenance.json`` naming the adapter, revision, weights
    sha256 and base. Returns ``out``."""
    require_local("Merging the adapter into its base", MODEL_MODULES)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    name = torch_dtype_name(dtype)
    if name is None:
        raise InputError("Merging needs a dtype to save in; use bfloat16, float16 or float32.")
    target = Path(out)
    if target.exists() and any(target.iterdir()):
        raise InputError(
            f"{str(target)!r} already holds files; give an empty or new folder for the "
            "merged checkpoint, so nothing of another model is mixed in."
        )
    plan = plan_judge(adapter, revision=revision, base_model=base_model)
    base, folder = plan.adapter.base_model, plan.adapter.folder
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            base, dtype=getattr(torch, name), use_safetensors=True, trust_remote_code=False
        )
        processor = AutoProcessor.from_pretrained(base, trust_remote_code=False)
        with peft_quietly():
            merged = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise JudgeLoadError(
            f"Cannot load base {base!r} with adapter {str(folder)!r} to merge them "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})."
        ) from exc
    target.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(target, safe_serialization=True, max_shard_size=max_shard_size)
    processor.save_pretrained(target)
    for name in (TEMPLATE_FILE, CONSTANTS_FILE):
        if (folder / name).is_file():
            shutil.copyfile(folder / name, target / name)
    provenance: dict[str, Any] = {
        **plan.identity.to_dict(),  # what remote clients name the served judge by
        "dtype": name,
        "merged_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (target / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    return target
