"""Statistics for repeated samples and report comparisons (numpy, and scipy for
Benjamini-Hochberg), imported inside the functions that need them.

* :func:`wilson_interval`: the Wilson score interval of a proportion (two-sided);
  :func:`wilson_lower` its one-sided lower bound.
* :func:`bootstrap_interval`: a percentile bootstrap interval of a mean (two-sided);
  :func:`bootstrap_lower` its one-sided lower bound. Resampling uses numpy's ``Generator``
  (PCG64) with a fixed seed, so the same values always give the same interval.
* :func:`sign_flip_p_value`: a two-sided paired permutation test (sign flips of the paired
  differences, statistic: their mean); exact up to :data:`EXACT_FLIPS_MAX` non-zero
  differences, Monte Carlo with a fixed seed above.
* :func:`adjust_p_values`: p-values of several tests made at once, adjusted by Holm's
  step-down method (family-wise error; a few lines over numpy) or Benjamini-Hochberg (false
  discovery rate; ``scipy.stats.false_discovery_control``). They give statsmodels'
  ``multipletests`` values (the tests check it where statsmodels is installed): statsmodels,
  and pandas with it, were about 150 MB of the light core for these few lines.

Long inputs (a comparison of a million cases) are resampled by counts, not element by
element: above :data:`DIRECT_MAX` values, a bootstrap resample's mean is drawn as a
multinomial count of each distinct value, and a sign-flip sum as a binomial count of the
signs of each distinct magnitude. That is the same distribution (scores take a few
distinct values), in ``O(distinct)`` instead of ``O(n)`` per resample. Only when a long
input also holds more than :data:`GROUPED_MAX` distinct values is the normal
approximation used (the mean's bootstrap distribution, and the sign-flip sum, with the
same variance), which at that length differs from either only in far decimals.

A one-sided lower bound at confidence ``c`` is the lower end of the two-sided interval at
level ``2c - 1``: "with confidence ``c`` the true value is at least this".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any, Literal, get_args

#: How the p-values of the axes tested together are adjusted: Holm (family-wise error),
#: Benjamini-Hochberg (false discovery rate), or not at all.
Correction = Literal["holm", "bh", "none"]
CORRECTIONS: tuple[str, ...] = get_args(Correction)
#: What each correction is called in reports.
CORRECTION_TITLES = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no correction"}

#: Bootstrap resamples; with the fixed seed the result is reproducible.
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 0
#: Up to this many non-zero differences the sign-flip test enumerates every flip (2**n).
EXACT_FLIPS_MAX = 16
MONTE_CARLO_FLIPS = 20000
#: Up to this many values resampling draws each element; above, counts of distinct values.
DIRECT_MAX = 1000
#: Above DIRECT_MAX values and this many distinct ones, the normal approximation.
GROUPED_MAX = 1024


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence!r}")


def z_value(confidence: float) -> float:
    """The normal quantile of a two-sided interval at ``confidence`` (1.6449 for 0.90)."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return center, half


def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """The two-sided Wilson score interval of ``successes / n`` at ``confidence``."""
    center, half = _wilson(successes, n, z_value(confidence))
    return max(0.0, center - half), min(1.0, center + half)


def wilson_lower(successes: int, n: int, confidence: float) -> float:
    """One-sided lower bound: with ``confidence`` the true proportion is at least this
    (``z`` is the normal quantile at ``confidence``, 1.2816 for 0.90)."""
    _check_confidence(confidence)
    center, half = _wilson(successes, n, NormalDist().inv_cdf(confidence))
    return min(1.0, max(0.0, center - half))


