"""Gates over repeated samples of one case: a pass rate and a mean, optionally with confidence.

Without ``pass_rate`` and ``min_mean`` a sampled axis needs every sample to reach
``min_score`` (pass rate 1.0). With ``confidence: c`` a gate compares its one-sided lower
bound at ``c`` (Wilson for the pass rate, percentile bootstrap for the mean) instead of the
point estimate, so a few lucky samples cannot pass. A sample without a score counts as
not reaching ``min_score`` and is left out of the mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from pytest_phyjudge._words import counted
from pytest_phyjudge.regression import stats
from pytest_phyjudge.suites import Gates

#: Level of the interval shown beside a point estimate when no confidence is set.
SHOWN_INTERVAL = 0.95


def summarize(scores: Sequence[int | None], *, min_score: int, gates: Gates) -> dict[str, Any]:
    """The estimates, intervals and verdict of one sampled axis, as plain JSON values."""
    n = len(scores)
    scored = [s for s in scores if s is not None]
    met = sum(s >= min_score for s in scored)
    confidence = gates.confidence
    pass_rate_gate = gates.pass_rate
    if pass_rate_gate is None and gates.min_mean is None:
        pass_rate_gate = 1.0
    out: dict[str, Any] = {
        "n": n,
        "scored": len(scored),
        "met": met,
        "min_score": min_score,
        "pass_rate_gate": pass_rate_gate,
        "min_mean_gate": gates.min_mean,
        "confidence": confidence,
        "pass_rate": met / n if n else None,
        "pass_rate_interval": list(stats.wilson_interval(met, n, SHOWN_INTERVAL)) if n else None,
        "pass_rate_bound": None,
        "mean": fmean(scored) if scored else None,
        "mean_interval": list(stats.bootstrap_interval(scored, SHOWN_INTERVAL)) if scored else None,
        "mean_bound": None,
    }
    failures: list[str] = []
    if pass_rate_gate is not None:
        rate = out["pass_rate"] or 0.0
        if confidence is not None and n:
            out["pass_rate_bound"] = stats.wilson_lower(met, n, confidence)
            rate = out["pass_rate_bound"]
        if rate < pass_rate_gate - 1e-12:
            failures.append("pass_rate")
    if gates.min_mean is not None:
        mean = out["mean"]
        if confidence is not None and scored:
            out["mean_bound"] = stats.bootstrap_lower(scored, confidence)
            mean = out["mean_bound"]
        if mean is None or mean < gates.min_mean - 1e-12:
            failures.append("min_mean")
    out["failed_gates"] = failures
    out["passed"] = not failures
    return out


def _pct(confidence: float) -> str:
    return f"{confidence * 100:g}%"


def gate_lines(summary: dict[str, Any]) -> list[str]:
    """One line per gate: the estimate, its interval or bound, the gate and the verdict."""
    lines = []
    n, met, min_score = summary["n"], summary["met"], summary["min_score"]
    confidence = summary.get("confidence")
    failed = set(summary.get("failed_gates") or ())
    gate = summary.get("pass_rate_gate")
    rate = summary.get("pass_rate")
    if rate is not None:
        lo, hi = summary["pass_rate_interval"]
        text = f"pass rate {rate:.2f} ({met} of {n} reach {min_score})"
        if summary.get("pass_rate_bound") is not None:
            text += f", {_pct(confidence)} lower bound {summary['pass_rate_bound']:.3f} (Wilson)"
        else:
            text += f", {_pct(SHOWN_INTERVAL)} Wilson interval [{lo:.2f}, {hi:.2f}]"
        if gate is not None:
            sign = "<" if "pass_rate" in failed else ">="
            text += f" {sign} pass_rate {gate:g}" + (" FAIL" if "pass_rate" in failed else "")
        lines.append(text)
    mean = summary.get("mean")
    gate = summary.get("min_mean_gate")
    if mean is None:
        lines.append("mean: no sample was scored" + (" FAIL" if "min_mean" in failed else ""))
    else:
        lo, hi = summary["mean_interval"]
        text = f"mean {mean:.2f} over {summary['scored']} scored"
        if summary.get("mean_bound") is not None:
            text += f", {_pct(confidence)} lower bound {summary['mean_bound']:.3f} (bootstrap)"
        else:
            text += f", {_pct(SHOWN_INTERVAL)} bootstrap interval [{lo:.2f}, {hi:.2f}]"
        if gate is not None:
            sign = "<" if "min_mean" in failed else ">="
            text += f" {sign} min_mean {gate:g}" + (" FAIL" if "min_mean" in failed else "")
        lines.append(text)
    return lines


def _short(path: str, base: Path | None) -> str:
    if base is None:
        return path
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path


def sample_lines(samples: Sequence[dict[str, Any]], base: Path | None = None) -> list[str]:
    """One line per sample: its number, seed, score and video (relative to ``base``)."""
    out = []
    for sample in samples:
        score = sample.get("score")
        what = f"score {score}" if score is not None else f"no score ({sample.get('error')})"
        if sample.get("expected") is not None:
            what += f" (expected {sample['expected']:.2f})"
        seed = f" seed {sample['seed']}" if sample.get("seed") is not None else ""
        video = f"  {_short(sample['video'], base)}" if sample.get("video") else ""
        out.append(f"#{sample['sample']}{seed}: {what}{video}")
    return out


def headline(axis: str, summary: dict[str, Any]) -> str:
    """The verdict line of a sampled item."""
    scores = counted(summary["n"], "sample")
    if summary["passed"]:
        return f"PhyJudge: {axis} passed its sample gates over {scores}"
    which = " and ".join(summary["failed_gates"])
    return f"PhyJudge: {axis} failed its {which} gate over {scores}"
