"""PhyGround's leaderboard numbers computed from results files, the way PhyGround aggregates.

Per run: SA, PTV and persistence are each the mean over the videos scored on it; Solid-Body,
Fluid and Optical are each the mean of every (video, law) score whose law is in that domain
(``engine.axes.DOMAINS``); Overall is half the mean of the three general means plus half the
mean of the domain means weighted by how many (video, law) scores each holds (so, the mean
of all law scores). A run with no general or no law score has no Overall and ranks last.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from statistics import fmean

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.engine.axes import DOMAINS, GENERAL_METRICS
from pytest_phyjudge.regression.compare import ScoreSet

#: PhyGround's column names for the three domains.
DOMAIN_COLUMNS: dict[str, str] = {"solid": "Solid-Body", "fluid": "Fluid", "optics": "Optical"}
OVERALL = "Overall"
COLUMNS: tuple[str, ...] = (*GENERAL_METRICS, *DOMAIN_COLUMNS.values(), OVERALL)
#: How the columns are headed in tables (PhyGround abbreviates persistence).
HEADINGS: dict[str, str] = {"persistence": "Persist."}
#: The share of the general metrics in Overall; the laws get the rest.
GENERAL_WEIGHT = 0.5


@dataclass(frozen=True)
class BoardRow:
    """One run: its name, its file, its score per column (None when nothing was scored
    there) and how many scores each column averages (videos, or (video, law) scores)."""

    label: str
    path: str
    scores: Mapping[str, float | None]
    counts: Mapping[str, int]


@dataclass(frozen=True)
class Leaderboard:
    """The runs ranked by Overall, best first."""

    rows: tuple[BoardRow, ...]
    columns: tuple[str, ...] = COLUMNS


def _overall(scores: Mapping[str, float | None], counts: Mapping[str, int]) -> float | None:
    general = [scores[m] for m in GENERAL_METRICS if scores[m] is not None]
    weighted = [
        (scores[column], counts[column])
        for column in DOMAIN_COLUMNS.values()
        if scores[column] is not None
    ]
    if not general or not weighted:
        return None
    physical = sum(s * n for s, n in weighted) / sum(n for _, n in weighted)  # type: ignore[operator]
    return GENERAL_WEIGHT * fmean(general) + (1 - GENERAL_WEIGHT) * physical  # type: ignore[arg-type]


def _column_of() -> dict[str, str]:
    """Each axis' leaderboard column: a general metric its own, a law its domain's."""
    column_of = {metric: metric for metric in GENERAL_METRICS}
    for domain, laws in DOMAINS.items():
        column_of.update({law: DOMAIN_COLUMNS[domain] for law in laws})
    return column_of


def board_row(run: ScoreSet) -> BoardRow:
    """One run's leaderboard numbers. Means are exact sums (``math.fsum``, as
    ``statistics.fmean``) over whole columns of scores, not one Python object per score."""
    parts: dict[str, list[Sequence[float]]] = {c: [] for c in COLUMNS if c != OVERALL}
    counts = dict.fromkeys(parts, 0)
    column_of = _column_of()
    for axis, scores in run.columns.items():
        column = column_of.get(axis)
        if column is not None and len(scores.values):
            parts[column].append(scores.values)
            counts[column] += len(scores.values)
    scores_by: dict[str, float | None] = {
        column: math.fsum(chain.from_iterable(found)) / counts[column] if counts[column] else None
        for column, found in parts.items()
    }
    scores_by[OVERALL] = _overall(scores_by, counts)
    counts[OVERALL] = sum(counts.values())
    return BoardRow(label=run.title, path=run.name, scores=scores_by, counts=counts)


def leaderboard(runs: Sequence[ScoreSet]) -> Leaderboard:
    """The runs ranked by Overall (a run without one last; ties keep the given order)."""
    if not runs:
        raise InputError("No run to rank: give one or more scores.json files.")
    rows = [board_row(run) for run in runs]
    ranked = sorted(rows, key=lambda r: (r.scores[OVERALL] is None, -(r.scores[OVERALL] or 0.0)))
    return Leaderboard(rows=tuple(ranked))
