"""``score-dir``'s loop: judge (prompt, video) pairs through the cache, write scores.json
after every video, and keep enough videos in flight to fill the judge servers."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pytest_phyjudge._escape import terminal_text
from pytest_phyjudge._exceptions import InputError, describe_error
from pytest_phyjudge._files import write_json_atomic
from pytest_phyjudge._words import counted
from pytest_phyjudge.cli.arguments import warn_if_stand_in
from pytest_phyjudge.engine.judgment import Judgment
from pytest_phyjudge.judges.base import ClipRequest
from pytest_phyjudge.judges.factory import build_judge
from pytest_phyjudge.judges.settings import JudgeSettings
from pytest_phyjudge.reporting.checks import rendered_prompt
from pytest_phyjudge.reporting.health import JudgeWarning, judge_health, replies_of_outcomes
from pytest_phyjudge.scores import VideoResult, build_scores

Pair = tuple[dict[str, Any], Path]


def _write_scores(out: Path, document: dict[str, Any]) -> None:
    """Write ``out``; a location that turns out unwritable (read-only, full, removed while
    judging) stops the run with an error naming it: the judgments stay in the cache."""
    try:
        write_json_atomic(out, document)
    except OSError as exc:
        raise InputError(
            f"Cannot write --out {str(out)!r} ({describe_error(exc)}). Point --out at a "
            "writable location and run again: what was judged so far is kept in the judgment "
            "cache (unless --cache-mode off)."
        ) from exc


def _health(results: Sequence[VideoResult]) -> list[JudgeWarning]:
    """The degenerate-judge warnings over every clip's replies (``reporting.health``)."""
    return judge_health(r for result in results for r in replies_of_outcomes(result.outcomes))


class BatchRun:
    """One ``score-dir`` run: its judge (behind the cache), results and counts."""

    def __init__(
        self,
        args: argparse.Namespace,
        settings: JudgeSettings,
        metrics: list[str],
        only_laws: set[str] | None,
    ) -> None:
        self.args = args
        self.settings = settings
        self.metrics = metrics
        self.only_laws = only_laws
        self.judge = build_judge(settings)
        self.stand_in = warn_if_stand_in(self.judge.identity.kind)
        self.generator: str | None = None
        self.failed_axes = 0
        self.judged = 0
        self.meta: dict[str, Any] = {
            "judge": self.judge.identity.to_dict(),
            "settings": dict(self.judge.settings),
            "prompts": str(args.prompts),
            "videos": str(args.videos),
            "rubric_calibrated": self.judge.rubric.calibrated,
            "scores_meaningless": self.stand_in is not None,
            **({} if self.stand_in is None else {"stand_in": self.stand_in}),
        }

    def judge_group(self, pairs: Sequence[Pair]) -> list[VideoResult]:
        """Judge ``pairs`` in one ``score_clips`` call (one batch for a local judge, up to
        ``--batch-clips`` clips); a clip that cannot be read fails only its own axes."""
        results, clips = [], []
        for prompt, path in pairs:
            laws = [
                law for law in prompt["laws"] if self.only_laws is None or law in self.only_laws
            ]
            results.append(
                VideoResult(
                    video=prompt["id"],
                    prompt=prompt["prompt"],
                    physical_laws=laws,
                    extra={"file": str(path), "generator": self.generator},
                )
            )
            clips.append(ClipRequest(path, prompt["prompt"], self.metrics + laws))
        for result, clip, outcomes in zip(
            results, clips, self.judge.score_clips(clips), strict=True
        ):
            result.outcomes.update(outcomes)
            result.extra["checks"] = {
                axis: self._entry(axis, outcome, clip.caption)
                for axis, outcome in result.outcomes.items()
            }
        return results

    def _entry(self, axis: str, outcome: Judgment | Exception, caption: str) -> dict[str, Any]:
        """What the HTML report shows of one axis: the reply, its probabilities, the prompt."""
        scored = isinstance(outcome, Judgment)
        return {
            "score": outcome.score if scored else None,
            "raw": outcome.raw if scored else getattr(outcome, "raw", None),
            "probs": list(outcome.probs) if scored and outcome.probs is not None else None,
            "expected": outcome.expected if scored else None,
            "error": None if scored else describe_error(outcome),
            "prompt": rendered_prompt(self.judge.rubric, axis, caption),
        }

    def in_flight(self, paired: Sequence[Pair]) -> int:
        """Batches judged at once: one for a local model; against judge servers, enough to
        keep ``--concurrency`` requests going (a video's axes already run concurrently)."""
        if not self.settings.url:
            return 1
        most_laws = max((len(p["laws"]) for p, _ in paired), default=0)
        axes_per_video = max(1, len(self.metrics) + most_laws)
        return max(1, -(-self.settings.concurrency // axes_per_video))

    def judge_all(self, paired: Sequence[Pair], out: Path, *, generator: str | None) -> None:
        """Judge every pair into ``out``; results come back, and are written, in the prompt
        set's order, after every video (so that a run stopped at any point resumes)."""
        from tqdm import tqdm

        self.generator = generator
        results: list[VideoResult] = []
        warned: list[JudgeWarning] = []
        meta = {**self.meta, "generator": generator}
        started, judged_before, failed_before = time.monotonic(), self.judged, self.failed_axes
        pool = ThreadPoolExecutor(self.in_flight(paired), thread_name_prefix="phyjudge-video")
        size = self.settings.batch_clips
        groups = [paired[i : i + size] for i in range(0, len(paired), size)]
        bar = tqdm(
            (result for group in pool.map(self.judge_group, groups) for result in group),
            total=len(paired),
            unit="video",
            desc="judging" if generator is None else f"judging {terminal_text(generator)}",
            file=sys.stderr,
            dynamic_ncols=True,
        )
        try:
            for result in bar:
                self._count(result)
                results.append(result)
                if len(results) == len(paired):  # the last write: the judge's health too
                    warned = _health(results)
                    meta["judge_warnings"] = [w.to_dict() for w in warned]
                _write_scores(out, build_scores(results, meta))
                minutes = max(time.monotonic() - started, 1e-9) / 60
                bar.set_postfix(
                    judgments_per_min=f"{(self.judged - judged_before) / minutes:.0f}",
                    cache_hits=self.hits,
                    failed=self.failed_axes,
                )
        finally:
            bar.close()
            pool.shutdown(wait=True, cancel_futures=True)
        print(
            f"wrote {terminal_text(str(out))}: {counted(len(results), 'video')}, "
            f"{counted(self.judged - judged_before, 'judgment')} "
            f"({self.failed_axes - failed_before} failed; {self.hits} from the cache so far)"
            + ("" if self.stand_in is None else "; a stand-in judge: the scores are meaningless"),
            file=sys.stderr,
        )
        for warning in warned:
            print(f"judge warning: {terminal_text(warning.message)}", file=sys.stderr)

    def close(self) -> None:
        self.judge.close()

    @property
    def hits(self) -> int:
        stats = getattr(self.judge, "stats", None)
        return 0 if stats is None else stats.hits

    def _count(self, result: VideoResult) -> None:
        self.failed_axes += sum(not isinstance(o, Judgment) for o in result.outcomes.values())
        self.judged += len(result.outcomes)
