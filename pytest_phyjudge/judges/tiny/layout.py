"""The tiny judge's adapter folder, laid out as a real PhyJudge snapshot: the LoRA, an
``adapter_config.json`` naming its base, the rubric files, and a notice that its scores are
meaningless. Written by the builder and again after format training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pytest_phyjudge.engine.adapter import TINY_NOTICE
from pytest_phyjudge.engine.extras import peft_quietly
from pytest_phyjudge.engine.infer_constants import CONSTANTS_FILE, infer_py_source
from pytest_phyjudge.engine.rubric import TEMPLATE_FILE, bundled_constants, bundled_template_data


def write_adapter(peft_model: Any, adapter_dir: Path, base_dir: Path) -> None:
    """The LoRA, an adapter_config.json naming ``base_dir``, and the rubric files, as a real
    PhyJudge snapshot lays them out."""
    with peft_quietly():  # saving re-reads the notice README.md: an "empty card" notice
        peft_model.save_pretrained(adapter_dir, safe_serialization=True)
    name_base(adapter_dir, base_dir)
    (adapter_dir / TEMPLATE_FILE).write_text(
        yaml.safe_dump(bundled_template_data(), sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    (adapter_dir / CONSTANTS_FILE).write_text(
        infer_py_source(bundled_constants()), encoding="utf-8"
    )
    (adapter_dir / "README.md").write_text(TINY_NOTICE + "\n", encoding="utf-8")


def name_base(adapter_dir: Path, base_dir: Path) -> None:
    """Point the adapter's config at ``base_dir`` (an absolute path, as the real loader
    resolves a local base)."""
    config_file = adapter_dir / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = str(base_dir.resolve())
    config_file.write_text(json.dumps(config, indent=2))
