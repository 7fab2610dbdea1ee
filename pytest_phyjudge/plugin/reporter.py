"""pytest's side of the reports: checks onto test reports, files at the end, the summary."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_phyjudge._escape import terminal_text
from pytest_phyjudge._exceptions import describe_error
from pytest_phyjudge._words import counted
from pytest_phyjudge.canary.session import CanaryResult
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.judges.cache.judge import CacheStats
from pytest_phyjudge.judges.settings import hide_credentials
from pytest_phyjudge.plugin.pipelines import generation_stats, summary_line
from pytest_phyjudge.plugin.sheet_files import (
    html_extra,
    make_sheet,
    open_outputs,
    own_outputs,
    prune_sheets,
    sheets_folder,
    sheets_place,
    warn_missed_sheets,
)
from pytest_phyjudge.plugin.state import PhyJudgeState
from pytest_phyjudge.reporting.baseline_run import BaselineRequest, settle_baseline
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.reporting.health import (
    canary_line,
    judge_check_lines,
    judge_health,
    replies_of_checks,
)
from pytest_phyjudge.reporting.html import write_html_report
from pytest_phyjudge.reporting.run_report import build_report, identities
from pytest_phyjudge.reporting.sheets import case_key
from pytest_phyjudge.reporting.step_summary import write_step_summary
from pytest_phyjudge.reporting.tables import (
    TINY_WARNING,
    Line,
    axis_rows,
    baseline_lines,
    table_lines,
    tiny_run_line,
    worst_lines,
)
from pytest_phyjudge.scores import as_read, write_scores

#: ``config.workeroutput`` keys: what an xdist worker tells the controller at its end.
WORKER_CACHE = "phyjudge_cache"
WORKER_JUDGE_SUMMARY = "phyjudge_judge_summary"
WORKER_JUDGE_SERVER = "phyjudge_judge_server"


def outcome_of(report: pytest.TestReport) -> str:
    """passed / failed / skipped, with xfail turned into xfailed / xpassed."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


class EscapedLines:
    """The terminal reporter as the summary uses it: every line it writes has its control
    characters shown escaped (names from suites, reports and judge servers never act on the
    terminal: no ESC sequence recolours or hides a line, no ``\\r`` overwrites one)."""

    def __init__(self, tr: Any) -> None:
        self._tr = tr

    def section(self, title: str, **markup: bool) -> None:
        self._tr.section(terminal_text(title), **markup)

    def write_line(self, line: str, **markup: bool) -> None:
        self._tr.write_line(terminal_text(line), **markup)


# --------------------------------------------------------------------------- per test report


def attach_checks(state: PhyJudgeState, item: pytest.Item, report: pytest.TestReport) -> None:
    """Move the checks made during this phase of ``item`` onto its report, with the contact
    sheet of each case (made by its first item, shared by the rest; pytest-html extras on
    the failed ones)."""
    checks = state.pop_checks(item.nodeid)
    if not checks:
        return
    place = sheets_place(state)
    folder = None if place is None else sheets_folder(state)
    for check in checks:
        check.outcome = outcome_of(report)
        if folder is None or place is None:
            continue
        key = case_key(check)
        if key not in state.sheets:
            # Named by the whole case key: one test checking several clips gets one each.
            made = make_sheet(check, folder, place.prefix, state.sheets_missed)
            state.sheets[key] = None if made is None else str(place.root / made)
        check.sheet = state.sheets[key]
        if check.sheet and not check.passed and item.config.pluginmanager.hasplugin("html"):
            html_extra(report, Path(check.sheet))
    report.phyjudge_checks = [c.to_dict() for c in checks]  # type: ignore[attr-defined]


def share_judging_time(state: PhyJudgeState, item: pytest.Item, report: pytest.TestReport) -> None:
    """Give each axis item its share of its case's judging time: the item that happened to
    judge the whole case would otherwise carry all of it (in JUnit and ``--durations``)."""
    if report.when != "call":
        return
    charged, share = state.pop_judging_time(item)
    if charged or share:
        report.duration = max(0.0, report.duration - charged + share)


def send_to_controller(state: PhyJudgeState, config: pytest.Config) -> None:
    """On an xdist worker, after the judge is closed: hand the controller what its terminal
    summary shows and the reports do not carry (the cache counts, the judge's summary)."""
    output = getattr(config, "workeroutput", None)
    if output is None:
        return
    if state.cache_stats is not None:
        stats, mode, path = state.cache_stats
        output[WORKER_CACHE] = {**dataclasses.asdict(stats), "mode": mode, "path": str(path)}
    if state.judge_summary:
        output[WORKER_JUDGE_SUMMARY] = state.judge_summary
    if state.judge_server:
        output[WORKER_JUDGE_SERVER] = state.judge_server


