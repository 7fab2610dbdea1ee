"""What a finished run does to its baseline, decided apart from pytest and the terminal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_phyjudge.reporting.checks import Check

if TYPE_CHECKING:
    from pytest_phyjudge.regression.baseline import Baseline, Entry
    from pytest_phyjudge.regression.compare import Comparison

Key = tuple[str, str, str]  # suite, case, axis


@dataclass(frozen=True)
class BaselineRequest:
    """The run's baseline flags, as plain values (``--phyjudge-update-baseline`` and co.)."""

    update: bool = False
    prune: bool = False
    any_judge: bool = False
    compare_plot: Path | None = None


@dataclass(frozen=True)
class BaselineUpdate:
    """The outcome of an update: refused (``refusal`` says why), or written."""

    refusal: str | None = None
    entries: int = 0
    added: int = 0
    #: The entries this run did not judge were removed (pruned, or another judge's).
    removed_unjudged: bool = False
    backup: Path | None = None
    #: The update was wanted but the file could not be written (the run must not exit 0).
    write_failed: bool = False


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


def run_entries(checks: Sequence[Check]) -> dict[Key, Entry]:
    """This run's baseline entries: one per scored suite item."""
    from pytest_phyjudge.regression.baseline import obtained_entry

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
    from pytest_phyjudge._exceptions import InputError
    from pytest_phyjudge.regression.compare import compare, scores_from_entries
    from pytest_phyjudge.reporting.charts import write_forest

    stored = scores_from_entries(
        ((key, e.score) for key, e in base.entries.items()), f"baseline {base.path.name}"
    )
    obtained = scores_from_entries(((key, e.score) for key, e in run.items()), "this run")
    try:
        comparison = compare(stored, obtained)
        write_forest(comparison, path)
    except (InputError, OSError) as exc:
        return None, str(exc)
    return comparison, None


def _update(
    base: Baseline,
    run: Mapping[Key, Entry],
    judge: Mapping[str, Any] | None,
    request: BaselineRequest,
    *,
    complete: bool,
) -> BaselineUpdate:
    """Write this run's entries into the baseline, unless the run cannot be trusted to."""
    from pytest_phyjudge.regression import baseline as bl

    if not complete:
        return BaselineUpdate(refusal="the run did not complete")
    if not run:
        return BaselineUpdate(refusal="this run scored nothing")
    kept = dict(base.entries)
    other_judge = base.exists and judge is not None and not bl.same_judge(base.judge, judge)
    if other_judge:
        if not request.any_judge:
            return BaselineUpdate(refusal=bl.judge_mismatch_message(base, judge or {}))
        kept = {}  # another judge's scores cannot stand beside this judge's
    if request.prune:
        kept = {key: entry for key, entry in kept.items() if key in run}
    entries = {**kept, **run}
    try:
        backup = bl.write_baseline(base.path, judge or base.judge, entries)
    except OSError as exc:
        return BaselineUpdate(refusal=f"cannot write {base.path} ({exc})", write_failed=True)
    return BaselineUpdate(
        entries=len(entries),
        added=sum(key not in base.entries for key in run),
        removed_unjudged=request.prune or other_judge,
        backup=backup,
    )


def settle_baseline(
    base: Baseline, checks: Sequence[Check], request: BaselineRequest, *, complete: bool
) -> BaselineRun:
    """Compare the run with its baseline, draw the comparison chart and update the baseline
    when asked; what happened, for the terminal summary."""
    run = run_entries(checks)
    comparison = chart_error = None
    if request.compare_plot is not None:
        comparison, chart_error = _chart(base, run, request.compare_plot)
    update = None
    if request.update:
        judge = next((c.judge.to_dict() for c in checks if c.judge is not None), None)
        update = _update(base, run, judge, request, complete=complete)
    return BaselineRun(
        path=base.path,
        by_status=_by_status(checks),
        removed=tuple(sorted(set(base.entries) - set(run))),
        chart=request.compare_plot,
        comparison=comparison,
        chart_error=chart_error,
        update=update,
    )
