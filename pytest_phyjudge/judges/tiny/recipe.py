"""The format-trained tiny judge's recipe: every value that decides what a build holds, and
the build key made of those values and the versions of the libraries that run it.

A machine builds the format-trained judge once (about a minute of CPU) and keeps it under its
build key (``machine_folder``); a folder marked with another key is built again. The key is
made of values only, never of source text: editing a comment, a docstring or the layout of
the code retrains nothing. The constants of the training modules (``training/start.py``,
``training/rows.py``, ``training/fit.py``: their UPPER_CASE numbers, strings and tuples)
enter it with no edit here. A change to what a build holds that no value names (the code of
a training step, the model's config) must bump VERSION.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

from pytest_phyjudge.judges.tiny.training import fit, rows, start

NAME = "format-trained"
#: Bump when a build changes in a way that no value of ``recipe_values`` names.
VERSION = 4
#: The libraries whose versions enter the key: the same recipe trains differently on others.
LIBRARIES = ("torch", "transformers")
#: ``build_tiny_judge``'s arguments for the format-trained build (its defaults; a test checks).
BUILD: Mapping[str, Any] = {
    "seed": 0,
    "hidden": 64,
    "layers": 4,
    "lora_rank": 4,
    "text_tokenizer": "bytes",
}
#: Written into the adapter folder of a format-trained build: its key and what training reached.
MARKER_FILE = "format-training.json"

SPECIAL_TOKENS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: ChatML, as Qwen models use it; a video item becomes the three vision tokens, and
#: enable_thinking=False leaves an empty think block after the assistant header.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|im_start|>{{ message.role }}\n"
    "{%- if message.content is string -%}{{ message.content }}"
    "{%- else -%}{%- for item in message.content -%}"
    "{%- if item.type == 'video' or 'video' in item -%}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif item.type == 'image' or 'image' in item -%}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif item.type == 'text' -%}{{ item.text }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "<|im_end|>\n"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant\n"
    "{%- if enable_thinking is defined and enable_thinking is false -%}"
    "<think>\n\n</think>\n\n{%- endif -%}{%- endif -%}"
)

#: The LoRA targets of the real adapter's language tower: attention, linear attention, MLP.
LORA_TARGETS = (
    r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|in_proj_qkv|in_proj_z|"
    r"in_proj_b|in_proj_a|out_proj|gate_proj|up_proj|down_proj)"
)


def constants_of(module: ModuleType) -> dict[str, Any]:
    """A module's constants: its UPPER_CASE names bound to numbers, strings, or tuples."""
    return {
        name: value
        for name, value in sorted(vars(module).items())
        if name.isupper()
        and isinstance(value, (int, float, str, tuple))
        and not isinstance(value, bool)
    }


def recipe_values(build: Mapping[str, Any] = BUILD) -> dict[str, Any]:
    """Every value that decides a format-trained build (``build``: the builder's arguments)."""
    return {
        "name": NAME,
        "version": VERSION,
        "build": dict(build),
        "special_tokens": SPECIAL_TOKENS,
        "chat_template": CHAT_TEMPLATE,
        "lora_targets": LORA_TARGETS,
        "start": constants_of(start),
        "rows": constants_of(rows),
        "training": constants_of(fit),
    }


def library_versions() -> dict[str, str]:
    """The installed versions of LIBRARIES, read from their metadata (not imported)."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def build_key(recipe: Mapping[str, Any], versions: Mapping[str, str]) -> str:
    """The name of a build of ``recipe`` under library ``versions``: a hash of those values,
    and nothing else."""
    text = json.dumps([recipe, versions], sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return f"{recipe['name']}-v{recipe['version']}-{digest}"


def build_id(build: Mapping[str, Any] = BUILD) -> str:
    """This machine's key for a format-trained build with the builder's arguments ``build``."""
    return build_key(recipe_values(build), library_versions())


def mark_trained(adapter_dir: Path, reached: Mapping[str, Any], key: str) -> None:
    """Write the marker of a format-trained build: its key and what training reached."""
    marker = {"recipe": key, **reached}
    (adapter_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def trained_recipe(adapter_dir: Path) -> str | None:
    """The build key of a format-trained tiny judge in ``adapter_dir``, if any."""
    try:
        return json.loads((adapter_dir / MARKER_FILE).read_text(encoding="utf-8"))["recipe"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
