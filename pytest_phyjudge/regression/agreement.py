"""How far two runs over the same clips agree, per axis: the same judge run twice, two
judges, or a judge against human ratings written in the same scores.json shape.

Clips are paired as ``compare`` pairs them (suite and case id, or video stem). Per axis: the
number of pairs, exact agreement, agreement within one point, quadratic-weighted Cohen's
kappa (numpy, a few lines: statsmodels and pandas were about 150 MB of the light core for
it) and Spearman's rho (scipy). Exact and within-one agreement and kappa
read whole scores: a sampled case's mean is rounded to the nearest one; rho uses the values
as they are. A statistic that is undefined (kappa or rho of a constant column) is None.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_phyjudge.engine.axes import MAX_SCORE, MIN_SCORE
from pytest_phyjudge.regression.compare import ScoreSet, paired_by_axis


@dataclass(frozen=True)
class AxisAgreement:
    axis: str
    n: int
    exact: float
    within_one: float
    kappa: float | None
    rho: float | None
    #: The agreement matrix: ``matrix[i][j]`` pairs where A gave score i + 1 and B j + 1
    #: (whole scores, as kappa reads them); the diagonal is exact agreement.
    matrix: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True)
class Agreement:
    a: ScoreSet
    b: ScoreSet
    shared_cases: int
    rows: tuple[AxisAgreement, ...]
    #: Every axis' pairs pooled.
    overall: AxisAgreement


def _whole(values: Any) -> Any:
    """Each value rounded half up to a whole score (numpy, as ``floor(v + 0.5)``)."""
    import numpy as np

    return np.floor(np.asarray(values, dtype=float) + 0.5).astype(np.int64)


def quadratic_kappa(a: Sequence[int], b: Sequence[int]) -> float | None:
    """Cohen's kappa with quadratic weights over the judge's 1-5 scale, from the 5 x 5 table
    of paired whole scores; None when it is undefined (no spread at all).

    ``1 - observed / expected`` squared disagreement, where the expected table is what the
    two sides' own score frequencies give if they were paired at random: 1 is perfect
    agreement, 0 is chance, below 0 worse than chance. Quadratic weights make a miss by two
    points count four times a miss by one, as a 1-5 rating deserves. Both sides constant on
    the same score leave 0 / 0: undefined, never a made-up number. The values equal
    statsmodels' ``cohens_kappa(table, wt="quadratic")`` (checked in the tests).
    """
    import numpy as np

    size = MAX_SCORE - MIN_SCORE + 1
    x = np.asarray(a, dtype=np.int64) - MIN_SCORE
    y = np.asarray(b, dtype=np.int64) - MIN_SCORE
    if len(x) != len(y):
        raise ValueError(f"kappa needs pairs: {len(x)} and {len(y)} scores")
    table = np.bincount(x * size + y, minlength=size * size).reshape(size, size).astype(float)
    steps = np.arange(size, dtype=float)
    weights = (steps[:, None] - steps[None, :]) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        chance = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        kappa = float(1 - (weights * table).sum() / (weights * chance).sum())
    return kappa if math.isfinite(kappa) else None


def spearman_rho(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation (scipy); None when either side is constant."""
    import numpy as np
    from scipy.stats import spearmanr

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or x.min() == x.max() or y.min() == y.max():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(spearmanr(x, y).statistic)
    return rho if math.isfinite(rho) else None


def agreement_matrix(a: Any, b: Any) -> tuple[tuple[int, ...], ...]:
    """The 5 x 5 counts of paired whole scores: row A's score, column B's (1-5)."""
    import numpy as np

    levels = MAX_SCORE - MIN_SCORE + 1
    table = np.zeros((levels, levels), dtype=np.int64)
    rows = np.clip(np.asarray(a) - MIN_SCORE, 0, levels - 1)
    columns = np.clip(np.asarray(b) - MIN_SCORE, 0, levels - 1)
    np.add.at(table, (rows, columns), 1)
    return tuple(tuple(int(v) for v in row) for row in table)


def _agreement_of(axis: str, x: Any, y: Any) -> AxisAgreement:
    a, b = _whole(x), _whole(y)
    return AxisAgreement(
        matrix=agreement_matrix(a, b),
        axis=axis,
        n=len(a),
        exact=float((a == b).sum()) / len(a),
        within_one=float((abs(a - b) <= 1).sum()) / len(a),
        kappa=quadratic_kappa(a, b),
        rho=spearman_rho(x, y),
    )


def axis_agreement(axis: str, pairs: Sequence[tuple[float, float]]) -> AxisAgreement:
    """One axis' agreement over its (A, B) pairs."""
    return _agreement_of(axis, [x for x, _ in pairs], [y for _, y in pairs])


def agreement(a: ScoreSet, b: ScoreSet) -> Agreement:
    """Per-axis agreement of A and B over the clips both scored; InputError when none."""
    import numpy as np

    by_axis, shared = paired_by_axis(a, b)
    rows = tuple(_agreement_of(axis, x, y) for axis, (x, y) in by_axis.items())
    every_a = np.concatenate([x for x, _ in by_axis.values()])
    every_b = np.concatenate([y for _, y in by_axis.values()])
    overall = _agreement_of("all", every_a, every_b)
    return Agreement(a=a, b=b, shared_cases=shared, rows=rows, overall=overall)
