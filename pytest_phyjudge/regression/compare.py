"""Two sets of scores side by side: per-axis means, paired deltas, tests and a chart.

A set of scores is a ``scores.json`` report (``--phyjudge-report`` or ``phyjudge
score-dir``), a baseline file, or a pytest run's checks. Cases are paired by suite and case
id (the ``video`` stem for reports without a suite); a sampled case counts once, with its
mean. Per axis: the means of A and B over the shared cases with percentile bootstrap
intervals, the mean paired delta B - A with its bootstrap interval, and the two-sided
sign-flip permutation test of the deltas (``stats.sign_flip_p_value``). An axis regresses
when its delta is negative and that test's p-value is below ``1 - confidence``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.engine.axes import ALL_AXES, GENERAL_METRICS, MAX_SCORE, MIN_SCORE
from pytest_phyjudge.regression import stats

DEFAULT_CONFIDENCE = 0.95
#: The chart's size: 1000 x 500 pixels.
CHART_SIZE_INCHES = (10.0, 5.0)
CHART_DPI = 100

Pair = tuple[str, str]  # case, axis


@dataclass(frozen=True)
class ScoreSet:
    """Scores by (case, axis); ``name`` says where they come from."""

    name: str
    values: Mapping[Pair, float]
    judge: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AxisComparison:
    axis: str
    n: int
    mean_a: float
    mean_b: float
    interval_a: tuple[float, float]
    interval_b: tuple[float, float]
    delta: float
    interval: tuple[float, float]
    p_value: float
    regression: bool


@dataclass
class Comparison:
    a: ScoreSet
    b: ScoreSet
    confidence: float
    rows: list[AxisComparison]
    overall: AxisComparison
    shared_cases: int
    only_a: int
    only_b: int
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[AxisComparison]:
        return [r for r in self.rows if r.regression]


# --------------------------------------------------------------------------- reading


def _case_key(row: Mapping[str, Any]) -> str:
    suite = row.get("suite")
    return f"{suite}::{row['video']}" if suite else str(row["video"])


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _score(value: Any, name: str, case: str, field: str) -> float | None:
    """A report's score: None when it holds none (null or absent), else a finite number from
    MIN_SCORE to MAX_SCORE; anything else is an InputError naming the file, case and field."""
    if value is None:
        return None
    if _number(value) and math.isfinite(value) and MIN_SCORE <= value <= MAX_SCORE:
        return float(value)
    raise InputError(
        f"{name}: case {case!r} has {field} = {value!r}, which is not a score. A score is a "
        f"number from {MIN_SCORE} to {MAX_SCORE} (null when the axis was not scored); fix "
        "that field, or re-create the report with phyjudge score-dir or --phyjudge-report."
    )


def scores_from_report(data: Any, name: str) -> ScoreSet:
    """The scores of a PhyGround-style ``scores.json`` document."""
    fmt = 'a scores.json report has "results": [{"video", "SA", ..., "physical": {...}}]'
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise InputError(f"{name} is not a scores.json report ({fmt}).")
    values: dict[Pair, float] = {}
    for index, row in enumerate(data["results"]):
        if not isinstance(row, dict) or "video" not in row:
            raise InputError(f"{name}: results[{index}] has no 'video'; {fmt}.")
        case = _case_key(row)
        for metric in GENERAL_METRICS:
            value = _score(row.get(metric), name, case, f"results[{index}].{metric}")
            if value is not None:
                values[(case, metric)] = value
        physical = row.get("physical") or {}
        laws = physical.get("laws") or {} if isinstance(physical, dict) else None
        if not isinstance(laws, dict):
            raise InputError(f"{name}: results[{index}].physical.laws is not an object; {fmt}.")
        for law, entry in laws.items():
            field = f"results[{index}].physical.laws.{law}"
            if not isinstance(entry, dict):
                raise InputError(f"{name}: case {case!r} has {field} = {entry!r}; {fmt}.")
            value = _score(entry.get("score"), name, case, f"{field}.score")
            if value is not None:
                values[(case, law)] = value
    judge = (data.get("meta") or {}).get("judge") if isinstance(data.get("meta"), dict) else None
    return ScoreSet(name=name, values=values, judge=judge)


def read_report(path: str | Path) -> ScoreSet:
    """Read a ``scores.json`` file; an InputError that names the file when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"The report {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"The report {path} cannot be read ({exc}).") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"The report {path} is not valid JSON ({exc.msg} at line {exc.lineno})."
        ) from None
    except RecursionError:
        raise InputError(
            f"The report {path} is nested too deeply to read; a scores.json report nests a few "
            "levels of objects. Check that this is the right file."
        ) from None
    return scores_from_report(data, str(path))


def scores_from_entries(
    entries: Iterable[tuple[tuple[str, str, str], float]],
    name: str,
    judge: Mapping[str, Any] | None = None,
) -> ScoreSet:
    """Scores keyed (suite, case, axis), as a baseline or a run holds them."""
    values = {(f"{suite}::{case}", axis): float(v) for (suite, case, axis), v in entries}
    return ScoreSet(name=name, values=values, judge=judge)


# --------------------------------------------------------------------------- comparing


def _axis_row(axis: str, pairs: Sequence[tuple[float, float]], confidence: float) -> AxisComparison:
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    deltas = [y - x for x, y in pairs]
    p_value = stats.sign_flip_p_value(deltas)
    delta = fmean(deltas)
    return AxisComparison(
        axis=axis,
        n=len(pairs),
        mean_a=fmean(a),
        mean_b=fmean(b),
        interval_a=stats.bootstrap_interval(a, confidence),
        interval_b=stats.bootstrap_interval(b, confidence),
        delta=delta,
        interval=stats.bootstrap_interval(deltas, confidence),
        p_value=p_value,
        regression=delta < 0 and p_value < 1 - confidence,
    )


