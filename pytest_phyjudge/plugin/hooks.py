"""pytest-phyjudge's pytest entry point: the hooks and the ``phyjudge`` fixture.

Thin on purpose: options live in ``options``, the run's state in ``state``, the judging of
suite cases in ``scheduler``, YAML suites in ``items``, reports in ``reporter``, and the judge
comes from ``judges.factory``. Nothing heavy is imported here, so ``pytest --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_phyjudge._exceptions import JudgeLoadError
from pytest_phyjudge._words import counted
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.plugin import hookspecs
from pytest_phyjudge.plugin import state as _state
from pytest_phyjudge.plugin.options import Options, add_options
from pytest_phyjudge.plugin.pipelines import generate_first
from pytest_phyjudge.plugin.pipelines import release as release_pipelines
from pytest_phyjudge.plugin.signals import catch_sigterm, release_sigterm
from pytest_phyjudge.plugin.state import PhyJudgeState, state_of
from pytest_phyjudge.plugin.suite_names import note_uncollected, summary_hints
from pytest_phyjudge.regression.baseline import UPDATE_FLAG


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "phyjudge(axis, domain, case): an item judged by pytest-phyjudge."
    )
    state = PhyJudgeState(config, Options.from_config(config))
    _state.activate(state)
    if not hasattr(config, "workerinput"):
        from pytest_phyjudge.plugin.reporter import PhyJudgeReporter

        config.pluginmanager.register(PhyJudgeReporter(state), "phyjudge-reporter")
        catch_sigterm(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    release_sigterm(config)
    state = _state.deactivate(config)
    if state is not None:
        state.close()
    reporter = config.pluginmanager.get_plugin("phyjudge-reporter")
    if reporter is not None:
        config.pluginmanager.unregister(reporter)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = state_of(config)
    options = state.options
    lines = [f"phyjudge: {_judge_words(config, options)}; min score {options.min_score}"]
    base = state.baseline
    if base is not None and not base.exists:
        what = (
            "created by this run"
            if options.update_baseline
            else f"nothing to compare with: create it with {UPDATE_FLAG}"
        )
        lines.append(f"phyjudge: baseline {base.path} (does not exist yet; {what})")
    elif base is not None:
        what = "updated by this run" if options.update_baseline else "compared"
        lines.append(
            f"phyjudge: baseline {base.path} ({counted(len(base.entries), 'entry')}, {what})"
        )
    return lines


def _judge_words(config: pytest.Config, options: Options) -> str:
    """The judge this run will use, as the header can know it before any is made: a
    ``pytest_phyjudge_make_judge`` hook's judge is made (and named, in the summary) only on
    first use, so the header says where it comes from and never names the default instead."""
    judge = options.judge
    if judge.is_tiny:
        return (
            "!!! --phyjudge-judge tiny: a TINY TEST judge, SCORES ARE MEANINGLESS; "
            "this run only checks the plumbing !!!"
        )
    if judge.cache_mode == "only" and not judge.url:
        default = (
            f"replaying judgments recorded in {judge.cache_dir} (cache mode only): no model "
            "is loaded"
        )
    else:
        default = f"judge {judge.describe_source()}, loaded on first use"
    # The factory only asks the hook when neither --phyjudge-judge nor servers name a judge.
    hooks = [] if judge.factory or judge.url else _make_judge_hooks(config)
    if not hooks:
        return default
    return (
        f"judge from the pytest_phyjudge_make_judge hook in {', '.join(hooks)}, made on "
        f"first use and named in the summary (if the hook returns None: {default})"
    )


def _make_judge_hooks(config: pytest.Config) -> list[str]:
    """Where the ``pytest_phyjudge_make_judge`` hooks known so far live (conftest paths
    relative to the rootdir)."""
    found = []
    for impl in config.pluginmanager.hook.pytest_phyjudge_make_judge.get_hookimpls():
        where = Path(impl.plugin_name)
        if where.is_absolute() and where.is_relative_to(config.rootpath):
            where = where.relative_to(config.rootpath)
        found.append(str(where))
    return found


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    from pytest_phyjudge.plugin.items import SuiteFile, is_suite_file

    globs = state_of(parent.config).options.suite_globs
    if is_suite_file(file_path, globs):
        return SuiteFile.from_parent(parent, path=file_path)
    note_uncollected(parent.config, file_path, globs)
    return None


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        for line in summary_hints(config, state_of(config).options.suite_globs):
            terminalreporter.write_line(line, yellow=True, bold=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    # Generate, then judge: every selected case's pipeline clips are made (and the pipelines
    # released) before the first test runs, so before the judge loads.
    from pytest_phyjudge.plugin.items import AxisItem

    clips = {}
    for item in session.items:
        if isinstance(item, AxisItem) and item.case.pipeline is not None:
            clips.setdefault(item.work.key, item.work.clips)
    state = state_of(session.config)
    generate_first(session.config, state.options, [c for group in clips.values() for c in group])
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    state = state_of(item.config)
    state.current_item = item
    try:
        return (yield)
    finally:
        state.current_item = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    from pytest_phyjudge.plugin.reporter import attach_checks, share_judging_time

    state = state_of(item.config)
    attach_checks(state, item, report)
    share_judging_time(state, item, report)
    return report


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # The reporter (tryfirst) has written its report; now free the model.
    state = state_of(session.config)
    state.close()
    release_pipelines(session.config)  # an xdist worker's, kept for its next case
    if hasattr(session.config, "workerinput"):
        from pytest_phyjudge.plugin.reporter import send_to_controller

        send_to_controller(state, session.config)


@pytest.fixture(scope="session")
def phyjudge(pytestconfig: pytest.Config) -> Judge:
    """The session's judge, loaded on first use and closed at the end of the session."""
    try:
        return state_of(pytestconfig).judge()
    except JudgeLoadError as exc:
        pytest.fail(str(exc), pytrace=False)
