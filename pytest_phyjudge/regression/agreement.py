"""How far two runs over the same clips agree, per axis: the same judge run twice, two
judges, or a judge against human ratings written in the same scores.json shape.

Clips are paired as ``compare`` pairs them (suite and case id, or video stem). Per axis: the
number of pairs, exact agreement, agreement within one point, quadratic-weighted Cohen's
kappa (statsmodels) and Spearman's rho (scipy). Exact and within-one agreement and kappa
read whole scores: a sampled case's mean is rounded to the nearest one; rho uses the values
as they are. A statistic that is undefined (kappa or rho of a constant column) is None.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

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


@dataclass(frozen=True)
class Agreement:
    a: ScoreSet
    b: ScoreSet
    shared_cases: int
    rows: tuple[AxisAgreement, ...]
    #: Every axis' pairs pooled.
    overall: AxisAgreement


def _whole(value: float) -> int:
    return math.floor(value + 0.5)


def quadratic_kappa(a: Sequence[int], b: Sequence[int]) -> float | None:
    """Cohen's kappa with quadratic weights over the judge's 1-5 scale (statsmodels), from
    the 5 x 5 table of paired whole scores; None when it is undefined (no spread at all)."""
    import numpy as np
    from statsmodels.stats.inter_rater import cohens_kappa

    size = MAX_SCORE - MIN_SCORE + 1
    table = np.zeros((size, size))
    for x, y in zip(a, b, strict=True):
        table[x - MIN_SCORE, y - MIN_SCORE] += 1
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = float(cohens_kappa(table, wt="quadratic", return_results=False))
    return kappa if math.isfinite(kappa) else None


def spearman_rho(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation (scipy); None when either side is constant."""
    from scipy.stats import spearmanr

    if len(set(a)) < 2 or len(set(b)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(spearmanr(a, b).statistic)
    return rho if math.isfinite(rho) else None


def axis_agreement(axis: str, pairs: Sequence[tuple[float, float]]) -> AxisAgreement:
    a = [_whole(x) for x, _ in pairs]
    b = [_whole(y) for _, y in pairs]
    return AxisAgreement(
        axis=axis,
        n=len(pairs),
        exact=fmean(x == y for x, y in zip(a, b, strict=True)),
        within_one=fmean(abs(x - y) <= 1 for x, y in zip(a, b, strict=True)),
        kappa=quadratic_kappa(a, b),
        rho=spearman_rho([x for x, _ in pairs], [y for _, y in pairs]),
    )


def agreement(a: ScoreSet, b: ScoreSet) -> Agreement:
    """Per-axis agreement of A and B over the clips both scored; InputError when none."""
    by_axis, shared = paired_by_axis(a, b)
    rows = tuple(axis_agreement(axis, pairs) for axis, pairs in by_axis.items())
    pooled = [pair for pairs in by_axis.values() for pair in pairs]
    overall = axis_agreement("all", pooled)
    return Agreement(a=a, b=b, shared_cases=shared, rows=rows, overall=overall)
