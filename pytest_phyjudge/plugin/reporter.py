"""The run's reports: a terminal table per axis, PhyGround's ``scores.json``, JUnit properties
and contact sheets of failed items.

Checks reach the reporter on the test reports (``report.phyjudge_checks``), so under
pytest-xdist the controller reports what every worker judged; workers write nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

import pytest

from pytest_phyjudge._exceptions import describe_error
from pytest_phyjudge.engine.axes import ALL_AXES, domain_of
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.plugin.state import Options, PhyJudgeState
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.reporting.scores import VideoResult, build_scores, write_json_atomic

WORST_SHOWN = 10
TINY_WARNING = "a tiny random stand-in for PhyJudge: THESE SCORES ARE MEANINGLESS"


def outcome_of(report: pytest.TestReport) -> str:
    """passed / failed / skipped, with xfail turned into xfailed / xpassed."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


def sheets_dir(options: Options) -> Path | None:
    """Contact sheets go beside the JSON report, in ``<report stem>-sheets/``."""
    if options.report is None:
        return None
    return options.report.parent / f"{options.report.stem}-sheets"


# --------------------------------------------------------------------------- per test report


def _make_sheet(check: Check, folder: Path, suffix: str = "") -> Path | None:
    from pytest_phyjudge.reporting.sheets import sheet_name, write_contact_sheet

    if check.video is None or not Path(check.video).is_file():
        return None
    verdict = "no score" if check.score is None else f"{check.score} < {check.min_score}"
    if check.summary is not None:
        verdict = f"{check.summary['met']}/{check.summary['n']} samples reach {check.min_score}"
    judge = f"   judge: {check.judge.describe()}" if check.judge is not None else ""
    title = f"{check.nodeid}\n{check.axis}: {verdict}{judge}\n{check.caption[:140]}"
    settings = check.settings or {}
    kwargs = {k: settings[k] for k in ("fps", "max_pixels") if settings.get(k)}
    try:
        return write_contact_sheet(
            check.video,
            folder / sheet_name(check.nodeid, check.axis + suffix),
            title=title,
            **kwargs,
        )
    except Exception as exc:  # a sheet is a convenience: never fail a test over it
        warnings.warn(
            f"pytest-phyjudge: no contact sheet for {check.nodeid} ({describe_error(exc)}).",
            pytest.PytestWarning,
            stacklevel=1,
        )
        return None


def _html_extra(report: pytest.TestReport, sheet: Path) -> None:
    try:
        from pytest_html import extras
    except ImportError:
        return
    data = base64.b64encode(sheet.read_bytes()).decode("ascii")
    report.extras = [*getattr(report, "extras", []), extras.png(data, name=sheet.name)]


def attach_checks(state: PhyJudgeState, item: pytest.Item, report: pytest.TestReport) -> None:
    """Move the checks made during this phase of ``item`` onto its report, with contact
    sheets (and pytest-html extras) for the failed ones."""
    checks = state.pop_checks(item.nodeid)
    if not checks:
        return
    folder = sheets_dir(state.options)
    seen: dict[str, int] = {}
    for check in checks:
        check.outcome = outcome_of(report)
        if folder is not None and not check.passed:
            # One test may check the same axis on several videos: number the repeats.
            seen[check.axis] = seen.get(check.axis, 0) + 1
            suffix = f"-{seen[check.axis]}" if seen[check.axis] > 1 else ""
            sheet = _make_sheet(check, folder, suffix)
            if sheet is not None:
                check.sheet = str(sheet)
                if item.config.pluginmanager.hasplugin("html"):
                    _html_extra(report, sheet)
    report.phyjudge_checks = [c.to_dict() for c in checks]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- summaries


@dataclass(frozen=True)
class AxisRow:
    axis: str
    domain: str
    items: int
    passed: int
    failed: int
    mean: float | None
    min: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _failed_by_baseline(check: Check) -> bool:
    """Its own gates passed, but the item failed on a drop below the baseline."""
    return (check.baseline or {}).get("status") == "drop" and check.outcome == "failed"


def axis_rows(checks: Sequence[Check]) -> list[AxisRow]:
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


