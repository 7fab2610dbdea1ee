"""The smaller defects seen when the project was tried as a new user would (2026-12-06)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pytest_phyjudge.engine.adapter import TINY_NOTICE
from pytest_phyjudge.judges.tiny.layout import write_adapter


class _CardReadingModel:
    """Saves as peft does: it re-reads the folder's README.md as a model card first."""

    def save_pretrained(self, folder: Path, **_: object) -> None:
        from huggingface_hub import ModelCard

        ModelCard.load(Path(folder) / "README.md")
        (Path(folder) / "adapter_config.json").write_text("{}", encoding="utf-8")


def test_saving_the_tiny_adapter_says_nothing_about_an_empty_card(tmp_path, caplog):
    pytest.importorskip("huggingface_hub")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "README.md").write_text(TINY_NOTICE + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="huggingface_hub"):
        write_adapter(_CardReadingModel(), adapter, tmp_path / "base")
    assert "metadata block was not found" not in caplog.text
    # Only that notice, only there: the same read elsewhere still says it.
    with caplog.at_level(logging.WARNING, logger="huggingface_hub"):
        _CardReadingModel().save_pretrained(adapter)
    assert "metadata block was not found" in caplog.text
