"""The run's terminal text as plain strings, so it is testable without a pytest terminal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import mean
from typing import TYPE_CHECKING, Any

from pytest_phyjudge._words import counted
from pytest_phyjudge.engine.axes import ALL_AXES, domain_of
from pytest_phyjudge.engine.judgment import STAND_IN_WARNING
from pytest_phyjudge.regression.baseline import UPDATE_FLAG
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.reporting.compare_view import comparison_text
from pytest_phyjudge.reporting.render import text_table

if TYPE_CHECKING:
    from pytest_phyjudge.regression.compare import Comparison
    from pytest_phyjudge.reporting.baseline_run import BaselineRun, Key

WORST_SHOWN = 10
TINY_WARNING = STAND_IN_WARNING.format(kind="tiny")
#: What to do after a run on the tiny judge: it checked the install (or a suite's wiring), now
#: judge real clips. Worded to fit both the example suite's first run and one of your own suite.
NEXT_STEP = (
    "Next: run a suite of your own clips (docs/tutorial.md) with the real judge on a GPU: "
    "drop --phyjudge-judge tiny."
)

#: A terminal line and whether it is shown in red (it reports a problem).
Line = tuple[str, bool]


@dataclass(frozen=True)
class AxisRow:
    """One axis of the run: how many items checked it, passed and failed, and their scores."""

    axis: str
    domain: str
    items: int
    passed: int
    failed: int
    mean: float | None
    min: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _failed_by_baseline(check: Check) -> bool:
    """Its own gates passed, but the item failed on a drop below the baseline."""
    return (check.baseline or {}).get("status") == "drop" and check.outcome == "failed"


def axis_rows(checks: Sequence[Check]) -> list[AxisRow]:
    """One row per axis checked, in the rubric's order of axes."""
    rows = []
    for axis in ALL_AXES:
        mine = [c for c in checks if c.axis == axis]
        if not mine:
            continue
        scores = [c.value for c in mine if c.value is not None]
        passed = sum(c.passed and not _failed_by_baseline(c) for c in mine)
        rows.append(
            AxisRow(
                axis=axis,
                domain=domain_of(axis),
                items=len(mine),
                passed=passed,
                failed=len(mine) - passed,
                mean=mean(scores) if scores else None,
                min=min(scores) if scores else None,
            )
        )
    return rows


def axis_table(rows: Sequence[AxisRow]) -> tuple[list[str], list[list[str]]]:
    """The axis table's heading and cells, for the terminal and the job summary alike."""
    head = ["axis", "domain", "items", "passed", "failed", "mean", "min"]
    body = [
        [
            r.axis,
            r.domain,
            str(r.items),
            str(r.passed),
            str(r.failed),
            "-" if r.mean is None else f"{r.mean:.2f}",
            "-" if r.min is None else f"{r.min:g}",
        ]
        for r in rows
    ]
    return head, body


def table_lines(rows: Sequence[AxisRow]) -> list[str]:
    """The axis table: names left-aligned, numbers right-aligned."""
    head, body = axis_table(rows)
    return text_table(head, body, left=2)


def verdict_text(check: Check) -> str:
    """A check's verdict in a few words: its score against its threshold, or why none."""
    if check.summary is not None:
        summary = check.summary
        what = f"{summary['met']}/{counted(summary['n'], 'sample')} >= {check.min_score}"
        if summary.get("mean") is not None:
            what += f", mean {summary['mean']:.2f}"
        return what
    if check.score is None:
        return f"no score ({(check.error or '').split(':', 1)[0]})"
    return f"{check.score} {'>=' if check.passed else '<'} {check.min_score}"


def worst_lines(checks: Sequence[Check], limit: int = WORST_SHOWN) -> list[str]:
    """The lowest checks: no score first, then by margin below the threshold."""

    def badness(c: Check) -> tuple[int, float, str]:
        margin = -99 if c.value is None else c.value - c.min_score
        return (c.passed, margin, c.nodeid)

    rows = []
    for check in sorted(checks, key=badness)[:limit]:
        what = verdict_text(check)
        own_item = check.nodeid.rsplit("::", 1)[-1] == check.axis
        name = check.nodeid if own_item else f"{check.nodeid} [{check.axis}]"
        verdict = "PASS" if check.passed else "FAIL"
        if not check.passed and (check.would_fail or check.outcome == "xfailed"):
            verdict = "WOULD FAIL" if check.would_fail else "XFAIL"
        if check.passed and (check.baseline or {}).get("status") == "drop":
            verdict = "DROP"
            what += f" (baseline {check.baseline['stored']:g})"  # type: ignore[index]
        rows.append((verdict, what, name))
    width = max((len(what) for _, what, _ in rows), default=0)
    wide = max((len(verdict) for verdict, _, _ in rows), default=0)
    return [f"{verdict:<{wide}}  {what:<{width}}  {name}" for verdict, what, name in rows]


