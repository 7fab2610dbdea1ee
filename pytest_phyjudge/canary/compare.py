"""Comparing a judge's answers to the recorded canaries: behaviour, not labels.

Per axis and pooled: greedy digit agreement (the fraction of items whose digit is the same),
the mean |difference| of expected scores, and the largest total-variation distance between
two digit distributions. Default tolerances: on the same judge, weights, settings and device
the replies repeat exactly (measured with the tiny judge: agreement 1.0, differences 0.0), so
any sizeable change is the judge's; across GPUs, dtypes or kernel versions the logits move by
float noise, which shifts an expected score by hundredths and flips a digit only where two
digits are nearly tied. Hence tolerances tight but not zero: at most a tenth of the digits may
differ, expected scores by 0.25 on average, and no item's distribution by more than 0.2 in
total variation. A judge that ignores its LoRA, reads another template or samples other
frames moves far more than that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_phyjudge._words import counted
from pytest_phyjudge.canary.model import CanaryItem, Reading, Setup
from pytest_phyjudge.engine.axes import MAX_SCORE, MIN_SCORE

DEFAULT_MAX_DISAGREE = 0.1
DEFAULT_MAX_MEAN_DIFF = 0.25
DEFAULT_MAX_TV = 0.2
POOLED = "all"

SAME = "same behaviour"
NEW_IDENTITY = "same behaviour under a new identity"
DRIFT = "drift"
IMPOSTOR = "the recorded identity but other behaviour"


@dataclass(frozen=True)
class Tolerances:
    max_disagree: float = DEFAULT_MAX_DISAGREE
    max_mean_diff: float = DEFAULT_MAX_MEAN_DIFF
    max_tv: float = DEFAULT_MAX_TV


@dataclass(frozen=True)
class AxisStats:
    """How one axis (or the pool, ``all``) answered against the record."""

    axis: str
    items: int
    agreement: float
    mean_diff: float
    max_tv: float

    def breaches(self, tol: Tolerances) -> list[str]:
        """What of this axis is out of tolerance, in words."""
        out = []
        if 1.0 - self.agreement > tol.max_disagree + 1e-12:
            out.append(f"digit agreement {self.agreement:.2f} < {1 - tol.max_disagree:.2f}")
        if self.mean_diff > tol.max_mean_diff + 1e-12:
            out.append(f"mean |expected diff| {self.mean_diff:.3f} > {tol.max_mean_diff:g}")
        if self.max_tv > tol.max_tv + 1e-12:
            out.append(f"max TV {self.max_tv:.3f} > {tol.max_tv:g}")
        return out


@dataclass(frozen=True)
class Verdict:
    kind: str
    axes: tuple[AxisStats, ...]
    drifted: tuple[tuple[str, tuple[str, ...]], ...]
    recorded: Setup
    now: Setup
    prompts_changed: int

    @property
    def holds(self) -> bool:
        return self.kind in (SAME, NEW_IDENTITY)

    def line(self) -> str:
        """The one line that says it all."""
        if self.kind == SAME:
            return f"same behaviour: {self.now.describe()} answers as recorded."
        if self.kind == NEW_IDENTITY:
            return (
                f"same behaviour under a new identity (a note): recorded as "
                f"{self.recorded.describe()}, now {self.now.describe()}; it answers as recorded."
            )
        where = "; ".join(f"{axis}: {', '.join(why)}" for axis, why in self.drifted)
        if self.kind == IMPOSTOR:
            return (
                f"THE RECORDED IDENTITY BUT OTHER BEHAVIOUR: this judge claims "
                f"{self.now.describe()} but does not answer like it ({where})."
            )
        return f"drift: recorded as {self.recorded.describe()}, now {self.now.describe()}; {where}."

    def table_lines(self) -> list[str]:
        return table_lines(self.axes)

    def notes(self) -> list[str]:
        """What changed besides the behaviour: settings, prompts, the setup around the judge."""
        before, now = self.recorded, self.now
        notes = []
        if dict(before.settings) != dict(now.settings):
            notes.append(
                f"settings recorded {dict(before.settings)}, checked with {dict(now.settings)}"
            )
        if self.prompts_changed:
            notes.append(
                f"the prompt text differs on {counted(self.prompts_changed, 'canary')} (another "
                "rubric or "
                "template than recorded)"
            )
        for name in ("device", "dtype"):
            if getattr(before, name) != getattr(now, name):
                notes.append(f"{name} recorded {getattr(before, name)}, now {getattr(now, name)}")
        fingerprint = [
            s.server.get("system_fingerprint") if s.server else None for s in (before, now)
        ]
        if fingerprint[0] != fingerprint[1]:
            notes.append(f"system_fingerprint recorded {fingerprint[0]}, now {fingerprint[1]}")
        moved = {
            name: (before.versions.get(name), now.versions.get(name))
            for name in set(before.versions) | set(now.versions)
            if before.versions.get(name) != now.versions.get(name)
        }
        if moved:
            shown = ", ".join(f"{n} {a} -> {b}" for n, (a, b) in sorted(moved.items()))
            notes.append(f"library versions changed: {shown}")
        return notes


def table_lines(axes: Sequence[AxisStats]) -> list[str]:
    """Per axis and pooled: items, digit agreement, mean |expected diff|, max TV."""
    rows = [f"{'axis':<24} {'items':>5} {'agree':>6} {'mean|dE|':>9} {'max TV':>7}"]
    for s in axes:
        rows.append(
            f"{s.axis:<24} {s.items:>5} {s.agreement:>6.2f} {s.mean_diff:>9.3f} {s.max_tv:>7.3f}"
        )
    return rows


def _distance(a: Reading, b: Reading) -> tuple[float, float]:
    """(|expected difference|, total variation) of two readings; a side with no
    distribution at all is as far as can be."""
    pa, pb = a.distribution(), b.distribution()
    if pa is None or pb is None:
        same = pa is None and pb is None
        return (0.0, 0.0) if same else (float(MAX_SCORE - MIN_SCORE), 1.0)
    ea = a.expected if a.expected is not None else 0.0
    eb = b.expected if b.expected is not None else 0.0
    return abs(ea - eb), 0.5 * sum(abs(x - y) for x, y in zip(pa, pb, strict=True))


def _stats(axis: str, pairs: Sequence[tuple[Reading, Reading]]) -> AxisStats:
    distances = [_distance(a, b) for a, b in pairs]
    return AxisStats(
        axis=axis,
        items=len(pairs),
        agreement=sum(a.digit == b.digit for a, b in pairs) / len(pairs),
        mean_diff=sum(d for d, _ in distances) / len(pairs),
        max_tv=max(tv for _, tv in distances),
    )


def compare(
    items: Sequence[CanaryItem],
    readings: Sequence[Reading],
    prompt_shas: Sequence[str],
    recorded: Setup,
    now: Setup,
    tol: Tolerances,
) -> Verdict:
    """The verdict on ``readings`` (in the order of ``items``) against the record."""
    by_axis: dict[str, list[tuple[Reading, Reading]]] = {}
    for item, reading in zip(items, readings, strict=True):
        by_axis.setdefault(item.axis, []).append((item.reading, reading))
    pooled = [pair for pairs in by_axis.values() for pair in pairs]
    stats = [_stats(axis, pairs) for axis, pairs in by_axis.items()]
    stats.append(_stats(POOLED, pooled))
    drifted = tuple((s.axis, tuple(s.breaches(tol))) for s in stats if s.breaches(tol))
    same_claim = recorded.claimed() == now.claimed()
    if not drifted:
        kind = SAME if same_claim else NEW_IDENTITY
    else:
        kind = IMPOSTOR if same_claim else DRIFT
    changed = sum(item.prompt_sha256 != sha for item, sha in zip(items, prompt_shas, strict=True))
    return Verdict(kind, tuple(stats), drifted, recorded, now, changed)
