"""The state of one pytest run: its options, the lazily made judge, the checks, the baseline.

The judging of suite cases (each once, ahead, in batches, and the time each item is charged)
is the run's :class:`~pytest_phyjudge.plugin.scheduler.Scheduler`, which the state holds
once a suite item has run.

One :class:`PhyJudgeState` lives under :data:`STATE_KEY` in ``config.stash`` from
``pytest_configure`` to ``pytest_unconfigure``. The assertion helpers find it through
:func:`active` (a stack, so that pytester's in-process runs nest cleanly).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_phyjudge._exceptions import JudgeLoadError, PhyJudgeError
from pytest_phyjudge.canary.record import server_identity
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.judges.cache.judge import CachedJudge, CacheStats
from pytest_phyjudge.judges.factory import build_judge
from pytest_phyjudge.plugin import running
from pytest_phyjudge.plugin.canaries import CanaryGate
from pytest_phyjudge.plugin.options import Options
from pytest_phyjudge.reporting.checks import Check, rendered_prompt

if TYPE_CHECKING:
    from pytest_phyjudge.plugin.scheduler import Scheduler
    from pytest_phyjudge.regression.baseline import Baseline


def make_judge(config: pytest.Config, options: Options, canary: CanaryGate | None = None) -> Judge:
    """The run's judge, from the one judge factory: ``--phyjudge-judge``, else a
    ``pytest_phyjudge_make_judge`` hook of the user's, else PhyJudge-9B (or the adapter,
    servers or recorded judge the options name), behind the judgment cache; checked against
    the run's canaries when it is brought up."""
    worker = getattr(config, "workerinput", None)
    return build_judge(
        options.judge,
        hook=lambda: config.hook.pytest_phyjudge_make_judge(config=config),
        context=config,
        worker=None if worker is None else str(worker.get("workerid", "?")),
        guard=None if canary is None else canary.guard,
    )


# --------------------------------------------------------------------------- the baseline


def load_run_baseline(options: Options) -> Baseline | None:
    """The run's baseline, read once; bad flags or a bad file are a UsageError, a missing
    file an empty baseline (``exists`` False)."""
    needs = {
        "--phyjudge-update-baseline": options.update_baseline,
        "--phyjudge-prune-baseline": options.prune_baseline,
        "--phyjudge-baseline-any-judge": options.baseline_any_judge,
        "--phyjudge-compare-plot": options.compare_plot is not None,
    }
    if options.baseline is None:
        given = [flag for flag, on in needs.items() if on]
        if given:
            raise pytest.UsageError(
                f"{given[0]} works on a baseline; name it with --phyjudge-baseline PATH."
            )
        return None
    if options.prune_baseline and not options.update_baseline:
        raise pytest.UsageError(
            "--phyjudge-prune-baseline removes entries while updating the baseline; add "
            "--phyjudge-update-baseline."
        )
    from pytest_phyjudge.regression.baseline import load_baseline

    try:
        baseline = load_baseline(options.baseline)
    except PhyJudgeError as exc:
        raise pytest.UsageError(str(exc)) from None
    # A missing file is no usage error here: --collect-only, -k and the run that creates it
    # must work; a run that would compare against it says so at the end (the reporter).
    return baseline


# --------------------------------------------------------------------------- the state


