"""pytest-phyjudge: physics assertions for generated videos, judged by PhyJudge-9B.

The public API is what this module exports (``__all__``); everything else is internal. The
layout behind it: ``engine`` (axes, rubric, parsing, videos, adapters), ``judges`` (the
backends by room: ``local``, ``remote``, ``cache``, and the one factory), ``deploy`` (merge,
vLLM, ``phyjudge serve``), ``suites`` (YAML), ``regression`` (statistics, baselines),
``reporting`` (scores.json, tables, sheets), ``plugin`` (pytest), ``cli`` and ``testing``.
"""

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
from pytest_phyjudge.judges.base import ClipRequest, Judge
from pytest_phyjudge.judges.cache.judge import CachedJudge
from pytest_phyjudge.judges.factory import build_judge
from pytest_phyjudge.judges.local.judge import LocalJudge
from pytest_phyjudge.judges.local.loading import load_judge
from pytest_phyjudge.judges.remote.judge import RemoteJudge, connect_judge
from pytest_phyjudge.judges.scripted import ScriptedJudge
from pytest_phyjudge.judges.settings import JudgeSettings
from pytest_phyjudge.plugin.assertions import (
    PhysicsAssertionError,
    assert_metric,
    assert_physics,
    assert_video,
)
from pytest_phyjudge.reporting.checks import Check

__all__ = [
    "ALL_AXES",
    "GENERAL_METRICS",
    "PHYSICAL_LAWS",
    "CacheError",
    "CachedJudge",
    "Check",
    "ClipRequest",
    "InputError",
    "Judge",
    "JudgeBackendError",
    "JudgeIdentity",
    "JudgeLoadError",
    "JudgeOutputError",
    "JudgeSettings",
    "Judgment",
    "LocalJudge",
    "PhyJudgeError",
    "PhysicsAssertionError",
    "RemoteJudge",
    "RenderedPrompt",
    "RubricError",
    "ScriptedJudge",
    "SuiteError",
    "VideoError",
    "assert_metric",
    "assert_physics",
    "assert_video",
    "build_judge",
    "connect_judge",
    "load_judge",
]
