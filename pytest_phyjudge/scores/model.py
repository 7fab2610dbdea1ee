"""The ``scores.json`` document as typed values: what every reader of it reads.

:func:`~pytest_phyjudge.scores.reader.check_scores` checks a document field by field and
returns a :class:`ScoresDocument`; from then on nobody reads the raw dictionary with defaults
of its own: the scores come as compact columns (:attr:`ScoresDocument.columns`, for compare,
agree and the leaderboard over a million rows), the run's metadata as :class:`RunMeta` and
each result row as a :class:`ResultRow` (for the HTML report). The typed values are made from
the checked dictionary on demand and assume its checks (a field's type is never tested twice).

Versions: a document written by pytest-phyjudge carries ``"format": FORMAT`` and
``"version": VERSION`` (after PhyGround's own fields, which keep their order). A document
without ``format`` (PhyGround's results files, reports of pytest-phyjudge before the stamp)
is version 0; :func:`upgrade` brings any older version to this one, in this one place.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pytest_phyjudge.engine.axes import GENERAL_METRICS

#: The ``format`` of a scores.json written by pytest-phyjudge.
FORMAT = "pytest-phyjudge-scores"
#: The version this pytest-phyjudge writes; it reads every version up to it.
VERSION = 1
#: The version of a document with no ``format``: PhyGround's shape, nothing of ours stamped.
UNSTAMPED = 0

#: The judge ``kind`` of ratings a person gave (the HTML report's rating mode exports them
#: with ``adapter`` ``human:<name>``): they are read like a judge's scores, never as them.
HUMAN_KIND = "human"

#: ``meta.canary``: each status of a canary check and the verdicts it goes with (the kinds of
#: ``canary.compare``, and ``canary.session.UNANSWERED``): a report that pairs them otherwise,
#: or says a check passed that judged nothing, was not written by a check.
CANARY_VERDICTS: Mapping[str, tuple[str | None, ...]] = {
    "passed": ("same behaviour", "same behaviour under a new identity"),
    "failed": ("drift", "the recorded identity but other behaviour", "could not answer"),
    "not checked": (None,),
}

#: A case as every reader pairs them: (suite, video); suite is None outside a suite.
CaseKey = tuple[str | None, str]


@dataclass(frozen=True)
class ScoreColumn:
    """One axis' scores in a document: ``rows`` index :attr:`ScoresDocument.cases`,
    ``values`` hold the scores (compact arrays, not one object per score)."""

    rows: array  # array("q")
    values: array  # array("d")


@dataclass(frozen=True)
class RunMeta:
    """The document's ``meta``: who made the scores of which generator, when and how."""

    video_model: str | None = None
    generator: str | None = None
    created: str | None = None
    tool: str | None = None
    version: str | None = None
    #: The judge of the scores (the first one, when a run had several).
    judge: Mapping[str, Any] | None = None
    #: Every judge behind the scores, as written (``score-dir`` writes only ``judge``).
    judges: tuple[Mapping[str, Any], ...] = ()
    scores_meaningless: bool | None = None
    settings: Mapping[str, Any] | None = None
    run: Mapping[str, Any] | None = None
    #: The axes on which the judge looked degenerate (``reporting.health``): one mapping
    #: each (``axis``, ``kind``, ``judgments``, ``count``, ``digit``, ``message``). Absent
    #: in older documents: an optional field that older readers ignore needs no version.
    judge_warnings: tuple[Mapping[str, Any], ...] = ()
    #: The judge's canary check (``file``, ``status``, ``verdict``, ``line``, ``axes``,
    #: ``judge_calls``, ``judge_seconds``, ...) and what a judge server said of itself
    #: (``model``, ``system_fingerprint``, ``identity``, ``answered_by``): optional, absent
    #: in older documents.
    canary: Mapping[str, Any] | None = None
    judge_server: Mapping[str, Any] | None = None

    @classmethod
    def from_checked(cls, meta: Mapping[str, Any] | None) -> RunMeta:
        meta = meta or {}
        return cls(
            video_model=meta.get("video_model"),
            generator=meta.get("generator"),
            created=meta.get("created"),
            tool=meta.get("tool"),
            version=meta.get("version"),
            judge=meta.get("judge"),
            judges=tuple(meta.get("judges") or ()),
            scores_meaningless=meta.get("scores_meaningless"),
            settings=meta.get("settings"),
            run=meta.get("run"),
            judge_warnings=tuple(meta.get("judge_warnings") or ()),
            canary=meta.get("canary"),
            judge_server=meta.get("judge_server"),
        )

    @property
    def every_judge(self) -> tuple[Mapping[str, Any], ...]:
        """The judges behind the scores: ``judges``, else ``judge`` alone, else none."""
        if self.judges:
            return self.judges
        return (self.judge,) if self.judge is not None else ()

    @property
    def label(self) -> str | None:
        """What the run is called: its generator as the file records it (PhyGround's
        ``video_model``, ``phyjudge score-dir``'s ``generator``), else the rater of human
        ratings (``human:<name>``, so that a table never shows them as a judge's run), None
        when it has none."""
        for value in (self.video_model, self.generator):
            if value is not None and value.strip():
                return value.strip()
        return self.rater

    @property
    def rater(self) -> str | None:
        """``human:<name>`` for ratings a person gave (judge kind :data:`HUMAN_KIND`)."""
        judge = self.judge or {}
        if judge.get("kind") != HUMAN_KIND:
            return None
        adapter = str(judge.get("adapter") or "").strip()
        return adapter if adapter.startswith("human:") else f"human:{adapter or 'rater'}"


