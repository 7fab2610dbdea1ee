"""The run as Markdown for a CI job summary (GitHub's ``GITHUB_STEP_SUMMARY``): what a
reviewer reads on the run's page without opening a log.

Threat model: it reads the run's checks, whose item ids, axis names, judge names and errors
come from suites, cache records and judge servers, and appends Markdown to the file the CI
names, which is published on the run's page. Every such string is escaped for Markdown
(:mod:`pytest_phyjudge._escape`), and the target is opened only when it is a regular file
(or does not exist yet): a pipe, a device, a socket or a folder is refused before it is
opened, with one warning, and never changes the run's exit status."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_phyjudge._escape import markdown_code, markdown_text, terminal_text
from pytest_phyjudge._exceptions import describe_error
from pytest_phyjudge._files import not_a_file
from pytest_phyjudge._words import counted
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.reporting.health import judge_health, replies_of_checks
from pytest_phyjudge.reporting.render import markdown_table
from pytest_phyjudge.reporting.run_report import identities
from pytest_phyjudge.reporting.tables import TINY_WARNING, axis_rows, axis_table, verdict_text

#: The variable GitHub Actions sets to the file a step appends its summary to.
SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"
#: At most this many failures and baseline changes are listed (the rest are counted).
LISTED = 25


class NotAFile(OSError):
    """The summary's target is a pipe, a device, a socket or a folder, so it was not opened."""


@dataclass(frozen=True)
class SummaryFiles:
    """The run's files worth pointing to (None when not written)."""

    report: Path | None = None
    html: Path | None = None
    #: The judge's checks (``health.judge_check_lines``): the canary check, the judge server.
    judge_lines: tuple[tuple[str, bool], ...] = ()
    #: Beside the baseline's verdicts: the baseline was judged by another judge server.
    baseline_note: str | None = None


def _name(check: Check) -> str:
    own_item = check.nodeid.rsplit("::", 1)[-1] == check.axis
    return check.nodeid if own_item else f"{check.nodeid} [{check.axis}]"


def _listed(rows: list[list[str]], head: list[str]) -> list[str]:
    lines = markdown_table(head, rows[:LISTED], left=len(head))
    if len(rows) > LISTED:
        lines.append(f"\n... and {len(rows) - LISTED} more.")
    return lines


def _verdict(check: Check) -> str:
    """fail, or what kept a missed threshold from failing: xfail, would fail."""
    if check.would_fail:
        return "would fail"
    return "xfail" if check.outcome == "xfailed" else "fail"


def _failures(checks: Sequence[Check]) -> list[str]:
    failed = [c for c in checks if not c.passed]
    if not failed:
        return []
    rows = [
        [markdown_code(_name(c), in_table=True), c.axis, verdict_text(c), _verdict(c)]
        for c in failed
    ]
    head = ["item", "axis", "score", "verdict"]
    return ["", f"#### Failures ({len(failed)})", "", *_listed(rows, head)]


def _baseline(checks: Sequence[Check], note: str | None = None) -> list[str]:
    verdicts = [(c, c.baseline or {}) for c in checks]
    changed = [(c, v) for c, v in verdicts if v.get("status") in ("drop", "improved")]
    if not changed:
        return ["", f"**Baseline note:** {markdown_text(note)}"] if note else []
    changed.sort(key=lambda pair: (pair[1]["status"] != "drop", pair[0].nodeid))
    drops = sum(v["status"] == "drop" for _, v in changed)
    rows = [
        [
            markdown_code(_name(c), in_table=True),
            v["status"],
            f"{v['stored']:g} -> {v['obtained']:g}",
        ]
        for c, v in changed
    ]
    title = (
        f"#### Baseline: {counted(drops, 'drop')}, {counted(len(changed) - drops, 'improvement')}"
    )
    noted = ["", f"**Note:** {markdown_text(note)}"] if note else []
    return ["", title, *noted, "", *_listed(rows, ["item", "change", "baseline -> now"])]


def step_summary(checks: Sequence[Check], files: SummaryFiles) -> list[str]:
    """The Markdown: a heading with the counts, the judge, the per-axis table, the failures
    with their scores, the baseline's drops and improvements, and where the reports are."""
    would = sum(c.would_fail for c in checks)
    failed = sum(not c.passed for c in checks) - would
    heading = f"### phyjudge: {counted(len(checks), 'check')}, {failed} failed"
    if would:
        heading += f", {would} would fail (--phyjudge-verdicts report)"
    lines = [heading, ""]
    for identity in identities(checks):
        note = f" **({TINY_WARNING})**" if identity.kind == "tiny" else ""
        lines.append(f"Judge: {markdown_text(identity.describe(portable=True))}{note}")
    for warning in judge_health(replies_of_checks(checks)):
        lines.append(f"**Judge warning:** {markdown_text(warning.message)}")
    for text, problem in files.judge_lines:
        lines.append(f"**{markdown_text(text)}**" if problem else markdown_text(text))
    head, body = axis_table(axis_rows(checks))
    lines += ["", *markdown_table(head, body, left=2)]
    lines += _failures(checks) + _baseline(checks, files.baseline_note)
    where = [
        f"{what}: {markdown_code(str(path))}"
        for what, path in (("HTML report", files.html), ("JSON report", files.report))
        if path is not None
    ]
    if where:
        lines += ["", *where]
    return lines


def append_step_summary(lines: Sequence[str], environ: dict[str, str] | None = None) -> Path | None:
    """Append ``lines`` to the file ``GITHUB_STEP_SUMMARY`` names; None when it is unset.
    OSError when the file cannot be written (the caller warns: a summary is a convenience),
    also when it is a pipe, a device, a socket or a folder: those are refused before they are
    opened (a pipe with no reader would block the run's end for ever). A symbolic link to a
    regular file is followed: the CI hands us the file to append to, wherever it lies."""
    target = (os.environ if environ is None else environ).get(SUMMARY_VARIABLE)
    if not target:
        return None
    path = Path(target)
    kind = not_a_file(path)
    if kind is not None:
        raise NotAFile(f"it is {kind}, not a file")
    # Opened without blocking and checked again once open: a pipe that took the file's
    # place after the check fails here (ENXIO without a reader) instead of hanging.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags | getattr(os, "O_NOCTTY", 0), 0o666)
    with open(fd, "a", encoding="utf-8") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotAFile("it is not a regular file")
        fh.write("\n".join(lines) + "\n\n")
    return path


def write_step_summary(
    checks: Sequence[Check],
    report: Path | None,
    html: str | Path | None,
    *,
    judge_lines: Sequence[tuple[str, bool]] = (),
    baseline_note: str | None = None,
) -> str | None:
    """Append the run's summary when ``GITHUB_STEP_SUMMARY`` is set; a file that cannot be
    written warns and is returned as the reason (the run's report is never at stake)."""
    files = SummaryFiles(
        report=report,
        html=Path(html) if html else None,
        judge_lines=tuple(judge_lines),
        baseline_note=baseline_note,
    )
    try:
        append_step_summary(step_summary(checks, files))
    except OSError as exc:
        why = str(exc) if isinstance(exc, NotAFile) else describe_error(exc)
        reason = terminal_text(f"cannot append to {os.environ.get(SUMMARY_VARIABLE)}: {why}")
        warnings.warn(f"pytest-phyjudge: no CI job summary: {reason}", UserWarning, stacklevel=2)
        return reason
    return None
