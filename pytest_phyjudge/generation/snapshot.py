"""What a pipeline's files may hold before anything loads them, and what identifies them.

Threat model: a suite names a model it does not control (a hub repository anyone can push
to, a folder from a pull request). diffusers can run code that travels with a model: a
custom pipeline class (``_class_name`` given as ``[module, class]``, ``custom_pipeline``), a
component of another library, ``auto_map`` in a config (transformers' remote code), and
pickled weights (``.bin``, ``.pt``, ``.ckpt``) that run code when unpickled. So before a
snapshot is loaded, :func:`check_snapshot` reads ``model_index.json`` and every config and
refuses all of these, and any ``.py`` file; loading then asks for safetensors only and never
passes ``trust_remote_code`` or ``custom_pipeline``. The folder is walked without following
links, at most ``MAX_SNAPSHOT_ENTRIES`` entries: a pipe, a device or a socket is refused (a
loader would block on it or read without end), and so is a link that leads out of the
snapshot (its files would be read as the model's) or nowhere. A folder is checked before its
bytes are hashed, so naming ``/`` or a home folder is one quick refusal.

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

from pytest_phyjudge._escape import terminal_text
from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._files import (
    FileProblem,
    not_a_file,
    parse_json,
    read_json_file,
    read_text_file,
    resolve_path,
    write_json_atomic,
)

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
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
#: Config keys that point at code to import.
_CODE_KEYS = ("auto_map", "custom_pipeline", "_custom_pipeline", "trust_remote_code")
_DIGESTS_FILE = ".folder-digests.json"
#: The most files and folders a snapshot may hold (a large pipeline has a few hundred).
MAX_SNAPSHOT_ENTRIES = 10_000
#: model_index.json names a few components: a few KB; past this it is no pipeline's.
MAX_INDEX_BYTES = 1024 * 1024
#: A config (a tokenizer's included, with its added tokens) is at most a few MB.
MAX_CONFIG_BYTES = 16 * 1024 * 1024


def _shown(value: object, limit: int = 80) -> str:
    """A value of the snapshot's for a message: its repr (controls escaped), shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refuse(where: str, what: str) -> InputError:
    return InputError(
        f"The pipeline {terminal_text(where)} is refused: {terminal_text(what)}. A suite's "
        "pipeline must load without running code from the model: a diffusers pipeline "
        "class, components from diffusers or transformers, weights in safetensors, no .py "
        "files and no remote code. Convert the model "
        "(pipeline.save_pretrained(folder, safe_serialization=True) from a trusted "
        "environment), or name another."
    )


def check_snapshot(folder: Path, where: str) -> str:
    """The pipeline class named by ``folder``'s model_index.json, after refusing (InputError)
    code, pickled weights, custom classes and components of other libraries. The folder is
    walked (links and special files checked) before any of its files is read."""
    if not os.path.lexists(folder / MODEL_INDEX):
        raise InputError(
            f"The pipeline {terminal_text(where)} has no {MODEL_INDEX}: it is not a diffusers "
            "pipeline folder. Save one with pipeline.save_pretrained(folder), or name its hub "
            "id."
        )
    entries = snapshot_entries(folder, where)
    index = _read_config(folder / MODEL_INDEX, where, limit=MAX_INDEX_BYTES) or {}
    name = index.get("_class_name")
    if not isinstance(name, str) or not _IDENT_RE.fullmatch(name):
        raise _refuse(
            where, f"{MODEL_INDEX} names the pipeline class {_shown(name)}, a custom class"
        )
    for key, value in index.items():
        if key in _CODE_KEYS:
            raise _refuse(where, f"{MODEL_INDEX} sets {_shown(key)}")
        if key.startswith("_") or not isinstance(value, list):
            continue
        if value == [None, None]:
            continue
        if len(value) != 2:
            raise _refuse(
                where, f"its component {_shown(key)} is {_shown(value)}, not [library, class]"
            )
        library, component = value
        if library not in LIBRARIES or not isinstance(component, str):
            raise _refuse(
                where,
                f"its component {_shown(key)} is {_shown(component)} from {_shown(library)}, "
                f"not from {' or '.join(LIBRARIES)}",
            )
        if not _IDENT_RE.fullmatch(component):
            raise _refuse(where, f"its component {_shown(key)} names the class {_shown(component)}")
    for path in entries:
        rel = path.relative_to(folder).as_posix()
        suffix = path.suffix.lower()
        if suffix in CODE_SUFFIXES:
            raise _refuse(where, f"it holds code ({rel})")
        if suffix in PICKLE_SUFFIXES:
            raise _refuse(where, f"it holds pickled weights ({rel}), which run code when loaded")
        if suffix == ".json" and "config" in path.name.lower() and path.is_file():
            config = _read_config(path, where, limit=MAX_CONFIG_BYTES) or {}
            for key in _CODE_KEYS:
                if key in config:
                    raise _refuse(where, f"{rel} sets {key!r} (code to import)")
    return name