def tiny_run_line(checks: Sequence[Check], *, enforced: bool) -> str | None:
    """The last line of a run the tiny judge judged: what its verdicts mean (nothing about
    the clips) and what to run next; None for any other judge. ``enforced``: the run's
    verdicts fail items (``--phyjudge-verdicts enforce``)."""
    judges = {c.judgment.judge if c.judgment is not None else c.judge for c in checks}
    if not any(j is not None and j.kind == "tiny" for j in judges):
        return None
    missed = [c for c in checks if not c.passed and c.value is not None]
    expected = sum(c.outcome == "xfailed" for c in missed)
    outcome = f"{len(missed)} of {counted(len(checks), 'verdict')} would fail"
    if enforced and len(missed) > expected:
        outcome = (
            f"{len(missed)} of {counted(len(checks), 'verdict')} failed (add "
            "--phyjudge-verdicts report to record them without failing the run)"
        )
    if expected:
        outcome += f", {expected} of them as expected (xfail)"
    drops = sum(_failed_by_baseline(c) for c in checks)  # these fail in either verdicts mode
    if drops:
        outcome += f"; {drops} failed on a drop below the baseline"
    return (
        "phyjudge: the tiny judge's scores are meaningless (it checks the install, not your "
        f"clips): {outcome}. {NEXT_STEP}"
    )


# --------------------------------------------------------------------------- the baseline


def named(keys: Iterable[Key], limit: int = WORST_SHOWN) -> str:
    """``suite::case::axis`` names, the first ``limit`` of them and how many more."""
    names = [f"{suite}::{case}::{axis}" for suite, case, axis in keys]
    return ", ".join(names[:limit]) + (
        f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    )


def comparison_lines(comparison: Comparison, chart: Path) -> list[Line]:
    """The comparison table of the run against its baseline, and where its chart went."""
    return [(line, False) for line in comparison_text(comparison)] + [
        (f"comparison chart: {chart}", False)
    ]


def _update_lines(run: BaselineRun) -> list[Line]:
    update = run.update
    if update is None:  # not asked to update
        hint = run.by_status.get("new") or run.removed
        return [("  update it with --phyjudge-update-baseline", False)] if hint else []
    if update.refusal is not None:
        return [(f"baseline NOT updated: {update.refusal}", True)]
    text = f"baseline updated: {run.path} ({counted(update.entries, 'entry')}, {update.added} new"
    if run.removed:
        gone = "removed" if update.removed_unjudged else "kept"
        text += f", {len(run.removed)} not judged in this run {gone}"
    text += ")" + (f"; previous version kept as {update.backup}" if update.backup else "")
    lines = [(text, False)]
    if run.removed and not update.removed_unjudged:
        kept = f"  kept: {named(run.removed)} (remove with --phyjudge-prune-baseline)"
        lines.append((kept, False))
    return lines


def baseline_lines(run: BaselineRun) -> list[Line]:
    """What the run did with its baseline: drops, improvements, the chart, the update."""
    if run.missing:
        lines: list[Line] = [
            (
                f"phyjudge baseline {run.path} does not exist yet: nothing was compared "
                f"against it. Create it from this run's scores with {UPDATE_FLAG} (then "
                "commit it).",
                True,
            )
        ]
        if run.chart_error is not None:
            lines.append((f"comparison chart NOT written: {run.chart_error}", True))
        return lines
    drops, improved = run.by_status.get("drop", ()), run.by_status.get("improved", ())
    lines = [
        (
            f"phyjudge baseline {run.path}: {counted(len(drops), 'drop')}, "
            f"{counted(len(improved), 'improvement')}, "
            f"{len(run.by_status.get('new', ()))} new, {len(run.removed)} not judged in this run",
            bool(drops) and run.update is None,
        )
    ]
    if run.judge_note is not None:
        lines.append((f"  note: {run.judge_note}", False))
    for keys, label, red in (
        (drops, "dropped", True),
        (improved, "improved (raise the baseline)", False),
    ):
        if keys:
            lines.append((f"  {label}: {named(keys)}", red))
    if run.chart_error is not None:
        lines.append((f"comparison chart NOT written: {run.chart_error}", True))
    elif run.comparison is not None and run.chart is not None:
        lines += comparison_lines(run.comparison, run.chart)
    return lines + _update_lines(run)