@dataclass(frozen=True)
class LawScore:
    """One entry of a row's ``physical.laws``."""

    score: float | None = None
    status: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class AxisRecord:
    """One entry of a row's ``checks``: an axis' score and everything behind it (the
    threshold and verdict of a pytest run; replies, probabilities and the prompt)."""

    score: float | None = None
    min_score: int | None = None
    passed: bool | None = None
    #: The score missed its threshold in a run that only reported verdicts.
    would_fail: bool = False
    outcome: str | None = None
    nodeid: str | None = None
    raw: str | None = None
    error: str | None = None
    sheet: str | None = None
    probs: tuple[float, ...] | None = None
    expected: float | None = None
    #: The two texts the judge read: ``system`` and ``user``.
    prompt: Mapping[str, str] | None = None
    #: Repeated samples, one mapping each (``sample``, ``seed``, ``score``, ``expected``,
    #: ``error``, ``video``), and their gates' verdict.
    samples: tuple[Mapping[str, Any], ...] = ()
    summary: Mapping[str, Any] | None = None
    #: The comparison with the run's baseline (``status``, ``stored``, ``obtained``, ...).
    baseline: Mapping[str, Any] | None = None

    @classmethod
    def from_checked(cls, entry: Mapping[str, Any]) -> AxisRecord:
        probs = entry.get("probs")
        return cls(
            score=entry.get("score"),
            min_score=entry.get("min_score"),
            passed=entry.get("passed"),
            would_fail=bool(entry.get("would_fail")),
            outcome=entry.get("outcome"),
            nodeid=entry.get("nodeid"),
            raw=entry.get("raw"),
            error=entry.get("error"),
            sheet=entry.get("sheet"),
            probs=None if probs is None else tuple(float(p) for p in probs),
            expected=entry.get("expected"),
            prompt=entry.get("prompt"),
            samples=tuple(entry.get("samples") or ()),
            summary=entry.get("summary"),
            baseline=entry.get("baseline"),
        )