def _link_root(folder: Path) -> Path:
    """Where the links of ``folder`` may lead: the folder itself, or for a snapshot in the
    Hugging Face hub cache (``models--org--name/snapshots/<commit>``), the repository's
    cache folder, whose ``blobs/`` hold the files the snapshot links to."""
    parent = folder.parent
    if parent.name == "snapshots" and parent.parent.name.startswith("models--"):
        return parent.parent
    return folder


def snapshot_entries(folder: Path, where: str) -> list[Path]:
    """Every file and folder under ``folder`` (sorted), walked without following links;
    InputError for a special file, a link out of the snapshot or to nowhere, or more than
    MAX_SNAPSHOT_ENTRIES entries."""
    root = resolve_path(_link_root(folder))
    found: list[Path] = []
    for top, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            path = Path(top) / name
            found.append(path)
            if len(found) > MAX_SNAPSHOT_ENTRIES:
                raise _refuse(
                    where,
                    f"it holds more than {MAX_SNAPSHOT_ENTRIES:,} files and folders, far more "
                    "than a pipeline has (is pipeline.id the pipeline's own folder?)",
                )
            rel = path.relative_to(folder).as_posix()
            kind = not_a_file(path)
            if kind not in (None, "a folder"):
                raise _refuse(where, f"{rel} is {kind}, not a file")
            if path.is_symlink():
                real = resolve_path(path)
                if not os.path.lexists(real) or not os.path.exists(path):
                    raise _refuse(where, f"{rel} is a link that leads to no file")
                if real != root and root not in real.parents:
                    raise _refuse(where, f"{rel} is a link that leads out of it (to {real})")
    return sorted(found)


def _read_config(path: Path, where: str, limit: int) -> dict[str, Any] | None:
    kind = not_a_file(path)
    if kind is not None and kind != "a folder":
        raise _refuse(where, f"{path.name} is {kind}, not a file")
    if not path.is_file():
        return None
    try:
        data = parse_json(read_text_file(path, limit=limit))
    except FileProblem as exc:
        raise InputError(
            f"The pipeline {terminal_text(where)}: {terminal_text(path.name)} cannot be read: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"The pipeline {terminal_text(where)}: {terminal_text(path.name)} is not a JSON object."
        )
    return data


def folder_digest(folder: Path, memo: Path | None = None) -> str:
    """sha256 over the relative names and bytes of ``folder``'s safetensors and JSON files.
    ``memo``: a folder where digests are remembered by each file's size and mtime."""
    files = [
        p
        for p in snapshot_entries(folder, f"folder {folder}")
        if p.is_file() and p.suffix in (".safetensors", ".json")
    ]
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
        if not isinstance(entry, dict) or entry.get("files") != stamp:
            entry = {}
        remembered = entry.get("digest")
        # Only a digest of the right shape, for these very files, is believed; else hashed.
        if isinstance(remembered, str) and _DIGEST_RE.fullmatch(remembered):
            return remembered
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
            if Path(name).suffix.lower() in CODE_SUFFIXES:
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
        check_snapshot(Path(model_id), f"folder {model_id}")  # before hashing a byte of it
        try:
            return f"sha256:{folder_digest(Path(model_id), memo)}"
        except OSError as exc:  # a file of it unreadable to this user
            raise InputError(
                f"The pipeline folder {terminal_text(model_id)} cannot be read: "
                f"{terminal_text(str(exc))}. Make its files readable to the user running "
                "pytest, or name another."
            ) from None
    return resolve_hub_revision(model_id, revision)


def dump(value: Any) -> str:
    """Canonical JSON, for hashing."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
