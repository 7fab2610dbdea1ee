"""The state of one pytest run: its options, the lazily made judge, case judgments, checks.

One :class:`PhyJudgeState` lives under :data:`STATE_KEY` in ``config.stash`` from
``pytest_configure`` to ``pytest_unconfigure``. The assertion helpers find it through
:func:`active` (a stack, so that pytester's in-process runs nest cleanly).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_phyjudge._exceptions import JudgeLoadError, PhyJudgeError
from pytest_phyjudge.engine.judgment import Judgment
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.plugin import running
from pytest_phyjudge.plugin.options import Options
from pytest_phyjudge.reporting.checks import Check, rendered_prompt

if TYPE_CHECKING:
    from pytest_phyjudge.regression.baseline import Baseline


def make_judge(config: pytest.Config, options: Options) -> Judge:
    """The run's judge, from the one judge factory: ``--phyjudge-judge``, else a
    ``pytest_phyjudge_make_judge`` hook of the user's, else PhyJudge-9B (or the adapter,
    servers or recorded judge the options name), behind the judgment cache."""
    from pytest_phyjudge.judges.factory import build_judge

    worker = getattr(config, "workerinput", None)
    return build_judge(
        options.judge,
        hook=lambda: config.hook.pytest_phyjudge_make_judge(config=config),
        context=config,
        worker=None if worker is None else str(worker.get("workerid", "?")),
    )


# --------------------------------------------------------------------------- the baseline


def load_run_baseline(options: Options) -> Baseline | None:
    """The run's baseline, read once; bad flags or a bad file are a UsageError."""
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
    if not baseline.exists and not options.update_baseline:
        raise pytest.UsageError(
            f"The baseline {options.baseline} does not exist. Create it from this run's scores "
            "with --phyjudge-update-baseline (then commit it)."
        )
    return baseline


# --------------------------------------------------------------------------- the state

CaseKey = tuple[str, str]
#: What one axis of a case came to: a Judgment, or the error that stopped it (a
#: PhyJudgeError for bad input or an unreadable reply, anything else for a bug).
Outcome = Judgment | Exception