def _bootstrap_means(values: Sequence[float], resamples: int, seed: int) -> Any:
    import numpy as np

    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    if len(data) > DIRECT_MAX:
        return _grouped_bootstrap_means(data, resamples, rng)
    means = np.empty(resamples)
    step = max(1, 2_000_000 // max(len(data), 1))  # bounded memory for long inputs
    for start in range(0, resamples, step):
        stop = min(start + step, resamples)
        means[start:stop] = data[rng.integers(0, len(data), size=(stop - start, len(data)))].mean(
            axis=1
        )
    return means


def _grouped_bootstrap_means(data: Any, resamples: int, rng: Any) -> Any:
    """Resample means of a long input: how many times each distinct value is drawn is
    multinomial, so a resample costs the number of distinct values, not of values."""
    import numpy as np

    n = len(data)
    distinct, counts = np.unique(data, return_counts=True)
    if len(distinct) > GROUPED_MAX:
        spread = float(np.std(data)) / math.sqrt(n)
        return rng.normal(float(np.mean(data)), spread, size=resamples)
    means = np.empty(resamples)
    step = max(1, 2_000_000 // len(distinct))
    for start in range(0, resamples, step):
        stop = min(start + step, resamples)
        drawn = rng.multinomial(n, counts / n, size=stop - start)
        means[start:stop] = drawn @ distinct / n
    return means


def bootstrap_interval(
    values: Sequence[float],
    confidence: float,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Two-sided percentile bootstrap interval of the mean of ``values``."""
    import numpy as np

    _check_confidence(confidence)
    if len(values) == 0:
        raise ValueError("no values to bootstrap")
    means = _bootstrap_means(values, resamples, seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_lower(
    values: Sequence[float],
    confidence: float,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> float:
    """One-sided lower bound of the mean: the ``1 - confidence`` bootstrap percentile."""
    import numpy as np

    _check_confidence(confidence)
    if len(values) == 0:
        raise ValueError("no values to bootstrap")
    return float(np.quantile(_bootstrap_means(values, resamples, seed), 1 - confidence))


def sign_flip_p_value(
    differences: Sequence[float], *, resamples: int = MONTE_CARLO_FLIPS, seed: int = 0
) -> float:
    """Two-sided p-value of "the paired differences are centred on 0".

    Under the null each difference is as likely to have either sign, so the observed
    ``|sum|`` is compared with the sums of every sign assignment (exactly for up to
    :data:`EXACT_FLIPS_MAX` non-zero differences, else with ``resamples`` random ones and
    the ``(hits + 1) / (resamples + 1)`` estimate). Zero differences carry no sign and are
    left out. No difference at all gives 1.0.
    """
    import numpy as np

    data = np.asarray(differences, dtype=float)
    data = data[data != 0]
    if data.size == 0:
        return 1.0
    observed = abs(sum(data.tolist())) - 1e-9
    nonzero = np.abs(data)
    n = nonzero.size
    if n <= EXACT_FLIPS_MAX:
        codes = np.arange(2**n, dtype=np.int64)[:, None]
        signs = 1 - 2 * ((codes >> np.arange(n)) & 1)
        sums = np.abs(signs @ nonzero)
        return float(np.mean(sums >= observed))
    rng = np.random.default_rng(seed)
    if n > DIRECT_MAX:
        return _grouped_sign_flips(nonzero, observed, resamples, rng)
    hits = 0
    step = max(1, 2_000_000 // n)
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(rows, n))
        hits += int(np.sum(np.abs(signs @ nonzero) >= observed))
    return (hits + 1) / (resamples + 1)


def _grouped_sign_flips(magnitudes: Any, observed: float, resamples: int, rng: Any) -> float:
    """The sign-flip p-value of a long input: of the ``c`` differences of one magnitude
    ``m``, a Binomial(c, 1/2) number is positive, so the flipped sum is
    ``sum(m * (2 * positives - c))``; a resample costs the number of distinct magnitudes."""
    import numpy as np

    distinct, counts = np.unique(magnitudes, return_counts=True)
    if len(distinct) > GROUPED_MAX:
        z = observed / math.sqrt(float(np.sum(magnitudes**2)))
        return max(2 * NormalDist().cdf(-z), 1 / (resamples + 1))
    hits = 0
    step = max(1, 2_000_000 // len(distinct))
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        positives = rng.binomial(counts, 0.5, size=(rows, len(distinct)))
        sums = (2 * positives - counts) @ distinct
        hits += int(np.sum(np.abs(sums) >= observed))
    return (hits + 1) / (resamples + 1)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: the ``k``-th smallest of ``m`` p-values is multiplied by
    ``m - k + 1``, then each adjusted value is raised to the largest one before it (so the
    order of the p-values is kept) and capped at 1.

    Rejecting where the adjusted value is below alpha keeps the family-wise error at most
    alpha, whatever the dependence between the tests. Tied p-values get the same adjusted
    value, whichever order the sort leaves them in. A NaN sorts last and stays NaN, still
    counted in ``m`` (as statsmodels' ``multipletests`` does; compare never produces one).
    """
    import numpy as np

    values = np.asarray(p_values, dtype=float)
    order = np.argsort(values, kind="stable")
    m = values.size
    stepped = np.maximum.accumulate(values[order] * np.arange(m, 0, -1))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()


def bh_adjusted(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg's adjustment (scipy's ``false_discovery_control``): the ``k``-th
    smallest of ``m`` p-values times ``m / k``, lowered to the smallest one after it, capped
    at 1. Rejecting below alpha keeps the expected share of false discoveries at most alpha
    (for independent or positively dependent tests).

    scipy refuses a NaN; statsmodels' ``multipletests``, which this replaced, turned every
    value NaN when one was (the NaN sorts last and the running minimum from the end carries
    it down), and so does this, so that no adjusted value claims more than is known.
    """
    import numpy as np
    from scipy.stats import false_discovery_control

    values = np.asarray(p_values, dtype=float)
    if np.isnan(values).any():
        return [math.nan] * values.size
    return [float(p) for p in false_discovery_control(values, method="bh")]


def adjust_p_values(p_values: Sequence[float], correction: Correction) -> list[float]:
    """The p-values adjusted for being tested together (each at least its raw value, at most
    1): reject where an adjusted value is below alpha and the family-wise error (Holm) or the
    false discovery rate (``bh``) stays at most alpha. ``none`` returns them unchanged."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, not {correction!r}")
    if correction == "none" or not p_values:
        return [float(p) for p in p_values]
    return holm_adjusted(p_values) if correction == "holm" else bh_adjusted(p_values)
