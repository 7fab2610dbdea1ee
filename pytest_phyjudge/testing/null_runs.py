"""Two runs with no real change between them, shaped like PhyGround's results: how often a
comparison gate fires on noise alone (``phyjudge compare``'s false-alarm rate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_phyjudge.engine.axes import GENERAL_METRICS, MAX_SCORE, MIN_SCORE
from pytest_phyjudge.regression.compare import ScoreSet, compare, scores_from_values
from pytest_phyjudge.regression.stats import Correction

#: PhyGround's 250-prompt human-evaluation set: how many prompts list each law.
PHYGROUND_VIDEOS = 250
PHYGROUND_LAW_COUNTS: dict[str, int] = {
    "collision": 162,
    "momentum": 123,
    "gravity": 123,
    "impenetrability": 117,
    "material": 113,
    "inertia": 56,
    "boundary_interaction": 32,
    "flow_dynamics": 32,
    "shadow": 30,
    "fluid_continuity": 28,
    "displacement": 26,
    "buoyancy": 18,
    "reflection": 17,
}


@dataclass(frozen=True)
class FalseAlarms:
    """Of ``runs`` null comparisons: how many the gate fired on with the p-values raw (the
    gate before correction) and adjusted (the gate now)."""

    runs: int
    raw: int
    adjusted: int
    correction: Correction


def _truth(rng: Any) -> dict[tuple[str, str], int]:
    """One "true" score per (video, axis): the 3 general metrics on every video, each law on
    as many videos as in PhyGround's set."""
    truth = {}
    for index in range(PHYGROUND_VIDEOS):
        for metric in GENERAL_METRICS:
            truth[(f"v{index}", metric)] = int(rng.integers(MIN_SCORE, MAX_SCORE + 1))
    for law, count in PHYGROUND_LAW_COUNTS.items():
        for index in rng.choice(PHYGROUND_VIDEOS, size=count, replace=False):
            truth[(f"v{index}", law)] = int(rng.integers(MIN_SCORE, MAX_SCORE + 1))
    return truth


def _judged(rng: Any, truth: dict[tuple[str, str], int], name: str) -> ScoreSet:
    """The truth as a noisy judge scores it: each score moved by -1, 0 or +1, kept on 1-5."""
    noise = rng.integers(-1, 2, size=len(truth))
    values = [
        (((None, video), axis), float(min(MAX_SCORE, max(MIN_SCORE, score + int(step)))))
        for ((video, axis), score), step in zip(truth.items(), noise, strict=True)
    ]
    return scores_from_values(values, name, label=name)


def null_pair(seed: int) -> tuple[ScoreSet, ScoreSet]:
    """Two runs of the same videos by a judge with +-1 noise: nothing really changed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    truth = _truth(rng)
    return _judged(rng, truth, "run A"), _judged(rng, truth, "run B")


def false_alarms(runs: int, *, seed: int = 0, correction: Correction = "holm") -> FalseAlarms:
    """Compare ``runs`` null pairs (seeds ``seed``, ``seed + 1``, ...) and count how often
    an axis "regresses" at p < 0.05, raw and adjusted."""
    raw = adjusted = 0
    for offset in range(runs):
        c = compare(*null_pair(seed + offset), correction=correction)
        raw += any(r.delta < 0 and r.p_value < c.alpha for r in c.rows)
        adjusted += bool(c.regressions)
    return FalseAlarms(runs=runs, raw=raw, adjusted=adjusted, correction=correction)
