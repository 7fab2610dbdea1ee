"""The statistics behind sample gates and comparisons, checked against values known by hand."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from pytest_phyjudge.regression import stats
from pytest_phyjudge.regression.sampling import summarize
from pytest_phyjudge.suites import Gates


def wilson_by_hand(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    center = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return center - half, center + half


def test_wilson_three_of_four_at_ninety_percent() -> None:
    # two-sided 90% interval: z = 1.6449
    z = NormalDist().inv_cdf(0.95)
    low, high = stats.wilson_interval(3, 4, 0.90)
    assert (low, high) == pytest.approx(wilson_by_hand(3, 4, z))
    assert round(low, 3) == 0.356 and round(high, 3) == 0.942
    # one-sided 90% lower bound (what `confidence: 0.9` gates on): z = 1.2816
    lower = stats.wilson_lower(3, 4, 0.90)
    assert lower == pytest.approx(wilson_by_hand(3, 4, NormalDist().inv_cdf(0.90))[0])
    assert round(lower, 3) == 0.433
    assert lower == pytest.approx(stats.wilson_interval(3, 4, 0.80)[0])


def test_wilson_edges() -> None:
    assert round(stats.wilson_lower(4, 4, 0.9), 3) == 0.709
    assert stats.wilson_interval(0, 5, 0.95)[0] == pytest.approx(0.0, abs=1e-12)
    assert stats.wilson_interval(5, 5, 0.95)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        stats.wilson_interval(5, 4, 0.9)
    with pytest.raises(ValueError):
        stats.wilson_lower(1, 2, 1.0)


def test_bootstrap_is_reproducible_and_sensible() -> None:
    values = [4, 4, 3, 2, 5, 3, 4]
    first = stats.bootstrap_interval(values, 0.9)
    assert stats.bootstrap_interval(values, 0.9) == first
    smooth = [1.3, 2.7, 4.1, 3.3, 2.2, 4.9, 3.8]
    assert stats.bootstrap_interval(smooth, 0.9) != stats.bootstrap_interval(smooth, 0.9, seed=1)
    low, high = first
    assert min(values) <= low < sum(values) / len(values) < high <= max(values)
    assert stats.bootstrap_interval([3, 3, 3], 0.95) == (3.0, 3.0)
    # [4, 4, 4, 3]: a resample's mean is 4 - k/4 with k ~ Binomial(4, 1/4) threes;
    # P(k >= 2) = 0.26 > 0.10 > P(k >= 3) = 0.05, so the 10th percentile is 3.5.
    assert stats.bootstrap_lower([4, 4, 4, 3], 0.9) == 3.5


def test_sign_flip_exact_values() -> None:
    # five negative differences: only the all-negative and all-positive flips are as extreme
    assert stats.sign_flip_p_value([-1, -1, -1, -1, -2]) == 2 / 32
    assert stats.sign_flip_p_value([0, 0]) == 1.0
    assert stats.sign_flip_p_value([1, -1]) == 1.0
    # [2, 1]: |sum| 3 is reached by (+,+) and (-,-) only
    assert stats.sign_flip_p_value([2, 1, 0]) == 0.5
    # Monte Carlo above EXACT_FLIPS_MAX: reproducible and near the exact 2 / 2**20
    many = [-1.0] * 20
    p = stats.sign_flip_p_value(many)
    assert p == stats.sign_flip_p_value(many) and p < 0.001


def test_summarize_gates() -> None:
    three_of_four = [4, 2, 4, 4]
    loose = summarize(three_of_four, min_score=3, gates=Gates(pass_rate=0.5))
    assert loose["passed"] and loose["pass_rate"] == 0.75
    strict = summarize(three_of_four, min_score=3, gates=Gates(pass_rate=0.5, confidence=0.9))
    assert not strict["passed"] and strict["failed_gates"] == ["pass_rate"]
    assert round(strict["pass_rate_bound"], 3) == 0.433
    default = summarize(three_of_four, min_score=3, gates=Gates())
    assert default["pass_rate_gate"] == 1.0 and not default["passed"]
    unscored = summarize([4, None, 4], min_score=3, gates=Gates(min_mean=4))
    assert unscored["mean"] == 4 and unscored["met"] == 2 and unscored["passed"]
    nothing = summarize([None, None], min_score=3, gates=Gates(min_mean=2))
    assert nothing["mean"] is None and nothing["failed_gates"] == ["min_mean"]


def test_long_inputs_resample_by_counts_of_distinct_values() -> None:
    """Above DIRECT_MAX values the bootstrap draws multinomial counts of each distinct value
    and the sign-flip test binomial counts of each magnitude's signs: the same
    distributions, so the results match the normal theory a long input follows."""
    import numpy as np

    values = [1 + i % 5 for i in range(20_000)]  # mean 3, sd sqrt(2)
    low, high = stats.bootstrap_interval(values, 0.95)
    half = NormalDist().inv_cdf(0.975) * math.sqrt(2) / math.sqrt(len(values))
    assert low == pytest.approx(3 - half, abs=0.004) and high == pytest.approx(3 + half, abs=0.004)
    assert stats.bootstrap_interval(values, 0.95) == (low, high)
    # 10,050 steps up and 9,950 down: |sum| 100 over sd sqrt(20,000), z = 0.707, p = 0.480
    flips = [1.0] * 10_050 + [-1.0] * 9_950
    assert stats.sign_flip_p_value(flips) == pytest.approx(0.480, abs=0.015)
    assert stats.sign_flip_p_value([1.0] * 20_000) == 1 / (stats.MONTE_CARLO_FLIPS + 1)
    # Many distinct values (more than GROUPED_MAX): the normal approximation.
    spread = np.random.default_rng(0).normal(0.1, 1.0, size=20_000)
    low, high = stats.bootstrap_interval(spread, 0.95)
    assert low < float(np.mean(spread)) < high and high - low == pytest.approx(
        2 * NormalDist().inv_cdf(0.975) * float(np.std(spread)) / math.sqrt(20_000), rel=0.05
    )
    z = abs(float(np.sum(spread))) / math.sqrt(float(np.sum(spread**2)))
    assert stats.sign_flip_p_value(spread) == pytest.approx(
        max(2 * NormalDist().cdf(-z), 0), abs=1e-4
    )


def test_holm_and_bh_by_hand() -> None:
    """Sorted 0.01, 0.03, 0.04, 0.5. Holm: times 4, 3, 2, 1 = 0.04, 0.09, 0.08, 0.5, each
    raised to the largest before it: 0.04, 0.09, 0.09, 0.5. BH: times 4/1, 4/2, 4/3, 4/4 =
    0.04, 0.06, 0.0533, 0.5, each lowered to the smallest after it: 0.04, 0.0533, 0.0533, 0.5."""
    raw = [0.01, 0.04, 0.03, 0.5]
    assert stats.adjust_p_values(raw, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert stats.adjust_p_values(raw, "bh") == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert stats.adjust_p_values(raw, "none") == raw
    assert stats.adjust_p_values([0.3, 0.6], "holm") == [0.6, 0.6]
    assert stats.adjust_p_values([0.6, 0.7], "holm") == [1.0, 1.0]  # capped at 1
    assert stats.adjust_p_values([], "bh") == []
    with pytest.raises(ValueError, match="correction must be one of"):
        stats.adjust_p_values([0.1], "bonferroni")  # type: ignore[arg-type]


def _p_value_families() -> list[list[float]]:
    """Random families of 1 to 40 p-values, with ties, zeros, ones and NaN among them."""
    import numpy as np

    rng = np.random.default_rng(20)
    families: list[list[float]] = [
        [0.0],
        [1.0],
        [0.04],
        [0.0, 0.0, 1.0],
        [1.0, 1.0, 1.0],
        [0.5, 0.5, 0.5],
        [0.01, 0.01, 0.02, 0.02, 0.9],
        [math.nan],
        [0.01, math.nan, 0.03],
        [math.nan, 0.2, 0.0, 1.0, math.nan],
        [1e-300, 1e-12, 0.999999],
    ]
    for _ in range(24):  # statsmodels' own Holm takes about 40 ms a family
        n = int(rng.integers(1, 41))
        p = rng.uniform(size=n) ** rng.uniform(0.5, 4)  # some families crowd near 0
        if rng.uniform() < 0.5:
            p = np.round(p, int(rng.integers(1, 3)))  # ties
        p[rng.uniform(size=n) < 0.1] = 0.0
        p[rng.uniform(size=n) < 0.1] = 1.0
        families.append(p.tolist())
    return families


@pytest.mark.parametrize(("correction", "method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_corrections_give_statsmodels_values(correction: stats.Correction, method: str) -> None:
    """The corrections replaced statsmodels' ``multipletests`` (about 150 MB of the light core
    with pandas); they must give its values, NaN where it gives NaN, in the full venv."""
    import numpy as np

    multitest = pytest.importorskip("statsmodels.stats.multitest")
    for family in _p_value_families():
        with np.errstate(invalid="ignore"):
            expected = multitest.multipletests(family, method=method)[1]
        got = stats.adjust_p_values(family, correction)
        assert all(isinstance(p, float) for p in got)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0, err_msg=str(family))