def table_lines(rows: Sequence[AxisRow]) -> list[str]:
    head = ("axis", "domain", "items", "passed", "failed", "mean", "min")
    body = [
        (
            r.axis,
            r.domain,
            str(r.items),
            str(r.passed),
            str(r.failed),
            "-" if r.mean is None else f"{r.mean:.2f}",
            "-" if r.min is None else f"{r.min:g}",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

    def fmt(row: Sequence[str]) -> str:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        return "  ".join(cells).rstrip()

    return [fmt(head), *(fmt(row) for row in body)]


def worst_lines(checks: Sequence[Check], limit: int = WORST_SHOWN) -> list[str]:
    """The lowest checks: no score first, then by margin below the threshold."""

    def badness(c: Check) -> tuple[int, float, str]:
        margin = -99 if c.value is None else c.value - c.min_score
        return (c.passed, margin, c.nodeid)

    rows = []
    for check in sorted(checks, key=badness)[:limit]:
        if check.summary is not None:
            summary = check.summary
            what = f"{summary['met']}/{summary['n']} samples >= {check.min_score}"
            if summary.get("mean") is not None:
                what += f", mean {summary['mean']:.2f}"
        elif check.score is None:
            what = f"no score ({(check.error or '').split(':', 1)[0]})"
        else:
            what = f"{check.score} {'>=' if check.passed else '<'} {check.min_score}"
        own_item = check.nodeid.rsplit("::", 1)[-1] == check.axis
        name = check.nodeid if own_item else f"{check.nodeid} [{check.axis}]"
        verdict = "PASS" if check.passed else "FAIL"
        if check.passed and (check.baseline or {}).get("status") == "drop":
            verdict = "DROP"
            what += f" (baseline {check.baseline['stored']:g})"  # type: ignore[index]
        rows.append((verdict, what, name))
    width = max((len(what) for _, what, _ in rows), default=0)
    return [f"{verdict}  {what:<{width}}  {name}" for verdict, what, name in rows]


def identities(checks: Iterable[Check]) -> list[JudgeIdentity]:
    found: list[JudgeIdentity] = []
    for check in checks:
        judge = check.judgment.judge if check.judgment is not None else check.judge
        if judge is not None and judge not in found:
            found.append(judge)
    return found


# --------------------------------------------------------------------------- scores.json


def _group(checks: Sequence[Check]) -> list[tuple[VideoResult, list[Check]]]:
    groups: dict[tuple[Any, ...], tuple[VideoResult, list[Check]]] = {}
    for check in checks:
        key = ("case", check.suite, check.case) if check.case else (check.video, check.caption)
        if key not in groups:
            name = check.case or (Path(check.video).stem if check.video else "?")
            groups[key] = (VideoResult(video=name, prompt=check.caption, physical_laws=[]), [])
        result, members = groups[key]
        members.append(check)
        laws = list(result.physical_laws)
        laws += [law for law in check.laws if law not in laws]
        result.physical_laws = laws
        judged: Judgment | Exception = check.judgment or Exception(check.error or "no score")
        result.outcomes[check.axis] = judged
        if check.samples is not None:
            result.values[check.axis] = check.value
            result.extra.setdefault("samples", {})[check.axis] = [
                s.get("score") for s in check.samples
            ]
    return list(groups.values())


def _relative(path: str | None, base: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path


def build_report(
    checks: Sequence[Check],
    *,
    options: Options,
    state_judge: JudgeIdentity | None,
    run: dict[str, Any],
) -> dict[str, Any]:
    """PhyGround's scores.json, plus per axis the threshold and verdict, the judge and the
    run's settings."""
    base = options.report.parent if options.report else Path.cwd()
    results = []
    for result, members in _group(checks):
        result.extra["suite"] = members[0].suite
        result.extra["video_path"] = next((c.video for c in members if c.video), None)
        result.extra["checks"] = {
            c.axis: {
                "score": c.value,
                "min_score": c.min_score,
                "passed": c.passed,
                "outcome": c.outcome,
                "nodeid": c.nodeid,
                "raw": None if c.judgment is None else c.judgment.raw,
                "error": c.error,
                "sheet": _relative(c.sheet, base),
                **({} if c.samples is None else {"samples": c.samples, "summary": c.summary}),
                **({} if c.baseline is None else {"baseline": c.baseline}),
            }
            for c in members
        }
        result.extra["passed"] = all(c.passed for c in members)
        results.append(result)
    found = identities(checks) or ([state_judge] if state_judge else [])
    settings = next((c.settings for c in checks if c.settings), {})
    meta = {
        "tool": "pytest-phyjudge",
        "version": _version(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "judge": found[0].to_dict() if found else None,
        "judges": [j.to_dict() for j in found],
        "scores_meaningless": any(j.kind in ("tiny", "scripted") for j in found),
        "settings": {"judge": settings, "plugin": options.to_dict()},
        "run": run,
    }
    document = build_scores(results, meta)
    document["num_checks"] = len(checks)
    document["passed"] = all(c.passed for c in checks)
    document["axes"] = {row.axis: row.to_dict() for row in axis_rows(checks)}
    return document


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-phyjudge")
    except PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------- the reporter


class PhyJudgeReporter:
    """Registered as a plugin on the controller (never on an xdist worker)."""

    def __init__(self, state: PhyJudgeState) -> None:
        self.state = state
        self.config = state.config
        self.checks: list[Check] = []
        self.written: Path | None = None
        self.videos = 0
        self.write_error: str | None = None
        self._finished = False
        self.baseline_lines: list[tuple[str, bool]] = []  # (text, red)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Sheets of an earlier run would pass for this run's: start the folder afresh.
        folder = sheets_dir(self.state.options)
        if folder is not None and folder.is_dir():
            for old in folder.glob("*.png"):
                old.unlink(missing_ok=True)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for data in getattr(report, "phyjudge_checks", ()):
            self.checks.append(Check.from_dict(data))

    def _judge_identity(self) -> JudgeIdentity | None:
        found = identities(self.checks)
        if found:
            return found[0]
        return self.state.judge().identity if self.state.judge_loaded else None

    def _add_junit_properties(self) -> None:
        try:
            from _pytest.junitxml import xml_key
        except ImportError:  # pragma: no cover - pytest internals moved
            return
        xml = self.config.stash.get(xml_key, None)
        identity = self._judge_identity()
        if xml is None or identity is None:
            return
        xml.add_global_property("phyjudge_judge", identity.describe())
        for name, value in identity.to_dict().items():
            if value is not None:
                xml.add_global_property(f"phyjudge_judge_{name}", str(value))

    def write(self, exitstatus: int | None, session: pytest.Session | None = None) -> None:
        """Write the JSON report (atomically); a failure to write warns, never raises."""
        options = self.state.options
        if options.report is None:
            return
        stopped = bool(session is not None and (session.shouldfail or session.shouldstop))
        run = {
            "exitstatus": None if exitstatus is None else int(exitstatus),
            "interrupted": exitstatus == pytest.ExitCode.INTERRUPTED or exitstatus is None,
            "stopped_early": stopped,
            "complete": exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
            and not stopped,
            "args": list(self.config.invocation_params.args),
        }
        state_judge = self.state.judge().identity if self.state.judge_loaded else None
        document = build_report(self.checks, options=options, state_judge=state_judge, run=run)
        try:
            self.written = write_json_atomic(options.report, document)
            self.videos = document["num_videos"]
        except OSError as exc:
            self.write_error = f"cannot write {options.report}: {describe_error(exc)}"
            warnings.warn(f"pytest-phyjudge: {self.write_error}", pytest.PytestWarning, 1)

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.checks += self.state.pop_all_checks()
        self._add_junit_properties()
        self.write(exitstatus, session)
        if self.state.baseline is not None:
            complete = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not (
                session.shouldfail or session.shouldstop
            )
            self.baseline_lines = baseline_summary(self.state, self.checks, complete=complete)
        self._finished = True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tr = terminalreporter
        if (
            not self.checks
            and not self.baseline_lines
            and self.written is None
            and self.write_error is None
            and self.state.cache_stats is None
        ):
            return
        tr.section("phyjudge")
        found = identities(self.checks)
        for identity in found:
            note = f"  ({TINY_WARNING})" if identity.kind == "tiny" else ""
            tr.write_line(f"judge: {identity.describe()}{note}", red=bool(note), bold=bool(note))
        if self.checks:
            for line in table_lines(axis_rows(self.checks)):
                tr.write_line(line)
            tr.write_line("")
            tr.write_line("worst items:")
            for line in worst_lines(self.checks):
                tr.write_line(f"  {line}")
        if self.state.cache_stats is not None:
            stats, mode, path = self.state.cache_stats
            tr.write_line(
                f"judgment cache ({mode}, {path}): {stats.hits} hits, {stats.misses} misses, "
                f"{stats.seconds_saved:.1f} judge-seconds saved"
            )
        if self.state.judge_summary:
            tr.write_line(self.state.judge_summary)
        if self.written is not None:
            tr.write_line(f"phyjudge report: {self.written} ({self.videos} videos)")
            sheets = [c.sheet for c in self.checks if c.sheet]
            if sheets:
                tr.write_line(f"contact sheets: {Path(sheets[0]).parent} ({len(sheets)})")
        if self.write_error is not None:
            tr.write_line(f"phyjudge report NOT written: {self.write_error}", red=True)
        for text, red in self.baseline_lines:
            tr.write_line(text, red=red)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # A session that died before pytest_sessionfinish still leaves what it judged.
        if not self._finished:
            self.checks += self.state.pop_all_checks()
            self.write(None)


# --------------------------------------------------------------------------- the baseline


def _run_entries(checks: Sequence[Check]) -> dict[tuple[str, str, str], Any]:
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


def _named(keys: Iterable[tuple[str, str, str]], limit: int = WORST_SHOWN) -> str:
    names = [f"{suite}::{case}::{axis}" for suite, case, axis in keys]
    return ", ".join(names[:limit]) + (
        f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    )


def baseline_summary(
    state: PhyJudgeState, checks: Sequence[Check], *, complete: bool
) -> list[tuple[str, bool]]:
    """Compare the run with its baseline, update it when asked, draw the comparison chart;
    the terminal lines that say what happened (text, red)."""
    from pytest_phyjudge.regression import baseline as bl

    options = state.options
    base = state.baseline
    assert base is not None
    lines: list[tuple[str, bool]] = []
    verdicts = {
        (c.suite, c.case, c.axis): c.baseline
        for c in checks
        if c.baseline is not None and c.suite is not None and c.case is not None
    }
    by_status: dict[str, list[Any]] = {}
    for key, verdict in verdicts.items():
        by_status.setdefault(verdict["status"], []).append(key)
    run = _run_entries(checks)
    removed = sorted(set(base.entries) - set(run))
    lines.append(
        (
            f"phyjudge baseline {base.path}: {len(by_status.get('drop', []))} drops, "
            f"{len(by_status.get('improved', []))} improvements, {len(by_status.get('new', []))} "
            f"new, {len(removed)} not judged in this run",
            bool(by_status.get("drop")) and not options.update_baseline,
        )
    )
    for status, label in (("drop", "dropped"), ("improved", "improved (raise the baseline)")):
        if by_status.get(status):
            lines.append((f"  {label}: {_named(sorted(by_status[status]))}", status == "drop"))
    if options.compare_plot is not None:
        lines += _compare_plot(state, base, run)
    if not options.update_baseline:
        if by_status.get("new") or removed:
            lines.append(("  update it with --phyjudge-update-baseline", False))
        return lines

    judge = next((c.judge.to_dict() for c in checks if c.judge is not None), None)
    if not complete:
        lines.append(("baseline NOT updated: the run did not complete", True))
        return lines
    if not run:
        lines.append(("baseline NOT updated: this run scored nothing", True))
        return lines
    kept = dict(base.entries)
    other_judge = base.exists and judge is not None and not bl.same_judge(base.judge, judge)
    if other_judge:
        if not options.baseline_any_judge:
            lines.append((f"baseline NOT updated: {bl.judge_mismatch_message(base, judge)}", True))
            return lines
        kept = {}  # another judge's scores cannot stand beside this judge's
    if options.prune_baseline:
        kept = {key: entry for key, entry in kept.items() if key in run}
    entries = {**kept, **run}
    try:
        backup = bl.write_baseline(base.path, judge or base.judge, entries)
    except OSError as exc:
        lines.append((f"baseline NOT updated: cannot write {base.path} ({exc})", True))
        return lines
    added = [key for key in run if key not in base.entries]
    text = f"baseline updated: {base.path} ({len(entries)} entries, {len(added)} new"
    if removed:
        pruned = options.prune_baseline or other_judge
        text += f", {len(removed)} not judged in this run {'removed' if pruned else 'kept'}"
    text += ")" + (f"; previous version kept as {backup}" if backup else "")
    lines.append((text, False))
    if removed and not options.prune_baseline and not other_judge:
        lines.append((f"  kept: {_named(removed)} (remove with --phyjudge-prune-baseline)", False))
    return lines


def _compare_plot(
    state: PhyJudgeState, base: Any, run: dict[tuple[str, str, str], Any]
) -> list[tuple[str, bool]]:
    from pytest_phyjudge._exceptions import InputError
    from pytest_phyjudge.regression.compare import (
        compare,
        scores_from_entries,
        table_lines,
        write_chart,
    )

    path = state.options.compare_plot
    stored = scores_from_entries(
        ((key, e.score) for key, e in base.entries.items()), f"baseline {base.path.name}"
    )
    obtained = scores_from_entries(((key, e.score) for key, e in run.items()), "this run")
    try:
        comparison = compare(stored, obtained)
        write_chart(comparison, path)
    except (InputError, OSError) as exc:
        return [(f"comparison chart NOT written: {exc}", True)]
    return [(line, False) for line in table_lines(comparison)] + [
        (f"comparison chart: {path}", False)
    ]
