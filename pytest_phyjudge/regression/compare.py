"""Two sets of scores side by side: per-axis means, paired deltas and tests that do not
cry wolf when 16 axes are tested at once.

A set of scores is a ``scores.json`` report (``--phyjudge-report`` or ``phyjudge
score-dir``, or a PhyGround results file), a baseline file, or a pytest run's checks. Cases
are paired by suite and case id (the ``video`` stem for reports without a suite); a sampled
case counts once, with its mean. Per axis: the means of A and B over the shared cases, the
mean paired delta B - A with its bootstrap interval, and
the two-sided sign-flip permutation test of the deltas (``stats.sign_flip_p_value``). The
axes' p-values are then adjusted together (Holm by default, see ``stats.adjust_p_values``):
an axis regresses when its delta is negative and its ADJUSTED p-value is below
``1 - confidence``, so that a run with no real change trips the gate on at most about
``1 - confidence`` of occasions, not on one axis in twenty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import fmean
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._files import FileProblem, read_json_file
from pytest_phyjudge.engine.axes import ALL_AXES, GENERAL_METRICS, MAX_SCORE, MIN_SCORE
from pytest_phyjudge.regression import stats

DEFAULT_CONFIDENCE = 0.95
DEFAULT_CORRECTION: stats.Correction = "holm"

Pair = tuple[str, str]  # case, axis


@dataclass(frozen=True)
class ScoreSet:
    """Scores by (case, axis); ``name`` says where they come from (a path), ``label`` what
    tables and charts call them (the generator, from the file's metadata or ``--label``)."""

    name: str
    values: Mapping[Pair, float]
    judge: Mapping[str, Any] | None = None
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name

    def labelled(self, label: str | None) -> ScoreSet:
        """The same scores under another label (``None`` keeps this one)."""
        return self if label is None else replace(self, label=label)


@dataclass(frozen=True)
class AxisComparison:
    axis: str
    n: int
    mean_a: float
    mean_b: float
    delta: float
    interval: tuple[float, float]
    p_value: float
    #: ``p_value`` adjusted for the number of axes tested (equal to it without correction).
    p_adjusted: float
    regression: bool


@dataclass
class Comparison:
    a: ScoreSet
    b: ScoreSet
    confidence: float
    correction: stats.Correction
    rows: list[AxisComparison]
    overall: AxisComparison
    shared_cases: int
    only_a: int
    only_b: int
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[AxisComparison]:
        return [r for r in self.rows if r.regression]

    @property
    def alpha(self) -> float:
        return 1 - self.confidence


# --------------------------------------------------------------------------- reading


def _case_key(row: Mapping[str, Any]) -> str:
    suite = row.get("suite")
    return f"{suite}::{row['video']}" if suite else str(row["video"])


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _score(value: Any, name: str, case: str, field: str) -> float | None:
    """A report's score: None when it holds none (null or absent), else a finite number from
    MIN_SCORE to MAX_SCORE; anything else is an InputError naming the file, case and field."""
    if value is None:
        return None
    if _number(value) and math.isfinite(value) and MIN_SCORE <= value <= MAX_SCORE:
        return float(value)
    raise InputError(
        f"{name}: case {case!r} has {field} = {value!r}, which is not a score. A score is a "
        f"number from {MIN_SCORE} to {MAX_SCORE} (null when the axis was not scored); fix "
        "that field, or re-create the report with phyjudge score-dir or --phyjudge-report."
    )


def scores_from_report(data: Any, name: str) -> ScoreSet:
    """The scores of a PhyGround-style ``scores.json`` document."""
    fmt = 'a scores.json report has "results": [{"video", "SA", ..., "physical": {...}}]'
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise InputError(f"{name} is not a scores.json report ({fmt}).")
    values: dict[Pair, float] = {}
    for index, row in enumerate(data["results"]):
        if not isinstance(row, dict) or "video" not in row:
            raise InputError(f"{name}: results[{index}] has no 'video'; {fmt}.")
        case = _case_key(row)
        for metric in GENERAL_METRICS:
            value = _score(row.get(metric), name, case, f"results[{index}].{metric}")
            if value is not None:
                values[(case, metric)] = value
        physical = row.get("physical") or {}
        laws = physical.get("laws") or {} if isinstance(physical, dict) else None
        if not isinstance(laws, dict):
            raise InputError(f"{name}: results[{index}].physical.laws is not an object; {fmt}.")
        for law, entry in laws.items():
            field = f"results[{index}].physical.laws.{law}"
            if not isinstance(entry, dict):
                raise InputError(f"{name}: case {case!r} has {field} = {entry!r}; {fmt}.")
            value = _score(entry.get("score"), name, case, f"{field}.score")
            if value is not None:
                values[(case, law)] = value
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    return ScoreSet(name=name, values=values, judge=meta.get("judge"), label=run_label(meta, name))


def run_label(meta: Mapping[str, Any], name: str) -> str:
    """What a run is called: its generator as the file records it (PhyGround's
    ``meta.video_model``, ``phyjudge score-dir``'s ``meta.generator``), else the file's stem."""
    for key in ("video_model", "generator"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return Path(name).stem


def read_report(path: str | Path) -> ScoreSet:
    """Read a ``scores.json`` file; an InputError that names the file when it is not one."""
    path = Path(path)
    return scores_from_report(read_report_document(path), str(path))


def read_report_document(path: Path) -> Any:
    """The JSON value of a report file; an InputError naming the file when it cannot be read."""
    try:
        return read_json_file(path)
    except FileProblem as problem:
        at = f" at line {problem.line}" if problem.line else ""
        raise InputError(
            f"The report {str(path)!r} {problem.reason}{at}. Point at a scores.json written by "
            "pytest --phyjudge-report or phyjudge score-dir, or a PhyGround results file."
        ) from None


def scores_from_entries(
    entries: Iterable[tuple[tuple[str, str, str], float]],
    name: str,
    judge: Mapping[str, Any] | None = None,
) -> ScoreSet:
    """Scores keyed (suite, case, axis), as a baseline or a run holds them."""
    values = {(f"{suite}::{case}", axis): float(v) for (suite, case, axis), v in entries}
    return ScoreSet(name=name, values=values, judge=judge)


# --------------------------------------------------------------------------- comparing


def _axis_row(axis: str, pairs: Sequence[tuple[float, float]], confidence: float) -> AxisComparison:
    """One axis' row with its raw p-value; ``_adjusted`` decides the regression later."""
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    deltas = [y - x for x, y in pairs]
    p_value = stats.sign_flip_p_value(deltas)
    delta = fmean(deltas)
    return AxisComparison(
        axis=axis,
        n=len(pairs),
        mean_a=fmean(a),
        mean_b=fmean(b),
        delta=delta,
        interval=stats.bootstrap_interval(deltas, confidence),
        p_value=p_value,
        p_adjusted=p_value,
        regression=False,
    )


def _adjusted(
    rows: Sequence[AxisComparison], correction: stats.Correction, alpha: float
) -> list[AxisComparison]:
    """The rows with their p-values adjusted together, and the regressions they show."""
    adjusted = stats.adjust_p_values([r.p_value for r in rows], correction)
    return [
        replace(r, p_adjusted=p, regression=r.delta < 0 and p < alpha)
        for r, p in zip(rows, adjusted, strict=True)
    ]


def paired_by_axis(a: ScoreSet, b: ScoreSet) -> tuple[dict[str, list[tuple[float, float]]], int]:
    """(A's, B's) score pairs per axis over the cases both hold, in the rubric's order of
    axes, and the number of shared cases; InputError when there is nothing to pair."""
    cases_a = {case for case, _ in a.values}
    cases_b = {case for case, _ in b.values}
    shared = cases_a & cases_b
    if not shared:
        raise InputError(
            f"{a.name} and {b.name} have no case in common ({len(cases_a)} and {len(cases_b)} "
            "cases), so there is nothing to pair. Compare two runs of the same suite or "
            "prompt set (cases are matched by suite and case id, or by video stem)."
        )
    by_axis: dict[str, list[tuple[float, float]]] = {}
    for (case, axis), value in a.values.items():
        if case in shared and (case, axis) in b.values:
            by_axis.setdefault(axis, []).append((value, b.values[(case, axis)]))
    if not by_axis:
        raise InputError(
            f"{a.name} and {b.name} share {len(shared)} cases but no scored axis of them."
        )
    order = [axis for axis in ALL_AXES if axis in by_axis]
    order += sorted(set(by_axis) - set(order))
    return {axis: by_axis[axis] for axis in order}, len(shared)


def compare(
    a: ScoreSet,
    b: ScoreSet,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    correction: stats.Correction = DEFAULT_CORRECTION,
) -> Comparison:
    """Pair A and B over their shared (case, axis); InputError when they share no case."""
    if not 0 < confidence < 1:
        raise InputError(f"confidence is {confidence!r}; give a number in (0, 1), e.g. 0.95.")
    by_axis, shared = paired_by_axis(a, b)
    rows = [_axis_row(axis, pairs, confidence) for axis, pairs in by_axis.items()]
    rows = _adjusted(rows, correction, 1 - confidence)
    everything = [pair for pairs in by_axis.values() for pair in pairs]
    cases_a = {case for case, _ in a.values}
    cases_b = {case for case, _ in b.values}
    notes = []
    from pytest_phyjudge.regression.baseline import describe_judge, same_judge

    if not same_judge(a.judge, b.judge):
        notes.append(
            f"A and B were judged by different judges ({describe_judge(a.judge)} vs "
            f"{describe_judge(b.judge)}): the deltas mix the judges' and the videos' changes."
        )
    return Comparison(
        a=a,
        b=b,
        confidence=confidence,
        correction=correction,
        rows=rows,
        overall=_axis_row("all", everything, confidence),
        shared_cases=shared,
        only_a=len(cases_a - cases_b),
        only_b=len(cases_b - cases_a),
        notes=notes,
    )
