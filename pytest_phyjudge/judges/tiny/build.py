"""The tiny judge: a small model of PhyJudge's real layout, so the real loading and scoring
path runs end to end on a CPU in seconds. ITS SCORES ARE MEANINGLESS.

Random as built; ``trained=True`` then fits it to reply in PhyJudge's format (training/), which
is what ``--phyjudge-judge tiny`` and ``--judge tiny`` use through ``ensure_tiny_judge``, built
once per machine under the recipe's build key (recipe.py)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_phyjudge.engine.adapter import TINY_NOTICE, is_tiny_judge
from pytest_phyjudge.engine.axes import ALL_AXES
from pytest_phyjudge.engine.extras import MODEL_MODULES, peft_quietly, require_local
from pytest_phyjudge.engine.rubric import load_rubric
from pytest_phyjudge.judges.local.loading import load_judge
from pytest_phyjudge.judges.tiny.layout import name_base, write_adapter
from pytest_phyjudge.judges.tiny.recipe import (
    BUILD,
    CHAT_TEMPLATE,
    LORA_TARGETS,
    NAME,
    SPECIAL_TOKENS,
    build_id,
    mark_trained,
    trained_recipe,
)
from pytest_phyjudge.judges.tiny.training.fit import format_train
from pytest_phyjudge.judges.tiny.training.start import prepare_adapter, prepare_base

if TYPE_CHECKING:
    from pytest_phyjudge.judges.local.judge import LocalJudge


def _rubric_corpus() -> list[str]:
    """Text like what the judge reads: every axis's prompt for a few captions."""
    rubric = load_rubric(None)
    captions = [
        "A ball rolls down a ramp and knocks over a block.",
        "Water is poured into a glass until it overflows onto the table.",
        "A teapot turns slowly in front of a mirror under a desk lamp.",
    ]
    return [
        rubric.render(axis, caption).system + "\n" + rubric.render(axis, caption).user
        for axis in ALL_AXES
        for caption in captions
    ]


def tiny_tokenizer(text_tokenizer: str = "bytes", *, axis_tokens: bool = False) -> Any:
    """Qwen3.5's tokenizer over one token per byte (``"bpe"``: merges learnt from rubric text)
    with Qwen's special tokens; ``axis_tokens`` adds one token per axis name."""
    from transformers import AddedToken
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    from transformers.models.qwen3_5 import Qwen3_5Tokenizer

    vocab = {"<|endoftext|>": 0}
    for symbol in bytes_to_unicode().values():
        vocab[symbol] = len(vocab)
    tokenizer = Qwen3_5Tokenizer(vocab=vocab, merges=[])
    if text_tokenizer == "bpe":
        # Merges learnt from rubric text give about the real tokenizer's compression of
        # English; digits stay single tokens, as Qwen's pre-tokenizer splits them.
        tokenizer = tokenizer.train_new_from_iterator(_rubric_corpus(), vocab_size=2000)
    elif text_tokenizer != "bytes":
        raise ValueError(f"text_tokenizer must be 'bytes' or 'bpe', not {text_tokenizer!r}")
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True) for t in SPECIAL_TOKENS]}
    )
    tokenizer.add_tokens([AddedToken("<think>", special=False), AddedToken("</think>")])
    if axis_tokens:
        # One token per axis name, so that naming the axis in a reply is one copy, not a
        # spelling; plain (not special) tokens, so replies decode to the same text.
        tokenizer.add_tokens([AddedToken(axis, normalized=False) for axis in ALL_AXES])
    return tokenizer