@dataclass(frozen=True)
class ResultRow:
    """One result row: a case (a clip and its caption) and its scores."""

    index: int
    video: str
    suite: str | None = None
    #: Where a pytest run judged it, by node id: the suite case or the test function.
    source: str | None = None
    prompt: str | None = None
    generator: str | None = None
    video_path: str | None = None
    #: ``phyjudge score-dir``'s name for the clip's path.
    file: str | None = None
    sheet: str | None = None
    physical_laws: tuple[str, ...] | None = None
    #: The general metrics the row holds (a null one too: it was asked and not scored).
    general: Mapping[str, float | None] | None = None
    laws: Mapping[str, LawScore] | None = None
    #: Per axis, what a pytest run or ``score-dir`` recorded besides the score.
    checks: Mapping[str, AxisRecord] | None = None
    passed: bool | None = None

    @classmethod
    def from_checked(cls, row: Mapping[str, Any], index: int) -> ResultRow:
        laws = (row.get("physical") or {}).get("laws") or {}
        checks = row.get("checks")
        listed = row.get("physical_laws")
        return cls(
            index=index,
            video=row["video"],
            suite=row.get("suite"),
            source=row.get("source"),
            prompt=row.get("prompt"),
            generator=row.get("generator"),
            video_path=row.get("video_path"),
            file=row.get("file"),
            sheet=row.get("sheet"),
            physical_laws=None if listed is None else tuple(listed),
            general={m: row[m] for m in GENERAL_METRICS if m in row},
            laws={
                law: LawScore(entry.get("score"), entry.get("status"), entry.get("error"))
                for law, entry in laws.items()
            },
            checks=None
            if checks is None
            else {axis: AxisRecord.from_checked(entry) for axis, entry in checks.items()},
            passed=row.get("passed"),
        )

    @property
    def clip(self) -> str | None:
        """The clip's path as recorded (``video_path``, or ``score-dir``'s ``file``)."""
        return self.video_path or self.file or None

    @property
    def case(self) -> CaseKey:
        return (self.suite or None, self.video)


@dataclass(frozen=True)
class ScoresDocument:
    """A ``scores.json`` document that the reader accepted (and upgraded): every field a
    reader uses has its type, and each case appears once. ``data`` is the document itself
    (upgraded to :data:`VERSION`), ``version`` the version it was written in; ``cases`` is
    each result row's (suite, video) and ``columns`` the scores by axis (the general
    metrics and ``physical.laws``), so that readers need not walk the rows again."""

    name: str
    data: Mapping[str, Any]
    cases: tuple[CaseKey, ...]
    columns: Mapping[str, ScoreColumn]
    version: int = VERSION

    @cached_property
    def meta(self) -> RunMeta:
        return RunMeta.from_checked(self.data.get("meta"))

    @property
    def results(self) -> list[dict[str, Any]]:
        """The result rows as written (the checked dictionaries)."""
        return self.data["results"]

    @cached_property
    def rows(self) -> tuple[ResultRow, ...]:
        """The result rows as typed values (made when first asked for)."""
        return tuple(ResultRow.from_checked(row, i) for i, row in enumerate(self.results))


def stamp(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with this version's ``format`` and ``version`` (after PhyGround's
    fields: ``meta``, ``num_videos``, ``general_dimensions``, ``results`` keep their places;
    a document stamped already is returned as it is)."""
    if document.get("format") == FORMAT and document.get("version") == VERSION:
        return document if isinstance(document, dict) else dict(document)
    stamped = {k: v for k, v in document.items() if k not in ("format", "version")}
    stamped["format"] = FORMAT
    stamped["version"] = VERSION
    return stamped


def _from_unstamped(document: Mapping[str, Any]) -> dict[str, Any]:
    """Version 0 (PhyGround's shape, or pytest-phyjudge's before the stamp) to 1: the
    fields are the same; version 1 only added ``format`` and ``version``."""
    return stamp(document)


#: Each step brings a document of the key's version to the next.
_UPGRADES = {UNSTAMPED: _from_unstamped}


def upgrade(document: Mapping[str, Any], version: int) -> Mapping[str, Any]:
    """A checked document of ``version`` as this version writes it (a new top-level
    mapping where anything changes; the result rows are shared, never copied)."""
    while version < VERSION:
        document = _UPGRADES[version](document)
        version += 1
    return document
