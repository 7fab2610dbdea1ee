"""YAML suites and PhyGround prompt sets, read into frozen Suite/Case values."""

from __future__ import annotations

from pytest_phyjudge.suites.model import Case, Gates, MarkSpec, PipelineSpec, Suite
from pytest_phyjudge.suites.prompts import load_prompt_set
from pytest_phyjudge.suites.schema import load_suite

__all__ = [
    "Case",
    "Gates",
    "MarkSpec",
    "PipelineSpec",
    "Suite",
    "load_prompt_set",
    "load_suite",
]