def tiny_processor(tokenizer: Any) -> Any:
    """Qwen3-VL's processor (image and video) around ``tokenizer``, with the ChatML template."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    common = {
        "patch_size": 16,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    }
    return Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(**common),
        video_processor=Qwen3VLVideoProcessor(**common),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def _tiny_config(tokenizer: Any, hidden: int, layers: int) -> Any:
    from transformers.models.qwen3_5 import Qwen3_5Config

    ids = tokenizer.convert_tokens_to_ids
    return Qwen3_5Config(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden,
            "intermediate_size": hidden * 2,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": hidden // 2,
            "linear_num_key_heads": 2,
            "linear_num_value_heads": 4,
            "linear_key_head_dim": 16,
            "linear_value_head_dim": 16,
            "max_position_embeddings": 8192,
            # Larger than the usual 0.02 so that replies depend visibly on the prompt.
            "initializer_range": 0.1,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "partial_rotary_factor": 0.25,
                "mrope_section": _mrope_section(hidden // 2),
                "mrope_interleaved": True,
            },
            "eos_token_id": ids("<|im_end|>"),
            "pad_token_id": ids("<|endoftext|>"),
        },
        vision_config={
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 4,
            "out_hidden_size": hidden,
            "num_position_embeddings": 256,
            "patch_size": 16,
            "temporal_patch_size": 2,
            "spatial_merge_size": 2,
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )


def _mrope_section(head_dim: int) -> list[int]:
    """Split the rotary half-dimension (head_dim * 0.25 / 2) over time, height, width."""
    half = int(head_dim * 0.25) // 2
    t = half - 2 * (half // 4)
    return [t, half // 4, half // 4]


def build_tiny_judge(
    folder: str | Path,
    *,
    seed: int = 0,
    hidden: int = 64,
    layers: int = 4,
    lora_rank: int = 4,
    text_tokenizer: str = "bytes",
    trained: bool = False,
) -> Path:
    """Write a tiny PhyJudge look-alike under ``folder``; return the adapter folder.

    ``folder/base`` holds a Qwen3.5 model and processor of the real architecture (about
    0.5 M parameters at the defaults); ``folder/adapter`` holds a random LoRA over its
    language tower whose ``adapter_config.json`` names that base, plus the project's own
    ``subq+human.yaml`` and an ``infer.py`` of literal constants. Pass the adapter folder to
    ``load_judge(adapter=..., device="cpu")``. The scores it gives are meaningless.

    ``text_tokenizer="bytes"`` (one token per byte) is the smallest; ``"bpe"`` learns merges
    from rubric text at build time, for token counts close to the real tokenizer's.

    ``trained=True`` then fits the last layer's LoRA and the head for a few hundred CPU steps
    (about a minute) so that greedy replies are ``{"<axis>": d}``, with digits that follow
    the axis and the clip's brightness (training/fit.py). Still meaningless as scores.
    """
    require_local("Building the tiny test judge", MODEL_MODULES)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText, GenerationConfig

    root = Path(folder)
    base_dir, adapter_dir = root / "base", root / "adapter"
    base_dir.mkdir(parents=True, exist_ok=True)
    adapter_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer(text_tokenizer, axis_tokens=trained)
    processor = tiny_processor(tokenizer)
    config = _tiny_config(tokenizer, hidden, layers)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    if trained:
        prepare_base(model, tokenizer)
    model.generation_config = GenerationConfig(
        eos_token_id=config.text_config.eos_token_id,
        pad_token_id=config.text_config.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(base_dir, safe_serialization=True)
    processor.save_pretrained(base_dir)
    (base_dir / "README.md").write_text(TINY_NOTICE + "\n", encoding="utf-8")

    lora = LoraConfig(
        r=lora_rank,
        lora_alpha=2 * lora_rank,
        lora_dropout=0.0,
        target_modules=LORA_TARGETS,
        init_lora_weights=False,
    )
    with peft_quietly():
        peft_model = get_peft_model(model, lora)
    if trained:
        prepare_adapter(peft_model)
    write_adapter(peft_model, adapter_dir, base_dir)
    if trained:
        judge = load_judge(adapter_dir, device="cpu")
        try:
            reached = format_train(judge, adapter_dir, base_dir)
        finally:
            judge.close()
        built = {
            "seed": seed,
            "hidden": hidden,
            "layers": layers,
            "lora_rank": lora_rank,
            "text_tokenizer": text_tokenizer,
        }
        mark_trained(adapter_dir, reached, build_id(built))
    return adapter_dir


def ensure_tiny_judge(folder: str | Path, *, trained: bool = True) -> Path:
    """The tiny judge's adapter folder under ``folder``, built there on first use.

    The format-trained judge (the default) takes about a minute to train, so it is built once
    per machine and user (``machine_folder()``) and copied from there."""
    adapter_dir = Path(folder) / "adapter"
    if _is_ready(adapter_dir, trained):
        return adapter_dir
    require_local("Building the tiny test judge", MODEL_MODULES)
    with _build_lock(Path(folder)):  # pytest-xdist workers may all ask at once
        if _is_ready(adapter_dir, trained):
            return adapter_dir
        if not trained:
            build_tiny_judge(folder)
            return adapter_dir
        source = machine_folder()
        if Path(folder).absolute() == source.absolute():  # no pytest cache to copy it into
            shutil.rmtree(source, ignore_errors=True)
            build_tiny_judge(source, trained=True, **BUILD)
            prune_old_builds(source)
            return adapter_dir
        with _build_lock(source):
            if not _is_ready(source / "adapter", trained=True):
                shutil.rmtree(source, ignore_errors=True)
                build_tiny_judge(source, trained=True, **BUILD)
                prune_old_builds(source)
        _into_place(source, Path(folder))
    return adapter_dir


def machine_folder() -> Path:
    """Where the format-trained tiny judge is built once for this machine and user."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"pytest-phyjudge-tiny-{user}" / build_id()