def compare(a: ScoreSet, b: ScoreSet, *, confidence: float = DEFAULT_CONFIDENCE) -> Comparison:
    """Pair A and B over their shared (case, axis); InputError when they share no case."""
    if not 0 < confidence < 1:
        raise InputError(f"confidence is {confidence!r}; give a number in (0, 1), e.g. 0.95.")
    cases_a = {case for case, _ in a.values}
    cases_b = {case for case, _ in b.values}
    shared = cases_a & cases_b
    if not shared:
        raise InputError(
            f"{a.name} and {b.name} have no case in common ({len(cases_a)} and {len(cases_b)} "
            "cases), so there is nothing to pair. Compare two runs of the same suite or "
            "prompt set (cases are matched by suite and case id, or by video stem)."
        )
    by_axis: dict[str, list[tuple[float, float]]] = {}
    for (case, axis), value in a.values.items():
        if case in shared and (case, axis) in b.values:
            by_axis.setdefault(axis, []).append((value, b.values[(case, axis)]))
    if not by_axis:
        raise InputError(
            f"{a.name} and {b.name} share {len(shared)} cases but no scored axis of them."
        )
    order = [axis for axis in ALL_AXES if axis in by_axis]
    order += sorted(set(by_axis) - set(order))
    rows = [_axis_row(axis, by_axis[axis], confidence) for axis in order]
    everything = [pair for axis in order for pair in by_axis[axis]]
    notes = []
    from pytest_phyjudge.regression.baseline import describe_judge, same_judge

    if not same_judge(a.judge, b.judge):
        notes.append(
            f"A and B were judged by different judges ({describe_judge(a.judge)} vs "
            f"{describe_judge(b.judge)}): the deltas mix the judges' and the videos' changes."
        )
    return Comparison(
        a=a,
        b=b,
        confidence=confidence,
        rows=rows,
        overall=_axis_row("all", everything, confidence),
        shared_cases=len(shared),
        only_a=len(cases_a - shared),
        only_b=len(cases_b - shared),
        notes=notes,
    )


def _pct(confidence: float) -> str:
    return f"{confidence * 100:g}%"


def table_lines(comparison: Comparison) -> list[str]:
    c = comparison
    head = ("axis", "n", "mean A", "mean B", "delta", f"{_pct(c.confidence)} CI", "p", "")
    body = []
    for r in [*c.rows, c.overall]:
        body.append(
            (
                r.axis,
                str(r.n),
                f"{r.mean_a:.2f}",
                f"{r.mean_b:.2f}",
                f"{r.delta:+.2f}",
                f"[{r.interval[0]:+.2f}, {r.interval[1]:+.2f}]",
                f"{r.p_value:.3f}",
                "REGRESSION" if r.regression and r.axis != "all" else "",
            )
        )
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

    def fmt(row: Sequence[str]) -> str:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(w) for cell, w in zip(row[1:-1], widths[1:-1], strict=True)]
        return "  ".join([*cells, row[-1]]).rstrip()

    lines = [
        f"A: {c.a.name}",
        f"B: {c.b.name}",
        f"shared cases: {c.shared_cases} (only in A: {c.only_a}, only in B: {c.only_b}); "
        f"delta = B - A, paired over shared cases; p: two-sided sign-flip permutation test",
        *c.notes,
        fmt(head),
        *(fmt(row) for row in body),
    ]
    regressions = c.regressions
    alpha = 1 - c.confidence
    if regressions:
        names = ", ".join(r.axis for r in regressions)
        lines.append(f"significant regressions (p < {alpha:.2g}): {len(regressions)} ({names})")
    else:
        lines.append(f"no significant regression (p < {alpha:.2g})")
    return lines


# --------------------------------------------------------------------------- the chart


def write_chart(comparison: Comparison, path: str | Path) -> Path:
    """A PNG of CHART_SIZE_INCHES at CHART_DPI: per axis, A's and B's means side by side with
    their bootstrap intervals; regressing axes are marked in red."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    c = comparison
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=CHART_SIZE_INCHES, dpi=CHART_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = list(range(len(c.rows)))
    width = 0.38
    for offset, label, means, intervals, color in (
        (-width / 2, "A", [r.mean_a for r in c.rows], [r.interval_a for r in c.rows], "#7a8ca3"),
        (width / 2, "B", [r.mean_b for r in c.rows], [r.interval_b for r in c.rows], "#e08a3c"),
    ):
        errors = [
            [max(0.0, m - lo) for m, (lo, _) in zip(means, intervals, strict=True)],
            [max(0.0, hi - m) for m, (_, hi) in zip(means, intervals, strict=True)],
        ]
        ax.bar(
            [x + offset for x in xs],
            means,
            width,
            yerr=errors,
            capsize=3,
            label=label,
            color=color,
        )
    ax.set_xticks(xs)
    ax.set_xticklabels([r.axis for r in c.rows], rotation=30, ha="right", fontsize=8)
    for tick, row in zip(ax.get_xticklabels(), c.rows, strict=True):
        if row.regression:
            tick.set_color("red")
            tick.set_fontweight("bold")
    ax.set_ylim(0, 5.5)
    ax.set_ylabel("mean score (1-5)")
    ax.set_title(
        f"A: {Path(c.a.name).name}  vs  B: {Path(c.b.name).name}  "
        f"({c.shared_cases} shared cases, {_pct(c.confidence)} bootstrap intervals; "
        "red: significant regression)",
        fontsize=9,
    )
    ax.legend(loc="upper right", fontsize=8)
    fig.subplots_adjust(bottom=0.2, top=0.9, left=0.07, right=0.98)
    fig.savefig(path, format="png")
    return path
