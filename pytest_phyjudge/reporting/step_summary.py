"""The run as Markdown for a CI job summary (GitHub's ``GITHUB_STEP_SUMMARY``): what a
reviewer reads on the run's page without opening a log."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_phyjudge._exceptions import describe_error
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.reporting.render import markdown_table
from pytest_phyjudge.reporting.run_report import identities
from pytest_phyjudge.reporting.tables import TINY_WARNING, axis_rows, axis_table, verdict_text

#: The variable GitHub Actions sets to the file a step appends its summary to.
SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"
#: At most this many failures and baseline changes are listed (the rest are counted).
LISTED = 25


@dataclass(frozen=True)
class SummaryFiles:
    """The run's files worth pointing to (None when not written)."""

    report: Path | None = None
    html: Path | None = None


def _name(check: Check) -> str:
    own_item = check.nodeid.rsplit("::", 1)[-1] == check.axis
    return check.nodeid if own_item else f"{check.nodeid} [{check.axis}]"


def _listed(rows: list[list[str]], head: list[str]) -> list[str]:
    lines = markdown_table(head, rows[:LISTED], left=len(head))
    if len(rows) > LISTED:
        lines.append(f"\n... and {len(rows) - LISTED} more.")
    return lines


def _failures(checks: Sequence[Check]) -> list[str]:
    failed = [c for c in checks if not c.passed]
    if not failed:
        return []
    rows = [[f"`{_name(c)}`", c.axis, verdict_text(c)] for c in failed]
    return ["", f"#### Failures ({len(failed)})", "", *_listed(rows, ["item", "axis", "score"])]


def _baseline(checks: Sequence[Check]) -> list[str]:
    verdicts = [(c, c.baseline or {}) for c in checks]
    changed = [(c, v) for c, v in verdicts if v.get("status") in ("drop", "improved")]
    if not changed:
        return []
    changed.sort(key=lambda pair: (pair[1]["status"] != "drop", pair[0].nodeid))
    drops = sum(v["status"] == "drop" for _, v in changed)
    rows = [
        [f"`{_name(c)}`", v["status"], f"{v['stored']:g} -> {v['obtained']:g}"] for c, v in changed
    ]
    title = f"#### Baseline: {drops} drops, {len(changed) - drops} improvements"
    return ["", title, "", *_listed(rows, ["item", "change", "baseline -> now"])]


def step_summary(checks: Sequence[Check], files: SummaryFiles) -> list[str]:
    """The Markdown: a heading with the counts, the judge, the per-axis table, the failures
    with their scores, the baseline's drops and improvements, and where the reports are."""
    failed = sum(not c.passed for c in checks)
    lines = [f"### phyjudge: {len(checks)} checks, {failed} failed", ""]
    for identity in identities(checks):
        note = f" **({TINY_WARNING})**" if identity.kind == "tiny" else ""
        lines.append(f"Judge: {identity.describe()}{note}")
    head, body = axis_table(axis_rows(checks))
    lines += ["", *markdown_table(head, body, left=2)]
    lines += _failures(checks) + _baseline(checks)
    where = [
        f"{what}: `{path}`"
        for what, path in (("HTML report", files.html), ("JSON report", files.report))
        if path is not None
    ]
    if where:
        lines += ["", *where]
    return lines


def append_step_summary(lines: Sequence[str], environ: dict[str, str] | None = None) -> Path | None:
    """Append ``lines`` to the file ``GITHUB_STEP_SUMMARY`` names; None when it is unset.
    OSError when the file cannot be written (the caller warns: a summary is a convenience)."""
    target = (os.environ if environ is None else environ).get(SUMMARY_VARIABLE)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n\n")
    return path


def write_step_summary(
    checks: Sequence[Check], report: Path | None, html: str | Path | None
) -> str | None:
    """Append the run's summary when ``GITHUB_STEP_SUMMARY`` is set; a file that cannot be
    written warns and is returned as the reason (the run's report is never at stake)."""
    files = SummaryFiles(report=report, html=Path(html) if html else None)
    try:
        append_step_summary(step_summary(checks, files))
    except OSError as exc:
        reason = f"cannot append to {os.environ.get(SUMMARY_VARIABLE)}: {describe_error(exc)}"
        warnings.warn(f"pytest-phyjudge: no CI job summary: {reason}", UserWarning, stacklevel=2)
        return reason
    return None
