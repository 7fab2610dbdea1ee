"""The interface every judge backend fills in: score one axis, many axes of one video, or
many clips at once (which a backend may batch)."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError, JudgeOutputError, PhyJudgeError
from pytest_phyjudge.engine.axes import axis_from, check_axis, is_law
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment, RenderedPrompt
from pytest_phyjudge.engine.parse import parse_score
from pytest_phyjudge.engine.rubric import Rubric


@dataclass(frozen=True)
class ClipRequest:
    """One clip of a :meth:`Judge.score_clips` batch: the video, its caption, the axes to
    judge and any laws' criterion overrides (what one ``score_many`` call takes)."""

    video: str | Path
    caption: str
    axes: Sequence[str]
    criteria: Mapping[str, str] | None = None


#: A clip's outcome per axis: its Judgment, or the error that stopped that axis.
ClipOutcomes = dict[str, Judgment | PhyJudgeError]


def _checked(clip: ClipRequest | Sequence[Any]) -> ClipRequest:
    """``clip`` with a Path, valid deduplicated axes and criteria only for laws; a tuple
    ``(video, caption, axes[, criteria])`` is accepted too."""
    if not isinstance(clip, ClipRequest):
        clip = ClipRequest(*clip)
    if not isinstance(clip.video, (str, os.PathLike)):
        raise InputError(
            f"The video is {type(clip.video).__name__} {clip.video!r}; give the path of a "
            ".mp4 file (a str or a pathlib.Path)."
        )
    for axis, text in (clip.criteria or {}).items():
        if not isinstance(text, str):
            raise InputError(
                f"The criteria of {axis!r} is {type(text).__name__} {text!r}; give the "
                "criterion text as a str."
            )
    for axis in clip.criteria or {}:
        if not is_law(check_axis(axis)):
            raise InputError(
                f"criteria can only be overridden for a law, not {axis!r}: the "
                "general metrics have no criterion text."
            )
    return ClipRequest(
        Path(clip.video),
        clip.caption,
        tuple(dict.fromkeys(check_axis(a) for a in clip.axes)),
        dict(clip.criteria or {}) or None,
    )


class Judge(ABC):
    """A PhyJudge backend. Subclasses implement ``_score_axes``; the rest is shared.

    ``rubric`` renders the prompts, ``identity`` names the judge in every Judgment, and
    ``settings`` holds what changes a score besides the prompt (fps, max_pixels, ...).
    """

    identity: JudgeIdentity
    rubric: Rubric
    settings: Mapping[str, Any]

    def render(
        self,
        caption: str,
        *,
        law: str | None = None,
        metric: str | None = None,
        criteria: str | None = None,
    ) -> RenderedPrompt:
        """The system and user prompt the judge reads for one axis (video not included)."""
        axis = axis_from(law=law, metric=metric)
        return self.rubric.render(axis, caption, criteria=criteria)

    def score(
        self,
        video: str | Path,
        caption: str,
        *,
        law: str | None = None,
        metric: str | None = None,
        criteria: str | None = None,
    ) -> Judgment:
        """Judge one axis of one video; raises JudgeOutputError when the reply holds no score."""
        axis = axis_from(law=law, metric=metric)
        crit = {axis: criteria} if criteria is not None else None
        result = self._score_axes(Path(video), caption, [axis], crit)[axis]
        if isinstance(result, PhyJudgeError):
            raise result
        return result

    def score_many(
        self,
        video: str | Path,
        caption: str,
        axes: Iterable[str],
        *,
        criteria: Mapping[str, str] | None = None,
    ) -> dict[str, Judgment | PhyJudgeError]:
        """Judge several axes of one video. An axis that cannot be judged does not stop the
        others: it maps to its error (a JudgeOutputError for a reply without a score, a
        CacheError for a replay miss) instead of a Judgment."""
        clip = _checked(ClipRequest(video, caption, list(axes), criteria))
        return self._score_axes(Path(clip.video), caption, list(clip.axes), clip.criteria)

    def score_clips(self, clips: Iterable[ClipRequest | Sequence[Any]]) -> list[ClipOutcomes]:
        """Judge several clips, each as ``score_many`` would, one outcome map per clip in
        order. A backend may judge them together (the local judge runs them in one batch);
        the replies are the same as one clip at a time. A clip that cannot be judged at all
        (a video that cannot be read) maps each of its axes to that error and does not stop
        the others. ``clips`` holds ClipRequests or ``(video, caption, axes[, criteria])``."""
        return self._score_clips([_checked(clip) for clip in clips])

    def _score_clips(self, clips: list[ClipRequest]) -> list[ClipOutcomes]:
        """Judge checked ``clips``: ``score_many`` for each in turn here; backends that can
        batch override this."""
        outcomes: list[ClipOutcomes] = []
        for clip in clips:
            try:
                got = self.score_many(clip.video, clip.caption, clip.axes, criteria=clip.criteria)
            except InputError as exc:  # a video that cannot be read: only that clip fails
                got = dict.fromkeys(clip.axes, exc)
            outcomes.append(dict(got))
        return outcomes

    @abstractmethod
    def _score_axes(
        self,
        video: Path,
        caption: str,
        axes: list[str],
        criteria: Mapping[str, str] | None,
    ) -> dict[str, Judgment | PhyJudgeError]:
        """Judge ``axes`` (valid, deduplicated) of ``video``; one entry per axis."""

    def _judgment(
        self,
        axis: str,
        raw: str,
        *,
        video: Path,
        video_sha256: str,
        prompt_sha256: str,
        seconds: float,
        caption: str,
        score: int | None = None,
        **fields: Any,
    ) -> Judgment | JudgeOutputError:
        """The Judgment of one reply by this judge. Without ``score`` the score is parsed
        from ``raw``; a reply without one gives its JudgeOutputError instead."""
        if score is None:
            try:
                score = parse_score(raw, axis)
            except JudgeOutputError as exc:
                return exc
        return Judgment(
            key=axis,
            score=score,
            raw=raw,
            video=str(video),
            video_sha256=video_sha256,
            prompt_sha256=prompt_sha256,
            judge=self.identity,
            seconds=seconds,
            caption=caption,
            **fields,
        )

    def summary(self) -> str | None:
        """A line for the terminal summary about what the judge did (None: nothing to say)."""
        return None

    def close(self) -> None:
        """Free what the judge holds (model weights, connections). Idempotent."""
        return None

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.identity.describe()}>"
