"""What a pipeline's files may hold before anything loads them, and what identifies them.

Threat model: a suite names a model it does not control (a hub repository anyone can push
to, a folder from a pull request). diffusers can run code that travels with a model: a
custom pipeline class (``_class_name`` given as ``[module, class]``, ``custom_pipeline``), a
component of another library, ``auto_map`` in a config (transformers' remote code), and
pickled weights (``.bin``, ``.pt``, ``.ckpt``) that run code when unpickled. So before a
snapshot is loaded, :func:`check_snapshot` reads ``model_index.json`` and every config and
refuses all of these, and any ``.py`` file; loading then asks for safetensors only and never
passes ``trust_remote_code`` or ``custom_pipeline``.

A folder is identified by the sha256 of its weights and configs (remembered by size and
mtime, so a 30 GB model is hashed once, not every run); a hub model by the commit its
revision resolves to. Only this identity, never a path, goes into the clip key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._files import FileProblem, read_json_file, write_json_atomic

MODEL_INDEX = "model_index.json"
#: The libraries a component may come from: diffusers' own classes and transformers' models
#: and tokenizers (never a module named by the snapshot).
LIBRARIES = ("diffusers", "transformers")
#: Files that are code, or pickles that run code when loaded.
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".so", ".pyd")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib")
#: What a snapshot is fetched with from the hub: weights in safetensors, configs, tokenizers.
HUB_PATTERNS = (
    "*.json",
    "*.safetensors",
    "*.txt",
    "*.model",
    "*/*.json",
    "*/*.safetensors",
    "*/*.txt",
    "*/*.model",
)
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
#: Config keys that point at code to import.
_CODE_KEYS = ("auto_map", "custom_pipeline", "_custom_pipeline", "trust_remote_code")
_DIGESTS_FILE = ".folder-digests.json"


def _refuse(where: str, what: str) -> InputError:
    return InputError(
        f"The pipeline {where} is refused: {what}. A suite's pipeline must load without "
        "running code from the model: a diffusers pipeline class, components from diffusers "
        "or transformers, weights in safetensors, no .py files and no remote code. Convert "
        "the model (pipeline.save_pretrained(folder, safe_serialization=True) from a trusted "
        "environment), or name another."
    )


def check_snapshot(folder: Path, where: str) -> str:
    """The pipeline class named by ``folder``'s model_index.json, after refusing (InputError)
    code, pickled weights, custom classes and components of other libraries."""
    index = _read_config(folder / MODEL_INDEX, where)
    if index is None:
        raise InputError(
            f"The pipeline {where} has no {MODEL_INDEX}: it is not a diffusers pipeline "
            "folder. Save one with pipeline.save_pretrained(folder), or name its hub id."
        )
    name = index.get("_class_name")
    if not isinstance(name, str) or not _IDENT_RE.fullmatch(name):
        raise _refuse(where, f"{MODEL_INDEX} names the pipeline class {name!r}, a custom class")
    for key, value in index.items():
        if key in _CODE_KEYS:
            raise _refuse(where, f"{MODEL_INDEX} sets {key!r}")
        if key.startswith("_") or not isinstance(value, list):
            continue
        if len(value) != 2 or value == [None, None]:
            continue
        library, component = value
        if library not in LIBRARIES or not isinstance(component, str):
            raise _refuse(
                where,
                f"its component {key!r} is {component!r} from {library!r}, not from "
                f"{' or '.join(LIBRARIES)}",
            )
        if not _IDENT_RE.fullmatch(component):
            raise _refuse(where, f"its component {key!r} names the class {component!r}")
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.suffix in CODE_SUFFIXES:
            raise _refuse(where, f"it holds code ({rel})")
        if path.suffix in PICKLE_SUFFIXES:
            raise _refuse(where, f"it holds pickled weights ({rel}), which run code when loaded")
        if path.suffix == ".json" and "config" in path.name and path.is_file():
            config = _read_config(path, where) or {}
            for key in _CODE_KEYS:
                if key in config:
                    raise _refuse(where, f"{rel} sets {key!r} (code to import)")
    return name


def _read_config(path: Path, where: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = read_json_file(path)
    except FileProblem as exc:
        raise InputError(f"The pipeline {where}: {path.name} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"The pipeline {where}: {path.name} is not a JSON object.")
    return data


def folder_digest(folder: Path, memo: Path | None = None) -> str:
    """sha256 over the relative names and bytes of ``folder``'s safetensors and JSON files.
    ``memo``: a folder where digests are remembered by each file's size and mtime."""
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".json")
    )
    stamp = {
        p.relative_to(folder).as_posix(): [p.stat().st_size, p.stat().st_mtime_ns] for p in files
    }
    memo_file = None if memo is None else memo / _DIGESTS_FILE
    known: dict[str, Any] = {}
    if memo_file is not None and memo_file.is_file():
        try:
            known = read_json_file(memo_file)
        except FileProblem:
            known = {}
        entry = known.get(str(folder)) if isinstance(known, dict) else None
        if isinstance(entry, dict) and entry.get("files") == stamp:
            return str(entry["digest"])
    total = hashlib.sha256()
    for path in files:
        total.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                total.update(block)
        total.update(b"\0")
    digest = total.hexdigest()
    if memo_file is not None:
        known = known if isinstance(known, dict) else {}
        known[str(folder)] = {"files": stamp, "digest": digest}
        with contextlib.suppress(OSError):  # remembering is a saving, not a need
            write_json_atomic(memo_file, known)
    return digest


