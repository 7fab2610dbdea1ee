"""Two sets of scores side by side: per-axis means, paired deltas and tests that do not
cry wolf when 16 axes are tested at once.

A set of scores is a ``scores.json`` report (``--phyjudge-report`` or ``phyjudge
score-dir``, or a PhyGround results file), a baseline file, or a pytest run's checks. A
report is read and checked by ``scores.read_scores`` (the one reader of the
format: a wrong field or a case twice is an error naming it). Cases are paired by the tuple
(suite, case id) (the ``video`` for reports without a suite), never by a joined string; a
sampled case counts once, with its mean. Per axis: the means of A and B over the shared cases, the
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
from functools import cached_property
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._words import counted
from pytest_phyjudge.engine.axes import ALL_AXES, GENERAL_METRICS
from pytest_phyjudge.regression import stats
from pytest_phyjudge.regression.baseline import describe_judge, same_judge, server_note
from pytest_phyjudge.scores import (
    CaseKey,
    ScoreColumn,
    ScoresDocument,
    check_scores,
    read_scores,
)

DEFAULT_CONFIDENCE = 0.95
DEFAULT_CORRECTION: stats.Correction = "holm"

Pair = tuple[CaseKey, str]  # case, axis


@dataclass(frozen=True)
class ScoreSet:
    """Scores by case and axis; ``name`` says where they come from (a path), ``label`` what
    tables and charts call them (the generator, from the file's metadata or ``--label``).

    A case is its (suite, id) tuple, never a joined string, so ``('a::b', 'c')`` and
    ``('a', 'b::c')`` stay two cases. The scores are kept by axis, in compact columns
    (``columns[axis].rows`` index ``cases``), since a report may hold a million of them."""

    name: str
    cases: tuple[CaseKey, ...]
    columns: Mapping[str, ScoreColumn]
    judge: Mapping[str, Any] | None = None
    #: What the judge server said of itself (``meta.judge_server``), when one judged.
    judge_server: Mapping[str, Any] | None = None
    label: str = ""
    #: Per axis, how many cases hold a null score there (asked, not scored: PhyGround files
    #: write them); left out of every statistic, counted so that the output can say so.
    unscored: Mapping[str, int] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.label or self.name

    def labelled(self, label: str | None) -> ScoreSet:
        """The same scores under another label (``None`` keeps this one)."""
        return self if label is None else replace(self, label=label)

    @cached_property
    def values(self) -> dict[Pair, float]:
        """Every score by (case, axis), for readers that want a mapping (small sets)."""
        return {
            (self.cases[row], axis): value
            for axis, column in self.columns.items()
            for row, value in zip(column.rows, column.values, strict=True)
        }


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
    def unscored(self) -> dict[str, dict[str, int]]:
        """The null scores per axis of each side (only the sides and axes that have any)."""
        sides = {"A": self.a.unscored, "B": self.b.unscored}
        return {side: dict(counts) for side, counts in sides.items() if counts}

    @property
    def alpha(self) -> float:
        return 1 - self.confidence


# --------------------------------------------------------------------------- reading


def scores_from_document(document: ScoresDocument) -> ScoreSet:
    """The scores of a checked ``scores.json`` document."""
    meta = document.meta
    return ScoreSet(
        name=document.name,
        cases=document.cases,
        columns=document.columns,
        judge=meta.judge,
        judge_server=meta.judge_server,
        label=meta.label or Path(document.name).stem,
        unscored=_null_scores(document.results, document.columns),
    )


def _null_scores(
    results: Iterable[Mapping[str, Any]], scored: Mapping[str, ScoreColumn]
) -> dict[str, int]:
    """Per axis the run scores somewhere (in ``scored``), the rows that hold it with a null
    score (a general metric, a law under ``physical.laws`` or a check), in the rubric's order
    of axes. An axis null in every row was not asked for: not counted."""
    counts: dict[str, int] = {}
    for row in results:
        for metric in GENERAL_METRICS:
            if metric in row and row[metric] is None:
                counts[metric] = counts.get(metric, 0) + 1
        laws = (row.get("physical") or {}).get("laws") or {}
        checks = row.get("checks") or {}
        for axis, entry in (*laws.items(), *checks.items()):
            if isinstance(entry, Mapping) and entry.get("score", 0) is None:
                counts[axis] = counts.get(axis, 0) + 1
    counts = {axis: n for axis, n in counts.items() if axis in scored}
    order = [axis for axis in ALL_AXES if axis in counts]
    return {axis: counts[axis] for axis in order + sorted(set(counts) - set(order))}


def scores_from_report(data: Any, name: str) -> ScoreSet:
    """The scores of a PhyGround-style ``scores.json`` document (checked first: an
    InputError names the field that is wrong)."""
    return scores_from_document(check_scores(data, name))


def read_report(path: str | Path) -> ScoreSet:
    """Read and check a ``scores.json`` file; an InputError naming the file and the field
    when it is not one (see ``scores.read_scores``)."""
    return scores_from_document(read_scores(path))


def scores_from_values(
    values: Iterable[tuple[Pair, float]],
    name: str,
    judge: Mapping[str, Any] | None = None,
    label: str = "",
) -> ScoreSet:
    """Scores from ((case, axis), score) items; a case seen again adds its other axes."""
    from array import array

    index: dict[CaseKey, int] = {}
    columns: dict[str, tuple[array, array]] = {}
    for (case, axis), value in values:
        row = index.setdefault(case, len(index))
        rows, scores = columns.setdefault(axis, (array("q"), array("d")))
        rows.append(row)
        scores.append(float(value))
    order = [axis for axis in ALL_AXES if axis in columns]
    order += sorted(set(columns) - set(order))
    return ScoreSet(
        name=name,
        cases=tuple(index),
        columns={axis: ScoreColumn(*columns[axis]) for axis in order},
        judge=judge,
        label=label,
    )


def scores_from_entries(
    entries: Iterable[tuple[tuple[str, str, str], float]],
    name: str,
    judge: Mapping[str, Any] | None = None,
) -> ScoreSet:
    """Scores keyed (suite, case, axis), as a baseline or a run holds them."""
    items = ((((suite, case), axis), value) for (suite, case, axis), value in entries)
    return scores_from_values(items, name, judge)


# --------------------------------------------------------------------------- comparing

#: (A's scores, B's scores) of one axis, as two aligned numpy arrays.
Paired = tuple[Any, Any]


@dataclass(frozen=True)
class Pairing:
    """What A and B share: per axis the aligned scores of the cases both scored on it (in
    the rubric's order of axes, each in A's order of cases), and the case counts."""

    by_axis: Mapping[str, Paired]
    shared: int
    only_a: int
    only_b: int


def _mean(values: Any) -> float:
    """The mean as ``statistics.fmean`` computes it (an exact sum), for a numpy array."""
    return math.fsum(values.tolist()) / len(values)


def _axis_row(axis: str, a: Any, b: Any, confidence: float) -> AxisComparison:
    """One axis' row with its raw p-value; ``_adjusted`` decides the regression later."""
    deltas = b - a
    p_value = stats.sign_flip_p_value(deltas)
    return AxisComparison(
        axis=axis,
        n=len(deltas),
        mean_a=_mean(a),
        mean_b=_mean(b),
        delta=_mean(deltas),
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


def _scored(run: ScoreSet) -> Any:
    """Which of the run's cases hold at least one score (a boolean array)."""
    import numpy as np

    scored = np.zeros(len(run.cases), dtype=bool)
    for column in run.columns.values():
        scored[np.frombuffer(column.rows, dtype=np.int64)] = True
    return scored


def pairing(a: ScoreSet, b: ScoreSet) -> Pairing:
    """A's and B's scores paired by case and axis (vectorised: one dictionary of B's cases,
    then array indexing per axis); InputError when there is nothing to pair."""
    import numpy as np

    where_in_b = {case: i for i, case in enumerate(b.cases)}
    to_b = np.fromiter(
        (where_in_b.get(case, -1) for case in a.cases), dtype=np.int64, count=len(a.cases)
    )
    scored_a, scored_b = _scored(a), _scored(b)
    in_b = to_b >= 0
    shared_mask = scored_a & in_b
    shared_mask[in_b] &= scored_b[to_b[in_b]]
    shared = int(shared_mask.sum())
    count_a, count_b = int(scored_a.sum()), int(scored_b.sum())
    unscored = [
        f"{run.name} holds {counted(len(run.cases), 'case')} and not one score"
        for run, count in ((a, count_a), (b, count_b))
        if run.cases and not count
    ]
    if unscored:  # not a mismatch of cases: every judgment of that run failed
        raise InputError(
            f"Nothing to compare: {'; '.join(unscored)} (every judgment failed; the "
            "report says why). Judge it again once its judge gives scores."
        )
    if not shared:
        raise InputError(
            f"{a.name} and {b.name} have no case in common ({counted(count_a, 'case')} and "
            f"{counted(count_b, 'case')}), so there is nothing to pair. Compare two runs of "
            "the same suite or prompt set (cases are matched by suite and case id, or by "
            "video stem)."
        )
    by_axis: dict[str, Paired] = {}
    for axis, column in a.columns.items():
        other = b.columns.get(axis)
        if other is None:
            continue
        b_values = np.full(len(b.cases), np.nan)
        b_values[np.frombuffer(other.rows, dtype=np.int64)] = np.frombuffer(other.values)
        rows = to_b[np.frombuffer(column.rows, dtype=np.int64)]
        y = np.where(rows >= 0, b_values[np.maximum(rows, 0)], np.nan)
        keep = ~np.isnan(y)
        if keep.any():
            by_axis[axis] = (np.frombuffer(column.values)[keep], y[keep])
    if not by_axis:
        raise InputError(
            f"{a.name} and {b.name} share {counted(shared, 'case')} but no scored axis of them."
        )
    order = [axis for axis in ALL_AXES if axis in by_axis]
    order += sorted(set(by_axis) - set(order))
    return Pairing(
        by_axis={axis: by_axis[axis] for axis in order},
        shared=shared,
        only_a=count_a - shared,
        only_b=count_b - shared,
    )


def paired_by_axis(a: ScoreSet, b: ScoreSet) -> tuple[dict[str, Paired], int]:
    """(A's, B's) scores per axis over the cases both hold, in the rubric's order of
    axes, and the number of shared cases; InputError when there is nothing to pair."""
    found = pairing(a, b)
    return dict(found.by_axis), found.shared


def compare(
    a: ScoreSet,
    b: ScoreSet,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    correction: stats.Correction = DEFAULT_CORRECTION,
) -> Comparison:
    """Pair A and B over their shared (case, axis); InputError when they share no case."""
    import numpy as np

    if not 0 < confidence < 1:
        raise InputError(f"confidence is {confidence!r}; give a number in (0, 1), e.g. 0.95.")
    found = pairing(a, b)
    rows = [_axis_row(axis, x, y, confidence) for axis, (x, y) in found.by_axis.items()]
    rows = _adjusted(rows, correction, 1 - confidence)
    every_a = np.concatenate([x for x, _ in found.by_axis.values()])
    every_b = np.concatenate([y for _, y in found.by_axis.values()])
    notes = []
    if not same_judge(a.judge, b.judge):
        notes.append(
            f"A and B were judged by different judges ({describe_judge(a.judge)} vs "
            f"{describe_judge(b.judge)}): the deltas mix the judges' and the videos' changes."
        )
    served = server_note(a.judge_server, b.judge_server, sides=("A", "B"))
    if served is not None:  # the same judge by name, served as another model or build
        notes.append(f"{served[0].upper()}{served[1:]}.")
    return Comparison(
        a=a,
        b=b,
        confidence=confidence,
        correction=correction,
        rows=rows,
        overall=_axis_row("all", every_a, every_b, confidence),
        shared_cases=found.shared,
        only_a=found.only_a,
        only_b=found.only_b,
        notes=notes,
    )