class PhyJudgeState:
    """Everything one run shares: the judge (made on first use), each case's judgments
    (computed once for all its items) and the checks waiting for their test report."""

    def __init__(self, config: pytest.Config, options: Options) -> None:
        self.config = config
        self.options = options
        self._judge: Judge | None = None
        self._load_error: JudgeLoadError | None = None
        self._load_error_item: str | None = None
        self._cases: dict[CaseKey, dict[str, Outcome]] = {}
        self._axes_index: dict[CaseKey, list[str]] | None = None
        # Cases judged ahead in the background (judge servers only).
        self._ahead: dict[CaseKey, Future[dict[str, Any]]] = {}
        self._ahead_pool: ThreadPoolExecutor | None = None
        # Cases judged in a batch with an earlier one: their share of the batch's time.
        self._batched_seconds: dict[CaseKey, float] = {}
        self._order: list[tuple[CaseKey, pytest.Item]] | None = None
        self._position: dict[CaseKey, int] = {}
        self._checks: dict[str, list[Check]] = {}
        #: Each case's contact sheet (None: none could be made), made by its first item.
        self.sheets: dict[tuple[str | None, ...], str | None] = {}
        # Judging time: each (case, axis)'s share of its case's, and what each item spent.
        self._shares: dict[tuple[CaseKey, str], float] = {}
        self._spent: dict[str, float] = {}
        self.current_item: pytest.Item | None = None
        self.judge_loads = 0
        self.cache_stats: tuple[Any, str, Path] | None = None
        self.judge_summary: str | None = None
        self.baseline: Baseline | None = load_run_baseline(options)

    # -- the judge

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
            self._judge = make_judge(self.config, self.options)
        except JudgeLoadError as exc:
            self._load_error = exc
            self._load_error_item = None if self.current_item is None else self.current_item.nodeid
            raise
        return self._judge

    def load_error_again(self) -> JudgeLoadError:
        """The brief error of every item after the first that needed a judge that failed to
        load: the whole message is shown once, by that first item."""
        where = self._load_error_item or "the first item that asked for it"
        return JudgeLoadError(
            f"The judge could not be loaded; {where} shows why (the same error for every "
            "item that needs the judge)."
        )

    def close(self) -> None:
        if self._ahead_pool is not None:
            self._ahead_pool.shutdown(wait=False, cancel_futures=True)
            self._ahead_pool = None
        self._ahead.clear()
        judge, self._judge = self._judge, None
        if judge is not None:
            self.judge_summary = judge.summary()
            stats = getattr(judge, "stats", None)
            if stats is not None:  # a CachedJudge: kept for the terminal summary
                self.cache_stats = (stats, judge.mode, judge.cache.path)  # type: ignore[attr-defined]
            judge.close()

    # -- suite cases

    def case_axes(self, key: CaseKey, items: Sequence[pytest.Item]) -> list[str]:
        """The axes of a case that this run selected (so ``-k gravity`` scores one axis).

        Empty on a pytest-xdist worker that may get only some items of a case (``--dist
        load`` or ``worksteal``): there each item judges its own axis, since judging the
        whole case would judge the other workers' axes a second time. ``--dist loadscope``
        sends a case's items to one worker, which then judges them together.
        """
        if self._splits_cases():
            return []
        if self._axes_index is None:
            index: dict[CaseKey, list[str]] = {}
            for item in items:
                item_key = getattr(item, "phyjudge_case_key", None)
                if item_key is not None:
                    index.setdefault(item_key, []).append(item.phyjudge_axis)  # type: ignore[attr-defined]
            self._axes_index = index
        return self._axes_index.get(key, [])

    def _splits_cases(self) -> bool:
        if not hasattr(self.config, "workerinput"):
            return False
        return self.config.getoption("dist", "no") not in ("loadscope", "loadfile")

    def case_outcomes(
        self,
        key: CaseKey,
        axes: Iterable[str],
        judge_case: Any,
    ) -> dict[str, Outcome]:
        """Each axis' Judgment or error, from ``judge_case(missing_axes)`` for those not
        judged yet: a case is judged once, in one ``score_many`` call, for all its items
        (or was judged ahead, in the background; see :meth:`look_ahead`)."""
        started = time.perf_counter()
        done = self._cases.setdefault(key, {})
        judged: list[str] = []
        ahead = self._ahead.pop(key, None)
        if ahead is not None:
            from_ahead = ahead.result()
            done.update(from_ahead)
            judged += from_ahead
        missing = [axis for axis in dict.fromkeys(axes) if axis not in done]
        if missing:
            done.update(judge_case(missing))
            judged += missing
        if judged:
            spent = time.perf_counter() - started + self._batched_seconds.pop(key, 0.0)
            self._record_judging(key, judged, spent)
        return done

    def _record_judging(self, key: CaseKey, axes: list[str], seconds: float) -> None:
        """The running item spent ``seconds`` judging ``axes`` of a case; each gets a share."""
        for axis in axes:
            self._shares[(key, axis)] = seconds / len(axes)
        if self.current_item is not None:
            nodeid = self.current_item.nodeid
            self._spent[nodeid] = self._spent.get(nodeid, 0.0) + seconds

    def pop_judging_time(self, item: pytest.Item) -> tuple[float, float]:
        """(seconds ``item`` spent judging cases, its own axis' share of its case's time)."""
        spent = self._spent.pop(item.nodeid, 0.0)
        key = getattr(item, "phyjudge_case_key", None)
        share = 0.0
        if key is not None:
            share = self._shares.pop((key, getattr(item, "phyjudge_axis", "")), 0.0)
        return spent, share

    def _case_order(self, items: Sequence[pytest.Item]) -> list[tuple[CaseKey, pytest.Item]]:
        """The run's cases in order, each with its first item."""
        if self._order is None:
            firsts: dict[CaseKey, pytest.Item] = {}
            for other in items:
                other_key = getattr(other, "phyjudge_case_key", None)
                if other_key is not None:
                    firsts.setdefault(other_key, other)
            self._order = list(firsts.items())
            self._position = {key: i for i, (key, _) in enumerate(self._order)}
        return self._order

    def judge_together(
        self, item: pytest.Item, axes: list[str], items: Sequence[pytest.Item]
    ) -> None:
        """With ``--phyjudge-batch-clips N`` above 1, judge ``item``'s case (on ``axes``)
        together with the next cases whose videos are files, up to N clips in one batch;
        their outcomes wait for their own items as judged-ahead cases do. Not with judge
        servers (:meth:`look_ahead` keeps them busy), nor on an xdist worker (it knows every
        item, not which ones it will run)."""
        from pytest_phyjudge.plugin.batching import CaseJob, judge_cases

        size, key = self.options.judge.batch_clips, getattr(item, "phyjudge_case_key", None)
        if size <= 1 or key is None or self.options.judge.url:
            return
        if hasattr(self.config, "workerinput") or key in self._cases or key in self._ahead:
            return
        jobs = [CaseJob(item, axes)]  # type: ignore[arg-type]
        clips = len(jobs[0].clips)
        for other_key, first in self._case_order(items)[self._position[key] + 1 :]:
            if clips >= size:
                break
            taken = other_key in self._cases or other_key in self._ahead
            if taken or not getattr(first, "phyjudge_prefetchable", False):
                continue
            jobs.append(CaseJob(first, self.case_axes(other_key, items)))  # type: ignore[arg-type]
            clips += len(jobs[-1].clips)
        if len(jobs) == 1:
            return  # nothing to judge with it: the case is judged as usual
        started = time.perf_counter()
        results = judge_cases(jobs)
        seconds = time.perf_counter() - started
        for job, result in zip(jobs, results, strict=True):
            job_key = job.item.phyjudge_case_key
            done: Future[dict[str, Any]] = Future()
            done.set_result(result)
            self._ahead[job_key] = done
            self._batched_seconds[job_key] = seconds * len(job.clips) / clips

    def look_ahead(self, item: pytest.Item, items: Sequence[pytest.Item]) -> None:
        """With judge servers, start judging the cases after ``item``'s in the background,
        enough of them to keep ``--phyjudge-concurrency`` requests in flight: one case's
        axes alone rarely do. Only cases whose videos are files are judged ahead (never a
        generator in a background thread), and only once the judge is up. Not on an xdist
        worker: it knows every item, not which ones it will run."""
        if not self.options.judge.url or self._judge is None or hasattr(self.config, "workerinput"):
            return
        order = self._case_order(items)
        here = self._position.get(getattr(item, "phyjudge_case_key", ("", "")), -1)
        axes = max(1, len(self.case_axes(getattr(item, "phyjudge_case_key", ("", "")), items)))
        window = max(1, -(-self.options.judge.concurrency // axes))
        if self._ahead_pool is None:
            self._ahead_pool = ThreadPoolExecutor(window, thread_name_prefix="phyjudge-ahead")
        for key, first in order[here + 1 : here + 1 + window]:
            if key in self._cases or key in self._ahead:
                continue
            if not getattr(first, "phyjudge_prefetchable", False):
                continue
            job = first._judge_case  # type: ignore[attr-defined]
            self._ahead[key] = self._ahead_pool.submit(job, self.case_axes(key, items))

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