def is_commit(revision: str | None) -> bool:
    return revision is not None and bool(_COMMIT_RE.fullmatch(revision))


def resolve_hub_revision(repo_id: str, revision: str | None) -> str:
    """The commit ``revision`` (a branch or tag; None: the default branch) of ``repo_id``
    points at now: asked of the hub, else read from the local hub cache (offline)."""
    if is_commit(revision):
        return str(revision)
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError:
        raise InputError(
            f"The pipeline {repo_id!r} names a hub model by the revision {revision or 'main'!r}, "
            "which cannot be resolved without huggingface_hub. Pin `revision:` to a commit "
            "hash, or install the generate extra."
        ) from None
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("1", "true", "TRUE", "True"):
        try:
            info = HfApi().model_info(repo_id, revision=revision)
            return str(info.sha)
        except Exception:  # unreachable hub: the local cache may know
            pass
    try:
        local = snapshot_download(
            repo_id, revision=revision, local_files_only=True, allow_patterns=[MODEL_INDEX]
        )
    except Exception as exc:
        raise InputError(
            f"The pipeline {repo_id!r} (revision {revision or 'main'!r}) could not be found: "
            f"the hub could not be asked and the local hub cache does not hold it ({exc}). "
            "Check the id and the network, or pin `revision:` to a commit hash whose clips "
            "this machine already has."
        ) from None
    return Path(local).name


def hub_snapshot(repo_id: str, commit: str) -> Path:
    """The local folder of ``repo_id`` at ``commit``, fetched (safetensors, configs and
    tokenizer files only) unless cached; a repository listing code is refused first."""
    from huggingface_hub import HfApi, snapshot_download

    where = f"{repo_id!r} at {commit[:12]}"
    offline = os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "TRUE", "True")
    if not offline:
        try:
            names = HfApi().list_repo_files(repo_id, revision=commit)
        except Exception:
            names = []
        for name in names:
            if Path(name).suffix in CODE_SUFFIXES:
                raise _refuse(where, f"the repository holds code ({name})")
    try:
        return Path(
            snapshot_download(
                repo_id,
                revision=commit,
                allow_patterns=list(HUB_PATTERNS),
                local_files_only=offline,
            )
        )
    except Exception as exc:
        raise InputError(
            f"The pipeline {where} could not be fetched from the hub: {exc}. Check the id, "
            "the revision and the network (or HF_TOKEN for a gated model)."
        ) from None


def identify(model_id: str, folder: bool, revision: str | None, memo: Path | None) -> str:
    """What identifies a pipeline's weights, for clip keys: ``sha256:<digest>`` of a folder,
    or the commit of a hub model. No model code is imported."""
    if folder:
        return f"sha256:{folder_digest(Path(model_id), memo)}"
    return resolve_hub_revision(model_id, revision)


def dump(value: Any) -> str:
    """Canonical JSON, for hashing."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
