"""Small, dependency-free statistics for repeated samples and report comparisons.

* :func:`wilson_interval`: the Wilson score interval of a proportion (two-sided);
  :func:`wilson_lower` its one-sided lower bound.
* :func:`bootstrap_interval`: a percentile bootstrap interval of a mean (two-sided);
  :func:`bootstrap_lower` its one-sided lower bound. Resampling uses ``random.Random`` with
  a fixed seed, so the same values always give the same interval.
* :func:`sign_flip_p_value`: a two-sided paired permutation test (sign flips of the paired
  differences, statistic: their mean); exact up to :data:`EXACT_FLIPS_MAX` non-zero
  differences, Monte Carlo with a fixed seed above.

A one-sided lower bound at confidence ``c`` is the lower end of the two-sided interval at
level ``2c - 1``: "with confidence ``c`` the true value is at least this".
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from statistics import NormalDist, fmean

#: Bootstrap resamples; with the fixed seed the result is reproducible.
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 0
#: Up to this many non-zero differences the sign-flip test enumerates every flip (2**n).
EXACT_FLIPS_MAX = 16
MONTE_CARLO_FLIPS = 20000


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


def _bootstrap_means(values: Sequence[float], resamples: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    n = len(values)
    return sorted(fmean(rng.choices(values, k=n)) for _ in range(resamples))


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default method)."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap_interval(
    values: Sequence[float],
    confidence: float,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Two-sided percentile bootstrap interval of the mean of ``values``."""
    _check_confidence(confidence)
    if not values:
        raise ValueError("no values to bootstrap")
    means = _bootstrap_means(list(values), resamples, seed)
    tail = (1 - confidence) / 2
    return _quantile(means, tail), _quantile(means, 1 - tail)


def bootstrap_lower(
    values: Sequence[float],
    confidence: float,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> float:
    """One-sided lower bound of the mean: the ``1 - confidence`` bootstrap percentile."""
    _check_confidence(confidence)
    if not values:
        raise ValueError("no values to bootstrap")
    return _quantile(_bootstrap_means(list(values), resamples, seed), 1 - confidence)


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
    nonzero = [abs(d) for d in differences if d != 0]
    if not nonzero:
        return 1.0
    observed = abs(sum(d for d in differences if d != 0)) - 1e-9
    if len(nonzero) <= EXACT_FLIPS_MAX:
        hits = total = 0
        for signs in itertools.product((1, -1), repeat=len(nonzero)):
            total += 1
            hits += abs(sum(s * d for s, d in zip(signs, nonzero, strict=True))) >= observed
        return hits / total
    rng = random.Random(seed)
    hits = 0
    for _ in range(resamples):
        flipped = sum(d if rng.random() < 0.5 else -d for d in nonzero)
        hits += abs(flipped) >= observed
    return (hits + 1) / (resamples + 1)
