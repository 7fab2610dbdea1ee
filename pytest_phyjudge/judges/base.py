"""The interface every judge backend fills in: score one axis, or many axes of one video."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError, JudgeOutputError, PhyJudgeError
from pytest_phyjudge.engine.axes import axis_from, check_axis, is_law
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment, RenderedPrompt
from pytest_phyjudge.engine.parse import parse_score
from pytest_phyjudge.engine.rubric import Rubric


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
        wanted = list(dict.fromkeys(check_axis(a) for a in axes))
        for axis in criteria or {}:
            if not is_law(check_axis(axis)):
                raise InputError(
                    f"criteria can only be overridden for a law, not {axis!r}: the "
                    "general metrics have no criterion text."
                )
        return self._score_axes(Path(video), caption, wanted, dict(criteria or {}) or None)

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