#: Builds of other keys kept beside the newest (older library versions, older recipes).
KEEP_BUILDS = 3
#: The base folder's name, and a build's name in it (as recipe.build_key names them).
_BASE_NAME = re.compile(r"pytest-phyjudge-tiny-[\w.-]+")
_BUILD_NAME = re.compile(rf"{re.escape(NAME)}-v\d+-[0-9a-f]{{8,64}}")


def prune_old_builds(current: Path, keep: int = KEEP_BUILDS) -> list[Path]:
    """Delete all but the ``keep`` newest builds beside ``current`` (a few MB each, one per
    build key, so one per library upgrade): only folders named as our builds, in a base folder
    named as ours, never ``current``, never a symlink; each under its own build lock, and
    skipped when another process holds it. Returns what was deleted."""
    from filelock import FileLock, Timeout

    base = current.parent
    if not _BASE_NAME.fullmatch(base.name) or base.is_symlink():
        return []
    builds = []
    for entry in base.iterdir():
        if entry.name == current.name or not _BUILD_NAME.fullmatch(entry.name):
            continue
        if entry.is_symlink() or not entry.is_dir():
            continue
        builds.append((entry.lstat().st_mtime, entry))
    builds.sort(reverse=True)
    deleted = []
    for _, entry in builds[max(keep - 1, 0) :]:  # ``current`` is one of the kept
        try:
            with FileLock(str(entry) + ".lock", timeout=0):
                shutil.rmtree(entry)
        except (Timeout, OSError):
            continue  # being built or copied by another process, or not ours to delete
        deleted.append(entry)
    return deleted


def _is_ready(adapter_dir: Path, trained: bool) -> bool:
    """A complete tiny judge there, format-trained by today's recipe when ``trained``."""
    complete = is_tiny_judge(adapter_dir) and (adapter_dir / "adapter_config.json").is_file()
    return complete and (not trained or trained_recipe(adapter_dir) == build_id())


def _build_lock(folder: Path) -> Any:
    """A lock beside ``folder``: one process builds or places a judge there at a time."""
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder) + ".lock")


def _into_place(source: Path, folder: Path) -> None:
    """Copy a built judge into ``folder`` (whole, then renamed in), naming its new base."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=folder.parent))
    try:
        for part in ("base", "adapter"):
            shutil.copytree(source / part, staging / part)
        name_base(staging / "adapter", folder / "base")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_tiny_judge(folder: str | Path, **options: Any) -> LocalJudge:
    """Build the tiny judge in ``folder`` (once; reused when already there) and load it on
    the CPU through the real loading path. Its scores are meaningless."""
    options.setdefault("device", "cpu")
    return load_judge(ensure_tiny_judge(folder), **options)
