"""Finding the adapter: a local folder, or a hub id resolved through huggingface_hub's cache."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from pytest_phyjudge._exceptions import JudgeLoadError
from pytest_phyjudge._files import FileProblem, read_json_file, read_text_file
from pytest_phyjudge.engine.extras import require_local

DEFAULT_ADAPTER = "NU-World-Model-Embodied-AI/phyjudge-9B"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: What a snapshot download fetches: configs, the template, the reference script (read as
#: text with ``ast``, never run) and the weights as safetensors; never a pickle.
SNAPSHOT_FILES = [
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    "additional_config.json",
    "training_args.json",
    "subq+human.yaml",
    "infer.py",
]
#: Written into the tiny test judge's folders; what tells it apart from a real adapter.
TINY_NOTICE = (
    "This is a tiny randomly initialised stand-in for PhyJudge-9B, built by "
    "pytest_phyjudge.testing.build_tiny_judge: its scores are meaningless."
)


@dataclass(frozen=True)
class ResolvedAdapter:
    """An adapter snapshot on disk and the names it is known by."""

    folder: Path
    adapter_id: str
    revision: str | None
    base_model: str
    weights_sha256: str


def _download_hint(repo_id: str, revision: str | None) -> str:
    rev = f" --revision {revision}" if revision else ""
    return (
        f"Pre-download it on a machine with network access with 'hf download {repo_id}{rev}' "
        "and share the Hugging Face cache (HF_HOME / HF_HUB_CACHE) with this one, or point at "
        "a local copy with --adapter-dir FOLDER (adapter=FOLDER in Python)."
    )


def _snapshot(repo_id: str, revision: str | None) -> Path:
    require_local(
        f"Fetching the adapter {repo_id!r} from the hub (it is not a folder here)",
        ("huggingface_hub",),
    )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=SNAPSHOT_FILES))
    except HFValidationError as exc:
        raise JudgeLoadError(
            f"{repo_id!r} is neither an existing folder nor a valid hub id ('owner/name'). "
            "Check the spelling, or pass the folder that holds adapter_config.json."
        ) from exc
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise JudgeLoadError(
            f"The hub has no adapter {repo_id!r}"
            f"{' at revision ' + repr(revision) if revision else ''} ({exc.__class__.__name__}). "
            "Check the id and revision, or point at a local folder with --adapter-dir."
        ) from exc
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes"}
        why = (
            "HF_HUB_OFFLINE is set and the snapshot is not in the local cache"
            if offline
            else "the hub could not be reached and the snapshot is not in the local cache"
        )
        raise JudgeLoadError(
            f"Cannot get the adapter {repo_id!r}: {why} ({type(exc).__name__}). "
            + _download_hint(repo_id, revision)
        ) from exc


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_adapter(
    adapter: str | Path = DEFAULT_ADAPTER,
    *,
    revision: str | None = None,
    base_model: str | None = None,
) -> ResolvedAdapter:
    """Find the adapter snapshot and the base model it names.

    A path that exists is used as it is; anything else is a hub id fetched (or found in the
    cache) with ``huggingface_hub.snapshot_download``, which honours ``HF_HUB_OFFLINE`` and
    the HF cache variables. ``base_model`` overrides the config's ``base_model_name_or_path``.
    """
    as_path = Path(adapter).expanduser()
    if as_path.exists():
        if not as_path.is_dir():
            raise JudgeLoadError(
                f"Adapter {str(as_path)!r} is a file; pass the folder that holds "
                f"{ADAPTER_CONFIG} and {ADAPTER_WEIGHTS}."
            )
        folder, adapter_id = as_path.resolve(), str(as_path.resolve())
    else:
        folder, adapter_id = _snapshot(str(adapter), revision), str(adapter)

    config_path = folder / ADAPTER_CONFIG
    if not config_path.is_file():
        raise JudgeLoadError(
            f"Adapter folder {str(folder)!r} has no {ADAPTER_CONFIG}, so it is not a PEFT "
            "adapter snapshot. Point at the folder that holds adapter_config.json and "
            f"{ADAPTER_WEIGHTS} (for PhyJudge-9B, a download of {DEFAULT_ADAPTER})."
        )
    try:
        config = read_json_file(config_path, unique_keys=True)
    except FileProblem as exc:
        raise JudgeLoadError(f"{config_path} {exc.reason}; re-download it.") from None
    named = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    base = base_model or named
    if not isinstance(base, str) or not base.strip():
        raise JudgeLoadError(
            f"{config_path} names no base model (its 'base_model_name_or_path' is missing or "
            "empty). Pass the base explicitly with --base-model Qwen/Qwen3.5-9B (base_model= in "
            "Python), or fix the file."
        )
    weights = folder / ADAPTER_WEIGHTS
    if not weights.is_file():
        pickled = [p.name for p in folder.glob("adapter_model.bin")]
        extra = " It holds a pickled adapter_model.bin, which is never loaded." if pickled else ""
        raise JudgeLoadError(
            f"Adapter folder {str(folder)!r} has no {ADAPTER_WEIGHTS}.{extra} Only safetensors "
            "weights are loaded; convert or re-download the adapter."
        )
    return ResolvedAdapter(
        folder=folder,
        adapter_id=adapter_id,
        revision=revision,
        base_model=base,
        weights_sha256=file_sha256(weights),
    )


def is_tiny_judge(adapter_dir: str | Path) -> bool:
    """True when ``adapter_dir`` was written by the tiny test judge's builder, so that its
    judgments are labelled ``tiny`` and never mistaken for PhyJudge's."""
    readme = Path(adapter_dir) / "README.md"
    try:  # the tiny builder's README is a few hundred bytes; anyone's may be anything
        return readme.is_file() and TINY_NOTICE in read_text_file(readme, limit=1 << 20)
    except FileProblem:
        return False