# --------------------------------------------------------------------------- exit status

#: The exit status of a run whose items passed but whose report or baseline could not be
#: written. pytest's ``USAGE_ERROR`` (4), not ``INTERNAL_ERROR`` (3): pytest keeps 3 for its
#: own crashes (with a traceback), while an unwritable file is the user's to fix, like any
#: other bad option value (``--phyjudge-report``, ``--phyjudge-baseline``). A run whose items
#: failed keeps ``TESTS_FAILED`` (1), already non-zero; the red "NOT written" line says more.
EXIT_NOT_WRITTEN = pytest.ExitCode.USAGE_ERROR


def _fail_exit(session: pytest.Session) -> None:
    """A run whose files were not written, or whose baseline was missing, must not exit 0:
    CI would keep nothing, or gate on nothing, and say ok."""
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = EXIT_NOT_WRITTEN


# --------------------------------------------------------------------------- the reporter


class PhyJudgeReporter:
    """Registered as a plugin on the controller (never on an xdist worker).

    Checks reach it on the test reports (``report.phyjudge_checks``), so under pytest-xdist
    the controller reports what every worker judged; workers write nothing and send their
    cache counts and judge summary through ``workeroutput`` (see ``send_to_controller``).
    """

    def __init__(self, state: PhyJudgeState) -> None:
        self.state = state
        self.config = state.config
        self.checks: list[Check] = []
        self.written: Path | None = None
        self.html_written: Path | None = None
        self.videos = 0
        self.write_error: str | None = None
        self._finished = False
        self.baseline_lines: list[Line] = []
        self.baseline_write_failed = False
        #: The baseline was judged by another judge server (fingerprint) than this run.
        self.baseline_note: str | None = None
        #: A baseline that does not exist, not created by this run, which judged items to
        #: compare with it: the run must not pass as if its gate had run.
        self.baseline_missing = False
        #: Why the CI job summary could not be appended (it never fails the run).
        self.summary_error: str | None = None
        #: What the xdist workers sent: their cache counts and judge summaries.
        self.worker_cache: list[dict[str, Any]] = []
        self.worker_summaries: list[tuple[str, str]] = []
        #: What the judge server said of itself (this process's judge, or a worker's).
        self.worker_server: dict[str, Any] | None = None
        #: The run's canary check, read when the session finishes (None: none asked).
        self.canary: CanaryResult | None = None

    @property
    def collect_only(self) -> bool:
        """``--collect-only`` judges nothing, so it must not replace a report or sheets."""
        return bool(self.config.getoption("collectonly", False))

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Sheets of an earlier run are pruned at the end (``prune_sheets``), when this
        # run's are known; only the files the folders' manifests list are ever removed.
        if not self.collect_only:
            try:
                open_outputs(self.state)
            except pytest.UsageError:
                self._finished = True  # nothing is written at unconfigure either
                raise

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for data in getattr(report, "phyjudge_checks", ()):
            self.checks.append(Check.from_dict(data))

    @pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: absent without xdist
    def pytest_configure_node(self, node: Any) -> None:
        # The canary check runs once, on the first worker that needs a judge (see
        # plugin.canaries): each worker learns where the result is shared.
        if self.state.canary is not None:
            self.state.canary.share(node.workerinput)

    @pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: absent without xdist
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        if output.get(WORKER_JUDGE_SERVER) and self.worker_server is None:
            self.worker_server = output[WORKER_JUDGE_SERVER]
        if WORKER_CACHE in output:
            self.worker_cache.append(output[WORKER_CACHE])
        if output.get(WORKER_JUDGE_SUMMARY):
            name = getattr(getattr(node, "gateway", None), "id", "worker")
            self.worker_summaries.append((str(name), output[WORKER_JUDGE_SUMMARY]))

    def _canary_dict(self) -> dict[str, Any] | None:
        return None if self.canary is None else self.canary.to_dict()

    def judge_server(self) -> dict[str, Any] | None:
        """What the judge server said of itself: this process's judge's, or a worker's."""
        return self.state.server() or self.worker_server

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
        if (options.report is None and options.html is None) or self.collect_only:
            return
        stopped = bool(session is not None and (session.shouldfail or session.shouldstop))
        run = {
            "exitstatus": None if exitstatus is None else int(exitstatus),
            "interrupted": exitstatus == pytest.ExitCode.INTERRUPTED or exitstatus is None,
            "stopped_early": stopped,
            "complete": exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
            and not stopped,
            "args": [hide_credentials(arg) for arg in self.config.invocation_params.args],
        }
        state_judge = self.state.judge().identity if self.state.judge_loaded else None
        document = build_report(
            self.checks,
            report_path=options.report,
            plugin_settings=options.to_dict(),
            state_judge=state_judge,
            run=run,
            canary=self._canary_dict(),
            judge_server=self.judge_server(),
        )
        self.videos = document["num_videos"]
        prune_sheets(self.state, self.checks)
        if options.report is not None:
            try:
                self.written = write_scores(options.report, document)
            except OSError as exc:
                self._not_written(options.report, exc)
        if options.html is not None:
            base = options.report.parent if options.report is not None else Path.cwd()
            name = str(options.report) if options.report is not None else "the run's report"
            try:
                # The page is made from the document as `phyjudge report` would read it.
                self.html_written = write_html_report(
                    as_read(document, name), options.html, base=base, leave=own_outputs(self.state)
                )
            except Exception as exc:  # a broken page must not lose the run: say so, exit non-0
                self._not_written(options.html, exc)

    def _not_written(self, path: Path, exc: Exception) -> None:
        self.write_error = f"cannot write {path}: {describe_error(exc)}"
        warnings.warn(f"pytest-phyjudge: {self.write_error}", pytest.PytestWarning, 1)

    def _settle_baseline(self, session: pytest.Session, exitstatus: int) -> None:
        options, base = self.state.options, self.state.baseline
        if base is None or self.collect_only:
            return
        complete = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not (
            session.shouldfail or session.shouldstop
        )
        request = BaselineRequest(
            update=options.update_baseline,
            prune=options.prune_baseline,
            any_judge=options.baseline_any_judge,
            compare_plot=options.compare_plot,
        )
        settled = settle_baseline(
            base, self.checks, request, complete=complete, server=self.judge_server()
        )
        self.baseline_write_failed = settled.update is not None and settled.update.write_failed
        self.baseline_missing = settled.missing
        self.baseline_lines = baseline_lines(settled)
        self.baseline_note = settled.judge_note

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.state.canary is not None:
            self.canary = self.state.canary.outcome()
        self.checks += self.state.pop_all_checks()
        warn_missed_sheets(self.state)
        self._add_junit_properties()
        self.write(exitstatus, session)
        self._settle_baseline(session, exitstatus)
        if self.write_error is not None or self.baseline_write_failed or self.baseline_missing:
            _fail_exit(session)
        self._append_step_summary()
        self._finished = True

    def _append_step_summary(self) -> None:
        """On CI (``GITHUB_STEP_SUMMARY`` set): the run as Markdown in the job's summary,
        after the report is written; a failure only warns."""
        if self.checks and not self.collect_only:
            self.summary_error = write_step_summary(
                self.checks,
                self.written,
                self.html_written,
                judge_lines=judge_check_lines(self._canary_dict(), self.judge_server()),
                baseline_note=self.baseline_note,
            )

    # -- the terminal summary: one method per part, as pytest's own summaries

    def _cache(self) -> tuple[CacheStats, str, str] | None:
        """The run's cache counts: this process's, or the sum of the xdist workers'."""
        if self.state.cache_stats is not None:
            stats, mode, path = self.state.cache_stats
            return stats, mode, str(path)
        if not self.worker_cache:
            return None
        total = CacheStats()
        for sent in self.worker_cache:
            for field in dataclasses.fields(CacheStats):
                setattr(total, field.name, getattr(total, field.name) + sent[field.name])
        return total, self.worker_cache[0]["mode"], self.worker_cache[0]["path"]

    def _problems(self) -> list[Line]:
        """The lines that report something wrong: shown even with -q."""
        lines = [(text, True) for text, red in self.baseline_lines if red]
        if self.canary is not None and self.canary.failed:
            lines.insert(0, (canary_line(self.canary.to_dict()), True))
        if self.write_error is not None:
            lines.insert(0, (f"phyjudge report NOT written: {self.write_error}", True))
        if self.summary_error is not None:
            lines.append((f"CI job summary NOT written: {self.summary_error}", True))
        return lines

    def _has_summary(self, quiet: bool) -> bool:
        if quiet:
            return bool(self.checks or self._problems())
        return bool(
            self.checks
            or self.baseline_lines
            or self.written is not None
            or self.html_written is not None
            or self.write_error is not None
            or self._cache() is not None
            or self.canary is not None
            or generation_stats(self.config) is not None
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tr = EscapedLines(terminalreporter)
        quiet = self.config.get_verbosity() < 0
        if not self._has_summary(quiet):
            return
        tr.section("phyjudge")
        self.summary_judges(tr)
        self.summary_health(tr)
        self.summary_canary(tr, quiet)
        self.summary_axes(tr)
        if quiet:  # -q: the axis table only, as pytest's own summaries shrink; problems show
            for text, red in self._problems():
                tr.write_line(text, red=red)
        else:
            self.summary_worst(tr)
            self.summary_cache(tr)
            self.summary_generation(tr)
            self.summary_judge_servers(tr)
            self.summary_files(tr)
            self.summary_baseline(tr)
        self.summary_tiny(tr)

    def summary_tiny(self, tr: Any) -> None:
        """Last, even with -q: on the tiny judge, what its verdicts mean and what next."""
        line = tiny_run_line(self.checks, enforced=self.state.options.enforced)
        if line is not None:
            tr.write_line(line, bold=True)

    def summary_judges(self, tr: Any) -> None:
        """Who judged; a tiny judge's warning shows even with -q, its scores mean nothing."""
        quiet = self.config.get_verbosity() < 0
        for identity in identities(self.checks):
            tiny = identity.kind == "tiny"
            if quiet and not tiny:
                continue
            note = f"  ({TINY_WARNING})" if tiny else ""
            tr.write_line(f"judge: {identity.describe(portable=True)}{note}", red=tiny, bold=tiny)

    def summary_health(self, tr: Any) -> None:
        """An axis on which the judge looks degenerate (``reporting.health``): shown even
        with -q, as a question (the verdicts stand; a warning never fails the run)."""
        for warning in judge_health(replies_of_checks(self.checks)):
            tr.write_line(f"judge warning: {warning.message}", yellow=True, bold=True)

    def summary_canary(self, tr: Any, quiet: bool) -> None:
        """The canary check (its verdict and cost, or why nothing was checked) and what the
        judge server said of itself; with -q only a failed check (among the problems)."""
        if quiet:
            return
        for text, problem in judge_check_lines(self._canary_dict(), self.judge_server()):
            tr.write_line(text, red=problem, bold=problem)

    def summary_axes(self, tr: Any) -> None:
        if self.checks:
            for line in table_lines(axis_rows(self.checks)):
                tr.write_line(line)

    def summary_worst(self, tr: Any) -> None:
        if self.checks:
            tr.write_line("")
            tr.write_line("worst items:")
            for line in worst_lines(self.checks):
                tr.write_line(f"  {line}")

    def summary_cache(self, tr: Any) -> None:
        cache = self._cache()
        if cache is not None:
            stats, mode, path = cache
            tr.write_line(
                f"judgment cache ({mode}, {path}): {counted(stats.hits, 'hit')}, "
                f"{counted(stats.misses, 'miss')}, "
                f"{stats.seconds_saved:.1f} judge-seconds saved"
            )
        elif self.checks and self.state.options.judge.cache_dir is None:
            # Without the cacheprovider there is no default folder (options._default_cache_dir).
            judge = self.state.options.judge
            if judge.cache_mode == "off":
                return
            flag = judge.flag("cache", "DIR")
            tr.write_line(
                "judgment cache: off (-p no:cacheprovider): this run's judgments are not kept; "
                f"{flag} keeps them"
            )

    def summary_generation(self, tr: Any) -> None:
        """Clips the run's diffusers pipelines made and reused, and the time it took."""
        stats = generation_stats(self.config)
        if stats is not None:
            tr.write_line(summary_line(stats))

    def summary_judge_servers(self, tr: Any) -> None:
        """The judge's own summary line (the judge servers' request counts)."""
        if self.state.judge_summary:
            tr.write_line(self.state.judge_summary)
        for worker, summary in self.worker_summaries:
            tr.write_line(f"[{worker}] {summary}")

    def summary_files(self, tr: Any) -> None:
        if self.written is not None:
            tr.write_line(f"phyjudge report: {self.written} ({counted(self.videos, 'video')})")
        if self.html_written is not None:
            tr.write_line(
                f"phyjudge HTML report: {self.html_written} ({counted(self.videos, 'case')})"
            )
        sheets = sorted({c.sheet for c in self.checks if c.sheet})
        if sheets and (self.written or self.html_written):
            tr.write_line(f"contact sheets: {Path(sheets[0]).parent} ({len(sheets)})")
        if self.write_error is not None:
            tr.write_line(f"phyjudge report NOT written: {self.write_error}", red=True)

    def summary_baseline(self, tr: Any) -> None:
        for text, red in self.baseline_lines:
            tr.write_line(text, red=red)
        if self.summary_error is not None:
            tr.write_line(f"CI job summary NOT written: {self.summary_error}", red=True)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # A session that died before pytest_sessionfinish still leaves what it judged.
        if not self._finished:
            self.checks += self.state.pop_all_checks()
            self.write(None)
