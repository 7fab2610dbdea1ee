"""pytest-phyjudge: physics assertions for generated videos, judged by PhyJudge-9B."""

from __future__ import annotations

from pytest_phyjudge._exceptions import (
    CacheError,
    InputError,
    JudgeBackendError,
    JudgeLoadError,
    JudgeOutputError,
    PhyJudgeError,
    RubricError,
    SuiteError,
    VideoError,
)
from pytest_phyjudge.engine.axes import ALL_AXES, GENERAL_METRICS, PHYSICAL_LAWS
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment, RenderedPrompt
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.judges.loading import load_judge
from pytest_phyjudge.judges.remote import connect_judge
from pytest_phyjudge.judges.scripted import ScriptedJudge
from pytest_phyjudge.plugin.assertions import (
    PhysicsAssertionError,
    assert_metric,
    assert_physics,
    assert_video,
)

__all__ = [
    "ALL_AXES",
    "GENERAL_METRICS",
    "PHYSICAL_LAWS",
    "CacheError",
    "InputError",
    "Judge",
    "JudgeBackendError",
    "JudgeIdentity",
    "JudgeLoadError",
    "JudgeOutputError",
    "Judgment",
    "PhyJudgeError",
    "PhysicsAssertionError",
    "RenderedPrompt",
    "RubricError",
    "ScriptedJudge",
    "SuiteError",
    "VideoError",
    "assert_metric",
    "assert_physics",
    "assert_video",
    "connect_judge",
    "load_judge",
]
