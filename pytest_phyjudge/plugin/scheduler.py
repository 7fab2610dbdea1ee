"""When, and together with what, each suite case is judged.

A case is judged once for all its items: the first of its items to run judges every axis
the run selected (so ``-k gravity`` scores one axis), and the others take their outcome
from the memo. With judge servers the next cases are judged ahead in the background, enough
to keep ``--phyjudge-concurrency`` requests in flight; with ``--phyjudge-batch-clips N`` a
case is judged in one batch with the next cases whose videos are files. Each axis item is
then charged its own share of its case's judging time, not whichever item happened to
judge the case.

Items talk to the :class:`Scheduler` through :class:`SuiteAxis`, a value holding what the
scheduler needs of an item (its node id, case, axis and generators); the scheduler reaches
the run's judge through :class:`JudgeSource`, which the run's state provides.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from pytest_phyjudge._exceptions import JudgeLoadError, PhyJudgeError, describe_error
from pytest_phyjudge.engine.judgment import Judgment
from pytest_phyjudge.judges.base import ClipRequest, Judge
from pytest_phyjudge.plugin.generate import Generators, case_video
from pytest_phyjudge.plugin.options import Options
from pytest_phyjudge.plugin.pipelines import pipeline_video
from pytest_phyjudge.suites import Case

CaseKey = tuple[str, str]
#: What one axis of a case came to: a Judgment, or the error that stopped it (a
#: PhyJudgeError for bad input or an unreadable reply, anything else for a bug).
Outcome = Judgment | Exception
#: Each axis' Outcome for a case; for a sampled case, a tuple of Outcomes, one per sample.
CaseOutcomes = dict[str, Any]


@dataclass(frozen=True)
class SuiteAxis:
    """What the scheduler needs of one suite item: which axis of which case it checks, and
    what makes the case's videos."""

    nodeid: str
    #: The case's key: its suite file and its id.
    key: CaseKey
    axis: str
    case: Case
    generators: Generators

    @property
    def clips(self) -> list[Case]:
        """The case as each clip judged for it: itself, or each of its samples."""
        case = self.case
        return [case.sample(i) for i in range(case.samples)] if case.sampled else [case]

    @property
    def prefetchable(self) -> bool:
        """Whether the case's videos are files (no generator), so it may be judged ahead."""
        return all(clip.video is not None for clip in self.clips)


class JudgeSource(Protocol):
    """The run's judge, as the scheduler uses it: made on first use, its load failure told
    in full once and briefly after."""

    @property
    def judge_loaded(self) -> bool: ...

    def judge(self) -> Judge: ...

    def load_error_again(self) -> JudgeLoadError: ...


@dataclass(frozen=True)
class _Job:
    """One case to judge on ``axes``, asked for by (the first item of) ``work``."""

    work: SuiteAxis
    axes: list[str]


