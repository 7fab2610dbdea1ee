"""Suite cases judged in batches of clips: each case's clip (or each sample's) goes to the
judge in ``score_clips`` calls of up to ``--phyjudge-batch-clips`` clips, and each outcome
comes back to its own case and axis, a failure only to the cases it concerns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_phyjudge._exceptions import JudgeLoadError, PhyJudgeError, describe_error
from pytest_phyjudge.judges.base import ClipRequest
from pytest_phyjudge.plugin.generate import case_video
from pytest_phyjudge.plugin.state import Outcome, state_of

if TYPE_CHECKING:
    from pytest_phyjudge.plugin.items import AxisItem
    from pytest_phyjudge.suites import Case


@dataclass(frozen=True)
class CaseJob:
    """One case to judge on ``axes``, asked for by (the first item of) ``item``."""

    item: AxisItem
    axes: list[str]

    @property
    def clips(self) -> list[Case]:
        """The case as each clip judged for it: itself, or each of its samples."""
        case = self.item.case
        return [case.sample(i) for i in range(case.samples)] if case.sampled else [case]


def judge_cases(jobs: Sequence[CaseJob]) -> list[dict[str, Any]]:
    """Each job's outcomes per axis (a tuple of Outcomes, one per sample, for a sampled
    case), the clips judged ``batch_clips`` at a time. With one clip per batch, each clip is
    made (or generated) right before it is judged, as without batching."""
    if not jobs:
        return []
    state = state_of(jobs[0].item.config)
    size = state.options.judge.batch_clips
    flat = [(n, job, clip) for n, job in enumerate(jobs) for clip in job.clips]
    outcomes: list[dict[str, Outcome]] = []
    for start in range(0, len(flat), size):
        chunk = flat[start : start + size]
        outcomes += _judge_chunk(state, [(job, clip) for _, job, clip in chunk], first=start == 0)
    results: list[dict[str, Any]] = []
    for n, job in enumerate(jobs):
        runs = [outcome for (m, _, _), outcome in zip(flat, outcomes, strict=True) if m == n]
        if job.item.case.sampled:
            results.append({axis: tuple(run[axis] for run in runs) for axis in job.axes})
        else:
            results.append(runs[0])
    return results


def _judge_chunk(
    state: Any, chunk: list[tuple[CaseJob, Case]], *, first: bool
) -> list[dict[str, Outcome]]:
    """One ``score_clips`` call for the clips of ``chunk`` whose videos could be made."""
    made: list[dict[str, Outcome] | ClipRequest] = []
    for job, case in chunk:
        try:
            video = case_video(
                job.item.config,
                case,
                regenerate=state.options.regenerate,
                generators=job.item.generators,
            )
        except PhyJudgeError as exc:
            made.append(dict.fromkeys(job.axes, exc))
            continue
        criteria = {law: text for law, text in case.criteria.items() if law in job.axes}
        made.append(ClipRequest(video, case.prompt, job.axes, criteria or None))
    requests = [one for one in made if isinstance(one, ClipRequest)]
    try:
        judged = iter(state.judge().score_clips(requests) if requests else [])
    except JudgeLoadError as exc:
        # In full for the item that asked first; every other axis points there.
        again = state.load_error_again()
        lead = chunk[0][0].item.axis if first else None
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