class PhyJudgeState:
    """What one run shares: the judge (made on first use, closed at the end), the checks
    waiting for their test report, the baseline, the contact sheets made; the judging of
    suite cases is its :attr:`scheduler`'s."""

    def __init__(self, config: pytest.Config, options: Options) -> None:
        self.config = config
        self.options = options
        self._judge: Judge | None = None
        self._load_error: JudgeLoadError | None = None
        self._load_error_item: str | None = None
        self._checks: dict[str, list[Check]] = {}
        #: Each case's contact sheet (None: none could be made), made by its first item.
        self.sheets: dict[tuple[str | None, ...], str | None] = {}
        #: The cases no sheet could be made for, and why: said once at the end, with the count.
        self.sheets_missed: list[tuple[str, str]] = []
        self.current_item: pytest.Item | None = None
        self.judge_loads = 0
        self.cache_stats: tuple[CacheStats, str, Path] | None = None
        self.judge_summary: str | None = None
        #: What the judge server said of itself (``canary.record.server_identity``), kept
        #: when the judge is closed (an xdist worker sends it to the controller).
        self.judge_server: dict[str, Any] | None = None
        self.baseline: Baseline | None = load_run_baseline(options)
        #: The judge's canary check (``--phyjudge-canaries``): the file is read now.
        self.canary: CanaryGate | None = None
        if options.canaries is not None:
            self.canary = CanaryGate(config, options, self._current_nodeid)
        #: When and with what each suite case is judged (it asks this state for the judge):
        #: made by the first suite item to run, so a run without suites never loads it.
        self.scheduler: Scheduler | None = None

    # -- the judge

    def _current_nodeid(self) -> str | None:
        return None if self.current_item is None else self.current_item.nodeid

    @property
    def judge_loaded(self) -> bool:
        return self._judge is not None

    def judge(self) -> Judge:
        """The run's judge, made on first call; a failed load is not retried for every item."""
        if self._judge is not None:
            return self._judge
        if self._load_error is not None:
            raise self.load_error_again()
        self.judge_loads += 1
        try:
            self._judge = make_judge(self.config, self.options, self.canary)
        except JudgeLoadError as exc:
            self._load_error = exc
            self._load_error_item = None if self.current_item is None else self.current_item.nodeid
            raise
        return self._judge

    def load_error_again(self) -> JudgeLoadError:
        """The brief error of every item after the first that needed a judge that failed to
        load: the whole message is shown once, by that first item."""
        if self.canary is not None and self.canary.refusing:
            return self.canary.again()
        where = self._load_error_item or "the first item that asked for it"
        return JudgeLoadError(
            f"The judge could not be loaded; {where} shows why (the same error for every "
            "item that needs the judge)."
        )

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()
        judge, self._judge = self._judge, None
        if judge is not None:
            self.judge_summary = judge.summary()
            self.judge_server = server_identity(judge)
            if isinstance(judge, CachedJudge):  # its counts, kept for the terminal summary
                self.cache_stats = (judge.stats, judge.mode, judge.cache.path)
            judge.close()
        if self.canary is not None:
            self.canary.close()

    def server(self) -> dict[str, Any] | None:
        """What the judge server says of itself: now, or as it was when the judge closed."""
        if self._judge is not None:
            return server_identity(self._judge)
        return self.judge_server

    def pop_judging_time(self, item: pytest.Item) -> tuple[float, float]:
        """(seconds ``item`` spent judging cases, its own axis' share of its case's time)."""
        if self.scheduler is None:
            return 0.0, 0.0
        return self.scheduler.pop_judging_time(item.nodeid)

    # -- checks

    def add_check(self, check: Check, item: pytest.Item | None = None) -> None:
        """Keep ``check`` for the report of ``item`` (default: the running test) and put its
        JUnit properties on that item."""
        item = item or self.current_item
        if check.judgment is not None:
            check.judge = check.judgment.judge
        elif check.judge is None and self._judge is not None:
            check.judge = self._judge.identity
        if not check.settings and self._judge is not None:
            check.settings = dict(self._judge.settings)
        if check.prompt is None and self._judge is not None:
            check.prompt = rendered_prompt(
                self._judge.rubric, check.axis, check.caption, check.criteria
            )
        if item is not None:
            check.nodeid = item.nodeid
            item.user_properties.extend(
                [
                    ("phyjudge_axis", check.axis),
                    ("phyjudge_score", "" if check.value is None else check.value),
                    ("phyjudge_min_score", check.min_score),
                ]
            )
            if check.samples is not None:
                scores = " ".join(
                    "-" if s["score"] is None else str(s["score"]) for s in check.samples
                )
                item.user_properties.append(("phyjudge_samples", scores))
        self._checks.setdefault(check.nodeid, []).append(check)

    def pop_checks(self, nodeid: str) -> list[Check]:
        return self._checks.pop(nodeid, [])

    def pop_all_checks(self) -> list[Check]:
        """Checks no test report carried (made outside any test, or by an interrupted one)."""
        left = [c for checks in self._checks.values() for c in checks]
        self._checks.clear()
        return left


# --------------------------------------------------------------------------- lookup

STATE_KEY = pytest.StashKey[PhyJudgeState]()


def activate(state: PhyJudgeState) -> None:
    state.config.stash[STATE_KEY] = state
    running.push(state)


def deactivate(config: pytest.Config) -> PhyJudgeState | None:
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return None
    del config.stash[STATE_KEY]
    running.pop(state)
    return state


def state_of(config: pytest.Config) -> PhyJudgeState:
    return config.stash[STATE_KEY]
