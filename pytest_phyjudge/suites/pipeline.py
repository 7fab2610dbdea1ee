"""A suite's ``pipeline:``: the diffusers model that makes its clips, checked field by field.

Threat model: the suite file is untrusted, and a ``pipeline:`` keeps its promise that no
suite makes pytest import or call anything: it names a MODEL (a hub id with an optional
``revision:``, or a folder relative to the suite file) and plain values for the pipeline's
call, never a class, a module or a callback. What the model's own files may hold (code,
pickled weights, a custom pipeline class) is checked again before loading, by
``generation.snapshot``. The suite's mapping and a case's are merged: the case's keys win,
and its ``params:`` are merged key by key into the suite's.

Paths: a model folder may lie anywhere (models are large and live outside repositories); it
is only read, after ``generation.snapshot`` has checked it. A case's ``image:`` becomes the
clip's first frame, and the clip is published with the report, so it must lie inside the
suite's folder (after following links) and be a regular file. Params are bounded where they
size memory (frames x height x width), and text holds no control characters.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_phyjudge._escape import terminal_text
from pytest_phyjudge._files import LOOP, lies_within, not_a_file, resolve_path
from pytest_phyjudge.suites.fields import Reader, suggest
from pytest_phyjudge.suites.model import PipelineSpec
from pytest_phyjudge.suites.yaml_lines import Node, describe_scalar

PIPELINE_KEYS = ("id", "revision", "dtype", "device", "cpu_offload", "fps", "params")
DTYPES = ("float32", "float16", "bfloat16")
_DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d{1,2})?")
#: ``owner/name`` (or a bare name) as the Hugging Face hub spells a repository.
_HUB_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")
_REVISION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
#: Frame rates a clip may be written at: a rate near 0 makes a clip of endless frames.
_MIN_FPS = 1
_MAX_FPS = 240
#: Call arguments the plugin sets itself, or that would pass code or tensors: never params.
_REFUSED_PARAMS: dict[str, str] = {
    "prompt": "the case's `prompt:` is the prompt",
    "image": "give an image-to-video case its first frame with `image:` on the case",
    "generator": "seeds come from the case's `seed:` (samples take seed .. seed+N-1)",
    "seed": "set `seed:` on the case or in `defaults:`",
    "latents": "the latents come from the seed",
    "prompt_embeds": "the prompt is text",
    "negative_prompt_embeds": "write `negative_prompt:` as text",
    "output_type": "the plugin asks for frames and writes the MP4 itself",
    "return_dict": "the plugin reads the pipeline's output itself",
    "num_videos_per_prompt": "each sample is one clip of its own seed; use `samples:`",
    "callback": "a suite passes data, never code",
    "callback_steps": "a suite passes data, never code",
    "callback_on_step_end": "a suite passes data, never code",
    "callback_on_step_end_tensor_inputs": "a suite passes data, never code",
    "attention_kwargs": "a suite passes plain values only",
    "cross_attention_kwargs": "a suite passes plain values only",
}
#: Endings of call arguments that take images, videos, masks, tensors or code: a suite passes
#: none of them (diffusers would read a string as a file to open, or fail on it).
_REFUSED_ENDINGS = ("image", "images", "video", "videos", "mask", "embeds", "latents", "kwargs")
#: Params with a known type, each a whole number from 1 to its bound (far above what any
#: released video model uses: Wan makes 81 frames of 720x1280 in 50 steps).
_BOUNDED_INTS = {
    "num_frames": 1024,
    "video_length": 1024,
    "height": 4096,
    "width": 4096,
    "num_inference_steps": 1000,
    "max_sequence_length": 4096,
}
#: The most pixels one clip may have (frames x height x width; 6 Wan clips of 81x720x1280),
#: checked on the merged params before anything is allocated; a missing size is taken at the
#: size a video pipeline defaults to at most.
MAX_CLIP_PIXELS = 450_000_000
_ASSUMED_SIZE = {"num_frames": 121, "height": 720, "width": 1280}
_NUMBERS = ("guidance_scale", "guidance_scale_2", "strength", "guidance_rescale", "flow_shift")
_MAX_LIST = 64


@dataclass(frozen=True)
class PipelineFields:
    """The fields one ``pipeline:`` mapping sets (a suite's or a case's), each checked."""

    values: Mapping[str, Any]
    line: int


def read_pipeline(reader: Reader, node: Node, base: Path) -> PipelineFields | None:
    """The fields of a ``pipeline:`` mapping; None after problems, each recorded at its line
    (raises a SuiteError when the mapping itself is unusable)."""
    fields = reader.mapping(node, "pipeline")
    before = len(reader.errors)
    reader.check_keys(node, PIPELINE_KEYS, "pipeline")
    values: dict[str, Any] = {}
    readers = {
        "id": lambda child: _model_id(reader, child, base),
        "revision": lambda child: _revision(reader, child),
        "dtype": lambda child: _choice(reader, child, "pipeline.dtype", DTYPES),
        "device": lambda child: _device(reader, child),
        "cpu_offload": lambda child: _boolean(reader, child, "pipeline.cpu_offload"),
        "fps": lambda child: _fps(reader, child),
        "params": lambda child: read_params(reader, child),
    }
    for key, child in fields.items():
        if key in readers:
            value = reader.attempt(readers[key], child)
            if value is not None:
                values[key] = value
    return None if len(reader.errors) > before else PipelineFields(values, node.line)


def merge_pipeline(
    reader: Reader, suite: PipelineFields | None, case: PipelineFields | None, line: int
) -> PipelineSpec:
    """The case's pipeline: the suite's fields under the case's own (``params`` merged key
    by key). Raises a SuiteError at ``line`` when no ``id`` names the model."""
    values: dict[str, Any] = dict(suite.values) if suite else {}
    own = dict(case.values) if case else {}
    params = {**values.pop("params", {}), **own.pop("params", {})}
    values.update(own)
    where = (case or suite).line if (case or suite) else line  # type: ignore[union-attr]
    if "id" not in values:
        raise reader.fail(
            "pipeline has no `id`; name the model: a hub id such as "
            "Wan-AI/Wan2.1-T2V-1.3B-Diffusers, or a folder relative to this suite file "
            "(./models/my-pipeline).",
            where,
        )
    _check_clip_size(reader, params, where)
    model_id, folder = values.pop("id")
    if folder and "revision" in values:
        raise reader.fail(
            f"pipeline.revision is set, but pipeline.id {model_id!r} is a folder, which has "
            "no revisions; remove `revision:`, or name a hub id.",
            where,
        )
    return PipelineSpec(id=model_id, folder=folder, params=params, line=where, **values)


def _check_clip_size(reader: Reader, params: dict[str, Any], line: int) -> None:
    sizes = {key: params.get(key, assumed) for key, assumed in _ASSUMED_SIZE.items()}
    if math.prod(sizes.values()) > MAX_CLIP_PIXELS:
        shown = " x ".join(f"{key} {value}" for key, value in sizes.items())
        raise reader.fail(
            f"pipeline.params make clips of {shown} (a size not given counted at a video "
            f"pipeline's largest default), more than {MAX_CLIP_PIXELS:,} pixels a clip, which "
            "would not fit in memory. Lower num_frames, height or width.",
            line,
        )


def _suite_path(reader: Reader, node: Node, base: Path, text: str, what: str) -> Path:
    """``text`` as a path relative to the suite file, resolved; a SuiteError at the node's
    line for text no file system can hold (control characters, ``~user`` of nobody)."""
    if terminal_text(text) != text:
        raise reader.fail(
            f"{what} is {describe_scalar(text)}, which holds control characters; write the "
            "path as plain text.",
            node.line,
        )
    try:
        return resolve_path(base / Path(text).expanduser())
    except (RuntimeError, ValueError, OSError) as exc:
        raise reader.fail(
            f"{what} {text!r} is not a path this machine can use ({exc}); write a path "
            "relative to this suite file.",
            node.line,
        ) from None


def _kind(path: Path) -> str | None:
    """``a folder``, ``a pipe``, ... (see ``not_a_file``); ``a file`` for a regular file;
    None when nothing is there (or it cannot be looked at: a name too long)."""
    try:
        os.stat(path)
    except OSError:
        return LOOP if not_a_file(path) == LOOP else None
    return not_a_file(path) or "a file"


def _model_id(reader: Reader, node: Node, base: Path) -> tuple[str, bool]:
    """(hub id, False) or (absolute folder, True). A path starting with ``.``, ``/`` or
    ``~``, or one naming a folder beside the suite, is a folder; the rest must read as a
    hub id."""
    text = reader.text(node, "pipeline.id").strip()
    local = _suite_path(reader, node, base, text, "pipeline.id")
    kind = _kind(local)
    if text.startswith((".", "/", "~")) or kind == "a folder":
        if kind not in (None, "a folder"):
            raise reader.fail(
                f"pipeline.id {text!r} names {kind} ({local}), not a folder; name the folder "
                "the pipeline was saved in (pipeline.save_pretrained(folder)), or a hub id.",
                node.line,
            )
        if kind is None:
            raise reader.fail(
                f"pipeline.id {text!r} names a folder that does not exist (looked for "
                f"{local}); the path is relative to this suite file. Save the pipeline there "
                "(pipeline.save_pretrained(folder)), or name a hub id.",
                node.line,
            )
        return str(local), True
    if not _HUB_ID_RE.fullmatch(text) or ".." in text:
        raise reader.fail(
            f"pipeline.id is {describe_scalar(text)}, neither a hub id (owner/name, e.g. "
            "Wan-AI/Wan2.1-T2V-1.3B-Diffusers) nor a folder (start a folder's path with ./ "
            "to say it is relative to this suite file).",
            node.line,
        )
    return text, False


def _revision(reader: Reader, node: Node) -> str:
    text = reader.text(node, "pipeline.revision").strip()
    if not _REVISION_RE.fullmatch(text) or ".." in text:
        raise reader.fail(
            f"pipeline.revision is {describe_scalar(text)}; write a branch, a tag or a commit "
            "hash of the hub repository (a commit hash pins the weights).",
            node.line,
        )
    return text


def _choice(reader: Reader, node: Node, what: str, choices: tuple[str, ...]) -> str:
    if node.data in choices:
        return str(node.data)
    raise reader.fail(
        f"{what} is {node.describe()};{suggest(node.data, choices)} write one of "
        f"{', '.join(choices)}.",
        node.line,
    )


def _device(reader: Reader, node: Node) -> str:
    if isinstance(node.data, str) and _DEVICE_RE.fullmatch(node.data):
        return node.data
    raise reader.fail(
        f"pipeline.device is {node.describe()}; write auto (CUDA when there is one, else the "
        "CPU), cpu, cuda, cuda:N or mps.",
        node.line,
    )


def _boolean(reader: Reader, node: Node, what: str) -> bool:
    if isinstance(node.data, bool):
        return node.data
    raise reader.fail(f"{what} is {node.describe()}; write true or false.", node.line)


def _fps(reader: Reader, node: Node) -> float:
    value = node.data
    if _is_number(value) and _MIN_FPS <= value <= _MAX_FPS:
        return float(value)
    raise reader.fail(
        f"pipeline.fps is {node.describe()}; write the frame rate the clips are written at, "
        f"a number from {_MIN_FPS} to {_MAX_FPS} (Wan makes 16 frames a second).",
        node.line,
    )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value: object) -> bool:
    """A scalar a suite may pass: text, a number, a boolean or null."""
    return value is None or isinstance(value, (str, bool, int)) or _is_number(value)


def read_params(reader: Reader, node: Node) -> dict[str, Any]:
    """``pipeline.params``: keyword arguments of the pipeline's call, plain values only (a
    scalar or a short list of scalars), known ones checked for their type."""
    reader.mapping(node, "pipeline.params")
    out: dict[str, Any] = {}
    for key, child in node.value.items():
        line = node.key_lines[key]
        what = f"pipeline.params.{key}"
        if not isinstance(key, str) or not key.isidentifier() or not key.isascii():
            raise reader.fail(
                f"pipeline.params has the key {describe_scalar(key)}; each key is a keyword "
                "argument of the pipeline's call, such as num_frames.",
                line,
            )
        if key in _REFUSED_PARAMS:
            raise reader.fail(
                f"{what} cannot be set in a suite: {_REFUSED_PARAMS[key]}. Remove it.", line
            )
        if key.startswith("callback") or key.endswith(_REFUSED_ENDINGS):
            raise reader.fail(
                f"{what} cannot be set in a suite: a suite passes plain values, never images, "
                "videos, masks, tensors or code (give an image-to-video case its first frame "
                "with `image:` on the case). Remove it.",
                line,
            )
        value = child.data
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and terminal_text(text) != text for text in texts):
            raise reader.fail(
                f"{what} holds control characters (such as ESC or NUL); write plain text.", line
            )
        if key in _BOUNDED_INTS:
            bound = _BOUNDED_INTS[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bound:
                raise reader.fail(
                    f"{what} is {child.describe()}; write a whole number from 1 to {bound}.",
                    line,
                )
        elif key in _NUMBERS:
            if not _is_number(value):
                raise reader.fail(f"{what} is {child.describe()}; write a number.", line)
        elif key == "negative_prompt":
            if not isinstance(value, str):
                raise reader.fail(f"{what} is {child.describe()}; write it as text.", line)
        elif not _plain(value) and not (
            isinstance(value, list) and len(value) <= _MAX_LIST and all(map(_plain, value))
        ):
            raise reader.fail(
                f"{what} is {child.describe()}; a param is a plain value (text, a number, "
                f"true/false) or a list of at most {_MAX_LIST} of them.",
                line,
            )
        out[key] = value
    return out


def read_image(reader: Reader, node: Node, base: Path, cid: str) -> Path:
    """A case's ``image:`` (the first frame for an image-to-video pipeline), relative to the
    suite file: a regular file inside the suite's folder (it ends up in a published clip)."""
    what = f"the image of case {cid!r}"
    rel = reader.text(node, what).strip()
    path = _suite_path(reader, node, base, rel, what)
    folder = resolve_path(base)
    if not lies_within(path, [folder]):
        raise reader.fail(
            f"{what} ({rel!r}) lies outside the suite's folder (it leads to {path}); the first "
            "frame becomes part of a clip that reports publish, so only images in the suite's "
            f"folder ({folder}) or below it are used. Copy the image there.",
            node.line,
        )
    kind = _kind(path)
    if kind != "a file":
        found = "does not exist" if kind is None else f"is {kind}, not an image file"
        raise reader.fail(
            f"{what} ({rel!r}) {found} (looked for {path}); the path is relative to this "
            "suite file.",
            node.line,
        )
    return path
