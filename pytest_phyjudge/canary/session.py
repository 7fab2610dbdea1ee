"""A judging run's canary check: the canaries judged on the run's own judge, and the outcome
as every report carries it (``scores.json``'s ``meta.canary``, the terminal, the HTML page,
the CI summary), a plain value that crosses from a pytest-xdist worker as JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pytest_phyjudge._exceptions import PhyJudgeError, describe_error
from pytest_phyjudge.canary.compare import AxisStats, Tolerances, table_lines
from pytest_phyjudge.canary.model import CanaryFile
from pytest_phyjudge.canary.record import Ask, observe_judge
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.judges.settings import JudgeSettings

#: passed: the judge answers as recorded (a new identity is a note); failed: it drifted,
#: claims the recorded identity but answers otherwise, or could not answer; not checked:
#: no judge ran (replay mode, or every judgment came from the cache).
Status = Literal["passed", "failed", "not checked"]
#: ``verdict`` of a judge that could not answer its canaries (a server down, say).
UNANSWERED = "could not answer"


@dataclass(frozen=True)
class CanaryResult:
    """One run's canary check, as reported."""

    file: str
    mode: str
    status: Status
    #: The verdict's kind (``canary.compare``), UNANSWERED, or None when not checked.
    verdict: str | None
    #: The one line that says it all: the verdict's, or why nothing was checked.
    line: str
    axes: tuple[AxisStats, ...] = ()
    notes: tuple[str, ...] = ()
    calls: int = 0
    seconds: float = 0.0
    #: The item whose failure shows the whole message, and the xdist worker that ran it.
    first_item: str | None = None
    worker: str | None = None
    #: The judge as it described itself (``Setup.describe``), where it ran.
    judge: str | None = None
    drifted: tuple[str, ...] = field(default=())

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def checked(self) -> bool:
        return self.status != "not checked"

    def details(self) -> list[str]:
        """The per-axis table and the notes, below the summary line."""
        return [*table_lines(self.axes), *(f"note: {note}" for note in self.notes)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "mode": self.mode,
            "status": self.status,
            "verdict": self.verdict,
            "line": self.line,
            "axes": [
                {
                    "axis": s.axis,
                    "items": s.items,
                    "agreement": s.agreement,
                    "mean_diff": s.mean_diff,
                    "max_tv": s.max_tv,
                }
                for s in self.axes
            ],
            "drifted": list(self.drifted),
            "notes": list(self.notes),
            "judge_calls": self.calls,
            "judge_seconds": round(self.seconds, 3),
            "first_item": self.first_item,
            "worker": self.worker,
            "judge": self.judge,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CanaryResult:
        """The value :meth:`to_dict` wrote (a file this run's own worker wrote)."""
        return cls(
            file=str(data["file"]),
            mode=str(data["mode"]),
            status=data["status"],
            verdict=data.get("verdict"),
            line=str(data["line"]),
            axes=tuple(AxisStats(**a) for a in data.get("axes") or ()),
            notes=tuple(data.get("notes") or ()),
            calls=int(data.get("judge_calls") or 0),
            seconds=float(data.get("judge_seconds") or 0.0),
            first_item=data.get("first_item"),
            worker=data.get("worker"),
            judge=data.get("judge"),
            drifted=tuple(data.get("drifted") or ()),
        )


def not_checked(file: str, mode: str, why: str) -> CanaryResult:
    return CanaryResult(file=file, mode=mode, status="not checked", verdict=None, line=why)


def check_judge(
    judge: Judge,
    settings: JudgeSettings,
    canaries: CanaryFile,
    clips: Mapping[str, Path],
    *,
    file: str,
    mode: str,
    tolerances: Tolerances,
    clock: Callable[[], float],
    first_item: str | None = None,
    worker: str | None = None,
) -> CanaryResult:
    """``canaries`` judged afresh on ``judge`` (the run's own, behind no cache) and compared
    with the record; a judge that cannot answer them fails the check (with why)."""
    asks: Sequence[Ask] = [Ask(clips[i.clip], i.caption, i.axis) for i in canaries.items]
    started = clock()
    where = {"file": file, "mode": mode, "first_item": first_item, "worker": worker}
    try:
        seen = observe_judge(judge, settings, asks, clock=clock)
    except PhyJudgeError as exc:
        return CanaryResult(
            status="failed",
            verdict=UNANSWERED,
            line=f"the judge could not answer its canaries: {describe_error(exc)}",
            seconds=clock() - started,
            judge=judge.identity.describe(),
            **where,
        )
    verdict = seen.compared_with(canaries, tolerances)
    return CanaryResult(
        status="passed" if verdict.holds else "failed",
        verdict=verdict.kind,
        line=verdict.line(),
        axes=verdict.axes,
        notes=tuple(verdict.notes()),
        calls=seen.calls,
        seconds=seen.seconds,
        judge=seen.setup.describe(),
        drifted=tuple(axis for axis, _ in verdict.drifted),
        **where,
    )
