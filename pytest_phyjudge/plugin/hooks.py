"""pytest-phyjudge's pytest entry point: options, the ``phyjudge`` fixture and the hooks.

Thin on purpose: the run's state lives in ``_session``, YAML suites in ``collect``, reports
in ``report``. Nothing heavy is imported here, so ``pytest --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_phyjudge._exceptions import JudgeLoadError
from pytest_phyjudge.engine.adapter import DEFAULT_ADAPTER
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.judges.remote import (
    DEFAULT_CONCURRENCY,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RETRIES,
)
from pytest_phyjudge.plugin import hookspecs
from pytest_phyjudge.plugin import state as _session
from pytest_phyjudge.plugin.state import (
    DEFAULT_MIN_SCORE,
    DEFAULT_SUITE_GLOBS,
    DEVICES_HELP,
    DTYPES,
    TINY,
    Options,
    PhyJudgeState,
    parse_cache_mode,
    parse_count,
    parse_device,
    parse_dtype,
    parse_judge_spec,
    parse_min_score,
    parse_positive_float,
    parse_positive_int,
    parse_scoring,
    parse_url_list,
    state_of,
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("phyjudge", "physics assertions judged by PhyJudge (pytest-phyjudge)")

    def option(name: str, help: str, ini_help: str | None = None, **kwargs: Any) -> None:
        dest = "phyjudge_" + name.replace("-", "_")
        group.addoption(f"--phyjudge-{name}", dest=dest, default=None, help=help, **kwargs)
        if ini_help is not None:
            parser.addini(dest, ini_help, type="string", default="")

    option(
        "adapter",
        f"PhyJudge adapter: a hub id or a local folder (default {DEFAULT_ADAPTER}).",
        "default for --phyjudge-adapter",
        metavar="ID_OR_DIR",
    )
    option(
        "revision", "hub revision of the adapter.", "default for --phyjudge-revision", metavar="REV"
    )
    option(
        "device",
        f"device for the judge: {DEVICES_HELP} (default: cuda when available).",
        "default for --phyjudge-device",
        type=parse_device,
        metavar="DEVICE",
    )
    option(
        "dtype",
        f"weights dtype: {', '.join(DTYPES)} (default: bfloat16 on cuda, else float32).",
        "default for --phyjudge-dtype",
        type=parse_dtype,
        metavar="DTYPE",
    )
    option(
        "min-score",
        f"default minimum score 1-5 of every judged axis (default {DEFAULT_MIN_SCORE}).",
        "default for --phyjudge-min-score",
        type=parse_min_score,
        metavar="N",
    )
    option(
        "report",
        "write a PhyGround-style scores.json here (and contact sheets of failed items beside "
        "it), also when the run fails or is interrupted.",
        "default for --phyjudge-report",
        metavar="PATH",
    )
    option(
        "judge",
        f"judge to use instead of PhyJudge-9B: 'package.module:factory', or '{TINY}' for a "
        "tiny random judge on the CPU (a dry run: its scores are meaningless).",
        "default for --phyjudge-judge",
        type=parse_judge_spec,
        metavar="SPEC",
    )
    option(
        "cache",
        "folder of the persistent judgment cache (default: the pytest cache dir).",
        "default for --phyjudge-cache",
        metavar="DIR",
    )
    option(
        "cache-mode",
        "use (read and record, the default), refresh (judge again and overwrite), off, or "
        "only (replay recorded judgments, never load a model; a miss fails the item).",
        "default for --phyjudge-cache-mode",
        type=parse_cache_mode,
        metavar="MODE",
    )
    option(
        "scoring",
        "greedy (the reference: parse the generated reply, the default) or distribution "
        "(probabilities of the digits 1-5 after the answer prefix; gives Judgment.probs).",
        "default for --phyjudge-scoring",
        type=parse_scoring,
        metavar="MODE",
    )
    option(
        "url",
        "judge on OpenAI-compatible servers instead of in this process: vLLM serving the "
        "merged checkpoint, or 'phyjudge serve' (several replicas: URL,URL,...).",
        "default for --phyjudge-url",
        type=parse_url_list,
        metavar="URL[,URL...]",
    )
    option(
        "remote-identity",
        "the merged checkpoint (or its phyjudge_provenance.json) the servers run; default: "
        "asked from the servers' /v1/models.",
        "default for --phyjudge-remote-identity",
        metavar="PATH",
    )
    option(
        "media-root",
        "videos under DIR are sent as file:// URLs (the servers share the filesystem) "
        "instead of as data; DIR=SERVED_DIR when the servers see it elsewhere.",
        "default for --phyjudge-media-root",
        metavar="DIR",
    )
    option(
        "concurrency",
        f"requests in flight to the judge servers (default {DEFAULT_CONCURRENCY}).",
        "default for --phyjudge-concurrency",
        type=parse_positive_int,
        metavar="N",
    )
    option(
        "timeout",
        f"seconds to wait for a judge server's reply (default {DEFAULT_READ_TIMEOUT:.0f}).",
        "default for --phyjudge-timeout",
        type=parse_positive_float,
        metavar="SECONDS",
    )
    option(
        "retries",
        f"retries of a failed request to the judge servers (default {DEFAULT_RETRIES}).",
        "default for --phyjudge-retries",
        type=parse_count,
        metavar="N",
    )
    option(
        "baseline",
        "regression baseline (a JSON file to commit): an item fails when its score drops "
        "below its entry by more than the case's tolerance.",
        "default for --phyjudge-baseline",
        metavar="PATH",
    )
    option(
        "compare-plot",
        "write a PNG chart of this run's per-axis means against the baseline's.",
        "default for --phyjudge-compare-plot",
        metavar="PATH",
    )
    for name, text in (
        (
            "update-baseline",
            "write this run's scores into the baseline (new cases added, the old file kept as "
            ".bak); drops do not fail items.",
        ),
        (
            "prune-baseline",
            "with --phyjudge-update-baseline: drop entries this run did not judge.",
        ),
        ("baseline-any-judge", "compare with (or update) a baseline made by another judge."),
    ):
        group.addoption(
            f"--phyjudge-{name}",
            dest="phyjudge_" + name.replace("-", "_"),
            action="store_true",
            default=False,
            help=text,
        )
    group.addoption(
        "--phyjudge-per-worker-model",
        dest="phyjudge_per_worker_model",
        action="store_true",
        default=False,
        help="let every pytest-xdist worker load its own judge model (refused by default).",
    )
    group.addoption(
        "--phyjudge-regenerate",
        dest="phyjudge_regenerate",
        action="store_true",
        default=False,
        help="make every generated clip again instead of reusing the cached one.",
    )
    parser.addini(
        "phyjudge_suite_glob",
        "file name patterns of YAML suites to collect",
        type="args",
        default=list(DEFAULT_SUITE_GLOBS),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "phyjudge(axis, domain, case): an item judged by pytest-phyjudge."
    )
    state = PhyJudgeState(config, Options.from_config(config))
    _session.activate(state)
    if not hasattr(config, "workerinput"):
        from pytest_phyjudge.plugin.reporter import PhyJudgeReporter

        config.pluginmanager.register(PhyJudgeReporter(state), "phyjudge-reporter")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = _session.deactivate(config)
    if state is not None:
        state.close()
    reporter = config.pluginmanager.get_plugin("phyjudge-reporter")
    if reporter is not None:
        config.pluginmanager.unregister(reporter)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = state_of(config)
    options = state.options
    if options.judge == TINY:
        lines = [
            "phyjudge: !!! --phyjudge-judge tiny: a TINY RANDOM judge, SCORES ARE MEANINGLESS; "
            "this run only checks the plumbing !!!"
        ]
    else:
        if options.url:
            source = f"served at {', '.join(options.url)}"
        elif options.judge:
            source = f"{options.judge} (--phyjudge-judge)"
        else:
            source = f"{options.adapter}" + (f"@{options.revision}" if options.revision else "")
        lines = [f"phyjudge: judge {source}, loaded on first use; min score {options.min_score}"]
    if state.baseline is not None:
        what = "updated by this run" if options.update_baseline else "compared"
        entries = len(state.baseline.entries)
        lines.append(f"phyjudge: baseline {state.baseline.path} ({entries} entries, {what})")
    return lines


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    from pytest_phyjudge.plugin.items import SuiteFile, is_suite_file

    if is_suite_file(file_path, state_of(parent.config).options.suite_globs):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(trylast=True)
def pytest_phyjudge_make_judge(config: pytest.Config) -> Judge:
    """The default judge: PhyJudge-9B (or --phyjudge-adapter) loaded in this process."""
    return _session.load_default_judge(config, state_of(config).options)


@pytest.hookimpl(trylast=True)
def pytest_phyjudge_generate(case: Any, out_path: Path) -> Path | None:
    """The default generator call: import the case's ``generator:`` and run it."""
    from pytest_phyjudge.plugin.generate import call_generator

    return call_generator(case, out_path)


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
