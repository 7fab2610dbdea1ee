"""What one axis came to against its threshold: the record every report is built from."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment

if TYPE_CHECKING:
    from pytest_phyjudge.engine.rubric import Rubric


@dataclass
class Check:
    """One axis checked against its threshold, by a suite item or an assertion helper.

    Checks travel from the process that ran the test to the reporter on the test report
    (``report.phyjudge_checks``, as plain dicts), so they survive pytest-xdist.
    """

    axis: str
    min_score: int
    caption: str
    video: str | None
    judgment: Judgment | None = None
    error: str | None = None
    laws: tuple[str, ...] = ()
    suite: str | None = None
    case: str | None = None
    nodeid: str = ""
    outcome: str = ""
    sheet: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    #: Who judged; set for checks without a judgment too (an unparseable reply, say).
    judge: JudgeIdentity | None = None
    #: Gates on a score distribution (distribution scoring): the least mean score, and the
    #: least probability that the score reaches ``min_score``.
    min_expected: float | None = None
    min_prob: float | None = None
    #: Repeated samples: one dict per sample (``sample``, ``seed``, ``video``, ``score``,
    #: ``expected``, ``error``), and the gates' verdict over them (see ``sampling``).
    samples: list[dict[str, Any]] | None = None
    summary: dict[str, Any] | None = None
    #: The comparison with the run's baseline (see ``baseline.compare_entry``).
    baseline: dict[str, Any] | None = None
    #: The law's criterion text when the case replaced it, and the prompt the judge read
    #: (``system`` and ``user``), kept so that a report shows what was asked.
    criteria: str | None = None
    prompt: dict[str, str] | None = None
    #: False when the run only reports verdicts (``--phyjudge-verdicts report``): a score
    #: below the threshold did not fail the item, it "would fail".
    enforced: bool = True
    #: The generator that made the clip, when a suite case names one.
    generator: str | None = None

    @property
    def source(self) -> str:
        """Where the check was made, by node id: the suite case (its item's id without the
        axis) or the test function that asserted it."""
        own_item = self.case is not None and self.nodeid.rsplit("::", 1)[-1] == self.axis
        return self.nodeid.rsplit("::", 1)[0] if own_item else self.nodeid

    @property
    def would_fail(self) -> bool:
        """Its score missed the threshold, but the run only reports verdicts."""
        return not self.enforced and not self.passed and self.value is not None

    @property
    def score(self) -> int | None:
        """The judge's score (of the first scored sample for a sampled check)."""
        return None if self.judgment is None else self.judgment.score

    @property
    def value(self) -> float | None:
        """What a summary or a baseline compares: the score, or the samples' mean."""
        if self.summary is not None:
            return self.summary.get("mean")
        return self.score

    @property
    def expected(self) -> float | None:
        """The expected score (distribution scoring), averaged over samples; else None."""
        if self.samples is not None:
            values = [s.get("expected") for s in self.samples if s.get("score") is not None]
            if not values or any(v is None for v in values):
                return None
            return sum(values) / len(values)
        return None if self.judgment is None else self.judgment.expected

    @property
    def prob_meeting(self) -> float | None:
        """Probability, under the judge's distribution, of a score of ``min_score`` or more."""
        if self.judgment is None or self.judgment.probs is None:
            return None
        return float(sum(self.judgment.probs[self.min_score - 1 :]))

    @property
    def passed(self) -> bool:
        if self.summary is not None:
            return bool(self.summary.get("passed"))
        judgment = self.judgment
        if judgment is None or judgment.score < self.min_score:
            return False
        if self.min_expected is not None and (
            judgment.expected is None or judgment.expected < self.min_expected
        ):
            return False
        prob = self.prob_meeting
        return self.min_prob is None or (prob is not None and prob >= self.min_prob)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["judgment"] = None if self.judgment is None else self.judgment.to_dict()
        data["laws"] = list(self.laws)
        data["judge"] = None if self.judge is None else self.judge.to_dict()
        # Round-trip through JSON so only plain values cross an xdist channel.
        return json.loads(json.dumps(data, default=str))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        values = dict(data)
        if values.get("judgment") is not None:
            values["judgment"] = Judgment.from_dict(values["judgment"])
        values["laws"] = tuple(values.get("laws") or ())
        if values.get("judge") is not None:
            values["judge"] = JudgeIdentity(**values["judge"])
        return cls(**values)


def rendered_prompt(
    rubric: Rubric, axis: str, caption: str, criteria: str | None = None
) -> dict[str, str] | None:
    """The system and user text ``rubric`` renders for one axis and caption; None when it
    cannot (a report shows the prompt as a convenience, never fails over it)."""
    try:
        prompt = rubric.render(axis, caption, criteria=criteria)
    except Exception:
        return None
    return {"system": prompt.system, "user": prompt.user}
