"""A finished run against its baseline, for the terminal summary: the run's entries read
from its checks, the verdicts by status and the comparison chart. What happens to the
baseline (the comparison, the update and its refusals) is decided by
``regression.baseline_update``; this module presents it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.regression.baseline import (
    Baseline,
    Entry,
    Key,
    obtained_entry,
    server_note,
)
from pytest_phyjudge.regression.baseline_update import (
    BaselineRequest,
    BaselineUpdate,
    baseline_comparison,
    update_baseline,
)
from pytest_phyjudge.regression.compare import Comparison
from pytest_phyjudge.reporting.charts import write_forest
from pytest_phyjudge.reporting.checks import Check

__all__ = [
    "BaselineRequest",
    "BaselineRun",
    "BaselineUpdate",
    "Key",
    "run_entries",
    "settle_baseline",
]


@dataclass(frozen=True)
class BaselineRun:
    """The run against its baseline: verdicts by status, entries it did not judge, the
    comparison chart (when asked) and the update (None when none was asked)."""

    path: Path
    by_status: Mapping[str, tuple[Key, ...]]
    removed: tuple[Key, ...]
    chart: Path | None = None
    comparison: Comparison | None = None
    chart_error: str | None = None
    update: BaselineUpdate | None = None
    #: The baseline was judged by a judge server that said otherwise of itself.
    judge_note: str | None = None
    #: Whether the baseline file existed when the run started.
    existed: bool = True

    @property
    def missing(self) -> bool:
        """The baseline file does not exist, this run did not create it, and it judged items
        that would have been compared: the run must not pass as if its gate had run."""
        return not self.existed and self.update is None and bool(self.by_status)


def run_entries(checks: Sequence[Check]) -> dict[Key, Entry]:
    """This run's baseline entries: one per scored suite item."""
    entries = {}
    for check in checks:
        if check.suite is None or check.case is None or check.value is None:
            continue
        samples = None if check.samples is None else [s.get("score") for s in check.samples]
        entries[(check.suite, check.case, check.axis)] = obtained_entry(
            check.value, check.expected, samples
        )
    return entries


def _by_status(checks: Sequence[Check]) -> dict[str, tuple[Key, ...]]:
    verdicts = {
        (c.suite, c.case, c.axis): c.baseline
        for c in checks
        if c.baseline is not None and c.suite is not None and c.case is not None
    }
    found: dict[str, list[Key]] = {}
    for key, verdict in verdicts.items():
        found.setdefault(verdict["status"], []).append(key)
    return {status: tuple(sorted(keys)) for status, keys in found.items()}


def _chart(
    base: Baseline, run: Mapping[Key, Entry], path: Path
) -> tuple[Comparison | None, str | None]:
    """Compare the run's scores with the baseline's and draw the chart: the comparison, or
    why there is none."""
    try:
        comparison = baseline_comparison(base, run)
        write_forest(comparison, path)
    except (InputError, OSError) as exc:
        return None, str(exc)
    return comparison, None


def settle_baseline(
    base: Baseline,
    checks: Sequence[Check],
    request: BaselineRequest,
    *,
    complete: bool,
    server: Mapping[str, Any] | None = None,
) -> BaselineRun:
    """Compare the run with its baseline, draw the comparison chart and update the baseline
    when asked; what happened, for the terminal summary. ``server``: what this run's judge
    server said of itself (recorded by an update, compared with the baseline's)."""
    run = run_entries(checks)
    comparison = chart_error = None
    if request.compare_plot is not None:
        comparison, chart_error = _chart(base, run, request.compare_plot)
    update = None
    if request.update:
        judge = next((c.judge.to_dict() for c in checks if c.judge is not None), None)
        update = update_baseline(base, run, judge, request, complete=complete, server=server)
    return BaselineRun(
        path=base.path,
        by_status=_by_status(checks),
        removed=tuple(sorted(set(base.entries) - set(run))),
        chart=request.compare_plot,
        comparison=comparison,
        chart_error=chart_error,
        update=update,
        judge_note=server_note(base.judge_server, server) if base.exists else None,
        existed=base.exists,
    )
