"""Fold the LoRA into its base: a plain checkpoint that vLLM can serve (it cannot serve this
adapter as a LoRA on Qwen3.5's packed projections), with a record of where it came from.

Threat model: the adapter snapshot may come from anyone: its weights are read as safetensors
only, its configs never with remote code, and of its files only the rubric (template and
``infer.py``, parsed, never run) is copied, and only when it lies in the snapshot (a link out
of it could carry a secret into a checkpoint that gets published). The output folder is the
user's to name: it must be new or empty, and a file, pipe, device or dangling link there is
refused before the model is loaded (minutes), and checked again before anything is written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError, JudgeLoadError
from pytest_phyjudge._files import FileProblem, lies_within, not_a_file, read_text_file
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
    target = Path(out)
    check_merge_target(target)  # before loading: a refusal costs nothing
    require_local("Merging the adapter into its base", MODEL_MODULES)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    name = torch_dtype_name(dtype)
    if name is None:
        raise InputError("Merging needs a dtype to save in; use bfloat16, float16 or float32.")
    plan = plan_judge(adapter, revision=revision, base_model=base_model)
    base, folder = plan.adapter.base_model, plan.adapter.folder
    rubric = rubric_files(folder)
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
    check_merge_target(target)  # again: loading took minutes
    provenance: dict[str, Any] = {
        **plan.identity.to_dict(),  # what remote clients name the served judge by
        "dtype": name,
        "merged_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        target.mkdir(parents=True, exist_ok=True)
        merged.save_pretrained(target, safe_serialization=True, max_shard_size=max_shard_size)
        processor.save_pretrained(target)
        for file_name, text in rubric.items():
            (target / file_name).write_text(text, encoding="utf-8")
        (target / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    except OSError as exc:  # a full or read-only disk: written last, the provenance is absent
        raise InputError(
            f"Cannot write the merged checkpoint to {str(target)!r} "
            f"({exc.strerror or exc}); free space or choose another folder (what was written "
            f"there has no {PROVENANCE_FILE}, so it is never served as the judge)."
        ) from None
    return target


def check_merge_target(target: Path) -> None:
    """Refuse an output folder the merge would not own whole: one that holds anything (the
    user's files, an earlier checkpoint, a planted provenance file), or a path that is not
    a folder (a file, a pipe, a device, a link to nowhere, a loop of links)."""
    try:
        os.lstat(target)
    except NotADirectoryError:
        raise InputError(
            f"The merge's output {str(target)!r} lies under a file, not a folder: name a new "
            "folder (or an empty one) for the merged checkpoint."
        ) from None
    except OSError:
        pass  # missing: made when the checkpoint is written
    kind = not_a_file(target)
    if kind is None and target.is_symlink() and not target.exists():
        kind = "a symbolic link to nothing"
    elif kind is None and target.exists():
        kind = "a file"
    if kind is not None and kind != "a folder":
        raise InputError(
            f"The merge's output {str(target)!r} is {kind}, not a folder: name a new folder "
            "(or an empty one) for the merged checkpoint."
        )
    if kind == "a folder" and any(os.scandir(target)):
        raise InputError(
            f"{str(target)!r} already holds files; give an empty or new folder for the "
            "merged checkpoint, so nothing of another model is mixed in and none of your "
            "files is overwritten."
        )


def rubric_files(folder: Path) -> dict[str, str]:
    """The adapter's rubric files to copy beside the merged weights, as their text: only
    regular files inside the snapshot (a hub snapshot's links lead into its ``blobs``);
    InputError for a link out of it, a pipe, a device, or a file that is not UTF-8 text."""
    roots = [folder]
    if folder.parent.name == "snapshots":  # huggingface_hub's cache: <repo>/snapshots/<rev>
        roots.append(folder.parent.parent / "blobs")
    found: dict[str, str] = {}
    for name in (TEMPLATE_FILE, CONSTANTS_FILE):
        path = folder / name
        if not (path.exists() or path.is_symlink()):
            continue
        if not lies_within(path, roots):
            raise InputError(
                f"{path} is a link out of the adapter folder: the merge copies only the "
                "adapter's own files into the checkpoint. Put the file itself there."
            )
        try:
            found[name] = read_text_file(path)
        except FileProblem as problem:
            raise InputError(f"{path} {problem.reason}; re-download the adapter.") from None
    return found