class Scheduler:
    """The run's judging of suite cases: the memo of each case's outcomes, the cases judged
    ahead or in a batch, and the judging time each item spent and is charged."""

    def __init__(
        self,
        config: pytest.Config,
        options: Options,
        judges: JudgeSource,
        items: Sequence[SuiteAxis],
    ) -> None:
        """``items``: the run's suite items, in the order they run (after selection and
        reordering)."""
        self._config = config
        self._options = options
        self._judges = judges
        self._cases: dict[CaseKey, CaseOutcomes] = {}
        # Each case's selected axes, each case's first item in order, each item's axis.
        self._axes_index: dict[CaseKey, list[str]] = {}
        self._order: list[SuiteAxis] = []
        self._position: dict[CaseKey, int] = {}
        self._axis_of: dict[str, tuple[CaseKey, str]] = {}
        for work in items:
            self._axes_index.setdefault(work.key, []).append(work.axis)
            if work.key not in self._position:
                self._position[work.key] = len(self._order)
                self._order.append(work)
            self._axis_of[work.nodeid] = (work.key, work.axis)
        # Cases judged ahead in the background (judge servers) or in a batch.
        self._ahead: dict[CaseKey, Future[CaseOutcomes]] = {}
        self._ahead_pool: ThreadPoolExecutor | None = None
        # Cases judged in a batch with an earlier one: their share of the batch's time.
        self._batched_seconds: dict[CaseKey, float] = {}
        # Judging time: each (case, axis)'s share of its case's, and what each item spent.
        self._shares: dict[tuple[CaseKey, str], float] = {}
        self._spent: dict[str, float] = {}

    def close(self) -> None:
        """Stop judging ahead: what is queued is dropped, what runs is not waited for."""
        if self._ahead_pool is not None:
            self._ahead_pool.shutdown(wait=False, cancel_futures=True)
            self._ahead_pool = None
        self._ahead.clear()

    # -- one item's case

    def outcomes(self, work: SuiteAxis) -> CaseOutcomes:
        """Each judged axis' outcome of ``work``'s case, its own axis among them: judged now
        (with the next cases, in a batch), or earlier, for another item of the case or ahead."""
        self._look_ahead(work)
        axes = self._case_axes(work.key)
        if work.axis not in axes:
            axes = [*axes, work.axis]
        self._judge_together(work, axes)
        return self._case_outcomes(work, axes)

    def _case_axes(self, key: CaseKey) -> list[str]:
        """The axes of a case that this run selected.

        Empty on a pytest-xdist worker that may get only some items of a case (``--dist
        load`` or ``worksteal``): there each item judges its own axis, since judging the
        whole case would judge the other workers' axes a second time. ``--dist loadscope``
        sends a case's items to one worker, which then judges them together.
        """
        if self._splits_cases():
            return []
        return self._axes_index.get(key, [])

    def _splits_cases(self) -> bool:
        if not hasattr(self._config, "workerinput"):
            return False
        return self._config.getoption("dist", "no") not in ("loadscope", "loadfile")

    def _case_outcomes(self, work: SuiteAxis, axes: list[str]) -> CaseOutcomes:
        """Each axis' outcome, judging those not judged yet in one call for the case (or
        taking what was judged ahead, in the background or in a batch)."""
        started = time.perf_counter()
        done = self._cases.setdefault(work.key, {})
        judged: list[str] = []
        ahead = self._ahead.pop(work.key, None)
        if ahead is not None:
            from_ahead = ahead.result()
            done.update(from_ahead)
            judged += from_ahead
        missing = [axis for axis in dict.fromkeys(axes) if axis not in done]
        if missing:
            done.update(self._judge_cases([_Job(work, missing)])[0])
            judged += missing
        if judged:
            spent = time.perf_counter() - started + self._batched_seconds.pop(work.key, 0.0)
            self._record_judging(work, judged, spent)
        return done

    def _taken(self, key: CaseKey) -> bool:
        return key in self._cases or key in self._ahead

    # -- judging time

    def _record_judging(self, work: SuiteAxis, axes: list[str], seconds: float) -> None:
        """``work``'s item spent ``seconds`` judging ``axes`` of its case; each gets a share."""
        for axis in axes:
            self._shares[(work.key, axis)] = seconds / len(axes)
        self._spent[work.nodeid] = self._spent.get(work.nodeid, 0.0) + seconds

    def pop_judging_time(self, nodeid: str) -> tuple[float, float]:
        """(seconds the item ``nodeid`` spent judging cases, its own axis' share of its
        case's time); zeros for an item that is no suite item."""
        spent = self._spent.pop(nodeid, 0.0)
        where = self._axis_of.get(nodeid)
        share = 0.0 if where is None else self._shares.pop(where, 0.0)
        return spent, share

    # -- judging ahead

    def _judge_together(self, work: SuiteAxis, axes: list[str]) -> None:
        """With ``--phyjudge-batch-clips N`` above 1, judge ``work``'s case (on ``axes``)
        together with the next cases whose videos are files, up to N clips in one batch;
        their outcomes wait for their own items as judged-ahead cases do. Not with judge
        servers (:meth:`_look_ahead` keeps them busy), nor on an xdist worker (it knows every
        item, not which ones it will run)."""
        size = self._options.judge.batch_clips
        if size <= 1 or self._options.judge.url or hasattr(self._config, "workerinput"):
            return
        if self._taken(work.key):
            return
        jobs = [_Job(work, axes)]
        clips = len(work.clips)
        for first in self._order[self._position[work.key] + 1 :]:
            if clips >= size:
                break
            if self._taken(first.key) or not first.prefetchable:
                continue
            jobs.append(_Job(first, self._case_axes(first.key)))
            clips += len(first.clips)
        if len(jobs) == 1:
            return  # nothing to judge with it: the case is judged as usual
        started = time.perf_counter()
        results = self._judge_cases(jobs)
        seconds = time.perf_counter() - started
        for job, result in zip(jobs, results, strict=True):
            done: Future[CaseOutcomes] = Future()
            done.set_result(result)
            self._ahead[job.work.key] = done
            self._batched_seconds[job.work.key] = seconds * len(job.work.clips) / clips

    def _look_ahead(self, work: SuiteAxis) -> None:
        """With judge servers, start judging the cases after ``work``'s in the background,
        enough of them to keep ``--phyjudge-concurrency`` requests in flight: one case's
        axes alone rarely do. Only cases whose videos are files are judged ahead (never a
        generator in a background thread), and only once the judge is up. Not on an xdist
        worker: it knows every item, not which ones it will run."""
        if not self._options.judge.url or not self._judges.judge_loaded:
            return
        if hasattr(self._config, "workerinput"):
            return
        here = self._position.get(work.key, -1)
        axes = max(1, len(self._case_axes(work.key)))
        window = max(1, -(-self._options.judge.concurrency // axes))
        if self._ahead_pool is None:
            self._ahead_pool = ThreadPoolExecutor(window, thread_name_prefix="phyjudge-ahead")
        for first in self._order[here + 1 : here + 1 + window]:
            if self._taken(first.key) or not first.prefetchable:
                continue
            job = _Job(first, self._case_axes(first.key))
            self._ahead[first.key] = self._ahead_pool.submit(self._judge_one, job)

    # -- judging cases, their clips in batches

    def _judge_one(self, job: _Job) -> CaseOutcomes:
        return self._judge_cases([job])[0]

    def _judge_cases(self, jobs: Sequence[_Job]) -> list[CaseOutcomes]:
        """Each job's outcomes per axis (a tuple of Outcomes, one per sample, for a sampled
        case), the clips judged ``--phyjudge-batch-clips`` at a time: each clip's outcome
        comes back to its own case and axis, a failure only to the cases it concerns. With
        one clip per batch, each clip is made (or generated) right before it is judged."""
        size = self._options.judge.batch_clips
        flat = [(n, job, clip) for n, job in enumerate(jobs) for clip in job.work.clips]
        outcomes: list[dict[str, Outcome]] = []
        for start in range(0, len(flat), size):
            chunk = flat[start : start + size]
            outcomes += self._judge_chunk([(job, clip) for _, job, clip in chunk], start == 0)
        results: list[CaseOutcomes] = []
        for n, job in enumerate(jobs):
            runs = [outcome for (m, _, _), outcome in zip(flat, outcomes, strict=True) if m == n]
            if job.work.case.sampled:
                results.append({axis: tuple(run[axis] for run in runs) for axis in job.axes})
            else:
                results.append(runs[0])
        return results

    def _judge_chunk(self, chunk: list[tuple[_Job, Case]], first: bool) -> list[dict[str, Outcome]]:
        """One ``score_clips`` call for the clips of ``chunk`` whose videos could be made."""
        made: list[dict[str, Outcome] | ClipRequest] = []
        for job, case in chunk:
            try:
                if case.video is None and case.pipeline is not None:
                    video = pipeline_video(self._config, self._options, case)
                else:
                    video = case_video(
                        self._config,
                        case,
                        regenerate=self._options.regenerate,
                        generators=job.work.generators,
                    )
            except PhyJudgeError as exc:
                made.append(dict.fromkeys(job.axes, exc))
                continue
            criteria = {law: text for law, text in case.criteria.items() if law in job.axes}
            made.append(ClipRequest(video, case.prompt, job.axes, criteria or None))
        requests = [one for one in made if isinstance(one, ClipRequest)]
        try:
            judged = iter(self._judges.judge().score_clips(requests) if requests else [])
        except JudgeLoadError as exc:
            # In full for the item that asked first; every other axis points there.
            again = self._judges.load_error_again()
            lead = chunk[0][0].work.axis if first else None
            return [
                {axis: exc if axis == lead and n == 0 else again for axis in job.axes}
                for n, (job, _) in enumerate(chunk)
            ]
        except PhyJudgeError as exc:
            return [dict.fromkeys(job.axes, exc) for job, _ in chunk]
        except Exception as exc:
            # Not bad input but a failure of the judge or the plugin: kept, with its traceback
            # chained, so the cases' other items fail with it without re-running.
            return [dict.fromkeys(job.axes, _failed(case, exc)) for job, case in chunk]
        return [next(judged) if isinstance(one, ClipRequest) else one for one in made]


def _failed(case: Case, exc: Exception) -> RuntimeError:
    error = RuntimeError(f"Judging case {case.id!r} failed: {describe_error(exc)}")
    error.__cause__ = exc
    return error
