"""What every case of a suite inherits from its file, and how a case's own values override it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_phyjudge._files import resolve_path
from pytest_phyjudge.engine.axes import GENERAL_METRICS
from pytest_phyjudge.suites.fields import AXIS_GATE_KEYS
from pytest_phyjudge.suites.model import Gates
from pytest_phyjudge.suites.pipeline import PipelineFields


@dataclass(frozen=True)
class FileSettings:
    """What every case inherits from its file: ``defaults:``, ``videos:``, ``generator:`` and
    ``pipeline:``."""

    #: The suite's name (fills ``{suite}`` in the videos template).
    name: str
    #: The folder of the suite file: relative video paths start here.
    base: Path
    #: The threshold where neither the case nor ``defaults.min_score`` sets one.
    fallback_min_score: int
    template: str | None = None
    generator: str | None = None
    #: The suite's ``pipeline:`` fields, merged under each case's own.
    pipeline: PipelineFields | None = None
    min_score: int | Mapping[str, int] | None = None
    metrics: tuple[str, ...] = GENERAL_METRICS
    laws: tuple[str, ...] = ()
    seed: int = 0
    params: Mapping[Any, Any] = field(default_factory=dict)
    samples: int = 1
    #: ``defaults`` values of the per-axis gates: a number, or ``{axis: number}``.
    gates: Mapping[str, float | Mapping[str, float]] = field(default_factory=dict)

    def thresholds(
        self, axes: tuple[str, ...], case_min: int | Mapping[str, int] | None
    ) -> dict[str, int]:
        """Per axis: the case's ``{axis: n}``, else its ``n``, else the defaults' ``{axis: n}``,
        else the defaults' ``n``, else :attr:`fallback_min_score`."""
        defaults = self.fallback_min_score if self.min_score is None else self.min_score
        out: dict[str, int] = {}
        for axis in axes:
            if isinstance(case_min, Mapping) and axis in case_min:
                out[axis] = case_min[axis]
            elif isinstance(case_min, int):
                out[axis] = case_min
            elif isinstance(defaults, Mapping) and axis in defaults:
                out[axis] = defaults[axis]
            elif isinstance(defaults, int):
                out[axis] = defaults
            else:
                out[axis] = self.fallback_min_score
        return out

    def resolve_gates(
        self, axes: tuple[str, ...], case_gates: Mapping[str, float | Mapping[str, float]]
    ) -> dict[str, Gates]:
        """Per axis, each gate from the case if it sets one for that axis, else the defaults."""
        out: dict[str, Gates] = {}
        for axis in axes:
            values: dict[str, float | None] = {}
            for key in AXIS_GATE_KEYS:
                value: float | None = None
                for level in (case_gates.get(key), self.gates.get(key)):
                    if isinstance(level, Mapping) and axis in level:
                        value = level[axis]
                        break
                    if isinstance(level, float):
                        value = level
                        break
                values[key] = value
            tolerance = values.pop("tolerance")
            out[axis] = Gates(**values, tolerance=tolerance or 0.0)  # type: ignore[arg-type]
        return out

    def template_video(self, case_id: str, sample: int = 0) -> Path | None:
        if self.template is None:
            return None
        rel = self.template.format(id=case_id, suite=self.name, sample=sample)
        return resolve_path(self.base / Path(rel).expanduser())
