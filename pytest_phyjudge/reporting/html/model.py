"""What the HTML report shows, built from the typed scores.json model
(:class:`~pytest_phyjudge.scores.ScoresDocument`), so that ``--phyjudge-html`` and
``phyjudge report --html`` show the same page for the same run: both pages are made from the
document as its readers read it, checked and typed, never from a dictionary of their own.

Three shapes are shown: the pytest plugin's report (per-axis ``checks`` with thresholds),
``phyjudge score-dir``'s (per-axis ``checks`` without thresholds) and a bare PhyGround
results file (scores only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any
from urllib.parse import quote

from pytest_phyjudge.engine.axes import ALL_AXES, DOMAIN_TITLES, domain_of
from pytest_phyjudge.engine.judgment import portable_name
from pytest_phyjudge.reporting.health import judge_check_lines
from pytest_phyjudge.scores import AxisRecord, ResultRow, RunMeta, ScoresDocument, check_scores

#: Judge kinds whose scores say nothing about the clip.
MEANINGLESS_KINDS = ("tiny", "scripted")
#: pytest's outcomes of an item marked xfail, as a badge names them.
_EXPECTED = {"xfailed": "xfail", "xpassed": "xpass"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class AxisView:
    """One axis of one case: the score against its threshold and everything behind it."""

    axis: str
    domain: str
    score: float | None
    min_score: int | None
    #: pass / fail (against a threshold), scored (no threshold), error (no score).
    status: str
    outcome: str | None = None
    #: The score missed its threshold in a run that only reported verdicts.
    would_fail: bool = False
    probs: tuple[float, ...] | None = None
    expected: float | None = None
    samples: tuple[Mapping[str, Any], ...] = ()
    baseline: Mapping[str, Any] | None = None
    raw: str | None = None
    error: str | None = None
    prompt: Mapping[str, str] | None = None

    @property
    def badge(self) -> str:
        """The verdict as the badge says it: an expected failure or an unexpected pass as
        such (pytest's xfail and xpass), a reported-only miss as "would fail"."""
        if self.would_fail:
            return "would fail"
        return _EXPECTED.get(self.outcome or "", self.status)

    @property
    def baseline_delta(self) -> float | None:
        base = self.baseline or {}
        if base.get("stored") is None or base.get("obtained") is None:
            return None
        return float(base["obtained"]) - float(base["stored"])


@dataclass(frozen=True)
class CaseView:
    """One row of the report: a clip, its caption and its axes."""

    anchor: str
    name: str
    suite: str | None
    caption: str
    status: str
    axes: tuple[AxisView, ...]
    video: str | None
    sheet: str | None = None
    #: Where it was judged, in words: ``suite case <node id>`` or ``test <node id>``.
    source: str | None = None
    generator: str | None = None

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.domain for a in self.axes))

    @property
    def badge(self) -> str:
        """The card's verdict: its worst axis', with xfail, xpass and "would fail" named."""
        for axis in self.axes:
            if axis.status == self.status:
                return axis.badge
        return self.status


@dataclass(frozen=True)
class SummaryRow:
    """Items, passes, failures and the mean score of one axis or one domain."""

    name: str
    title: str
    items: int
    passed: int
    failed: int
    mean: float | None


@dataclass(frozen=True)
class ReportView:
    title: str
    created: str | None
    judges: tuple[JudgeLabel, ...]
    #: Set for a tiny or scripted judge: the page says so at the top.
    notice: str | None
    axes: tuple[SummaryRow, ...]
    domains: tuple[SummaryRow, ...]
    cases: tuple[CaseView, ...]
    #: The degenerate-judge warnings of ``meta.judge_warnings``: one line each, at the top.
    judge_warnings: tuple[str, ...] = ()
    #: The judge's checks (``meta.canary``, ``meta.judge_server``): each line with whether
    #: it is a problem (a failed canary check).
    judge_checks: tuple[tuple[str, bool], ...] = ()

    @property
    def thresholds(self) -> bool:
        """Some score was judged against a threshold (a pytest run); else the page shows
        scores only (``phyjudge score-dir``, a PhyGround results file)."""
        return any(a.min_score is not None for case in self.cases for a in case.axes)


@dataclass(frozen=True)
class JudgeLabel:
    """A judge as the page names it: local folders by their last component (the page is read
    on other machines), the full paths in a tooltip (``title``, None when nothing is cut)."""

    text: str
    title: str | None


def _describe(judge: Mapping[str, Any]) -> JudgeLabel:
    def named(adapter: Any, base: Any) -> str:
        rev = f"@{judge['revision']}" if judge.get("revision") else ""
        on = f" on {base}" if base else ""
        return f"{adapter}{rev}{on} ({judge.get('kind', '?')})"

    adapter, base = judge.get("adapter") or "?", judge.get("base")
    full = named(adapter, base)
    text = named(portable_name(str(adapter)), portable_name(str(base)) if base else None)
    return JudgeLabel(text, None if text == full else full)


def _notice(meta: RunMeta, judges: Sequence[Mapping[str, Any]]) -> str | None:
    kinds = sorted({str(j.get("kind")) for j in judges if j.get("kind") in MEANINGLESS_KINDS})
    if not kinds and not meta.scores_meaningless:
        return None
    who = " and ".join(kinds) or "test"
    return (
        f"These scores come from a {who} judge, not PhyJudge-9B: they are meaningless and "
        "say nothing about the clips."
    )


def _status(entry: AxisRecord) -> str:
    if entry.score is None:
        return "error"
    if entry.passed is None:
        return "scored"
    dropped = (entry.baseline or {}).get("status") == "drop" and entry.outcome == "failed"
    return "pass" if entry.passed and not dropped else "fail"


def _axis_from_check(axis: str, entry: AxisRecord) -> AxisView:
    return AxisView(
        axis=axis,
        domain=domain_of(axis),
        score=entry.score,
        min_score=entry.min_score,
        status=_status(entry),
        outcome=entry.outcome or None,
        would_fail=entry.would_fail,
        probs=entry.probs,
        expected=entry.expected,
        samples=entry.samples,
        baseline=entry.baseline,
        raw=entry.raw,
        error=entry.error,
        prompt=entry.prompt,
    )


def _axes_from_scores(row: ResultRow) -> list[AxisView]:
    """A bare PhyGround row: the general metrics and the laws' scores, nothing else."""
    found = [(m, score, None) for m, score in (row.general or {}).items()]
    found += [(law, v.score, v.error) for law, v in (row.laws or {}).items()]
    return [
        AxisView(
            axis=axis,
            domain=domain_of(axis),
            score=score,
            min_score=None,
            status="scored" if score is not None else "error",
            error=error,
        )
        for axis, score, error in found
        if axis in ALL_AXES
    ]


def _case_status(axes: Sequence[AxisView]) -> str:
    statuses = {a.status for a in axes}
    for status in ("fail", "error", "pass"):
        if status in statuses:
            return status
    return "scored"


def _video_path(row: ResultRow, base: Path) -> str | None:
    """The clip's path: as recorded when it exists from here, else relative to the report."""
    recorded = row.clip
    if not recorded:
        return None
    path = Path(recorded)
    if not path.is_absolute() and not path.exists() and (base / path).exists():
        path = base / path
    return str(path)


def case_view(row: ResultRow, base: Path) -> CaseView:
    """One result row of the report as a case; ``base`` is the report's folder."""
    if row.checks:
        axes = [_axis_from_check(axis, entry) for axis, entry in row.checks.items()]
        axes.sort(key=lambda a: ALL_AXES.index(a.axis) if a.axis in ALL_AXES else len(ALL_AXES))
    else:
        axes = _axes_from_scores(row)
    index, name = row.index, row.video
    return CaseView(
        anchor=f"case-{index + 1}-{_UNSAFE.sub('-', name).strip('-')[:40]}",
        name=name,
        suite=row.suite,
        caption=row.prompt or "",
        status=_case_status(axes),
        axes=tuple(axes),
        video=_video_path(row, base),
        sheet=row.sheet,
        source=_source(row),
        generator=row.generator,
    )


def _source(row: ResultRow) -> str | None:
    """Where a pytest run judged the row: a suite's case or a test function (by node id)."""
    if row.source:
        return f"{'suite case' if row.suite else 'test'} {row.source}"
    return None if row.suite is None else f"suite {row.suite}"


def _summary(name: str, title: str, axes: Sequence[AxisView]) -> SummaryRow:
    scores = [a.score for a in axes if a.score is not None]
    return SummaryRow(
        name=name,
        title=title,
        items=len(axes),
        passed=sum(a.status == "pass" for a in axes),
        failed=sum(a.status in ("fail", "error") for a in axes),
        mean=float(mean(scores)) if scores else None,
    )


def summaries(cases: Sequence[CaseView]) -> tuple[list[SummaryRow], list[SummaryRow]]:
    """Per-axis rows in the rubric's order, then per-domain rows (general, solid, ...)."""
    every = [a for case in cases for a in case.axes]
    by_axis = [
        _summary(axis, domain_of(axis), [a for a in every if a.axis == axis])
        for axis in ALL_AXES
        if any(a.axis == axis for a in every)
    ]
    by_domain = [
        _summary(domain, title, [a for a in every if a.domain == domain])
        for domain, title in DOMAIN_TITLES.items()
        if any(a.domain == domain for a in every)
    ]
    return by_axis, by_domain


def checked(document: ScoresDocument | Mapping[str, Any]) -> ScoresDocument:
    """``document`` as the model reads it: a document a reader returned, or a parsed one
    checked now (an InputError naming the wrong field)."""
    if isinstance(document, ScoresDocument):
        return document
    return check_scores(document, "the report")


def report_view(
    document: ScoresDocument | Mapping[str, Any], base: Path, title: str | None = None
) -> ReportView:
    """The page's content from a scores.json document (checked first when it comes as a
    plain mapping); relative paths in it are read against ``base``, the folder the document
    was written to."""
    document = checked(document)
    meta = document.meta
    judges = meta.every_judge
    cases = [case_view(row, base) for row in document.rows]
    by_axis, by_domain = summaries(cases)
    generator = meta.generator or meta.video_model
    return ReportView(
        title=title or ("PhyJudge report" + (f": {generator}" if generator else "")),
        created=meta.created,
        judges=tuple(_describe(j) for j in judges),
        notice=_notice(meta, judges),
        axes=tuple(by_axis),
        domains=tuple(by_domain),
        cases=tuple(cases),
        judge_warnings=tuple(str(w["message"]) for w in meta.judge_warnings),
        judge_checks=tuple(judge_check_lines(meta.canary, meta.judge_server)),
    )


# --------------------------------------------------------------------------- links

#: A link to a file of the report: percent-encoded path parts, none of them ``.`` or ``..``.
_FILE_URL = re.compile(r"[A-Za-z0-9_~%-][A-Za-z0-9._~%-]*(/[A-Za-z0-9_~%-][A-Za-z0-9._~%-]*)*")
_ANCHOR_URL = re.compile(r"#[A-Za-z0-9_-]+")
_DATA_URL = re.compile(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/]*={0,2}")


def file_url(name: str) -> str:
    """The relative URL of the report folder's file ``name`` (a ``/``-separated name the
    report wrote), each part percent-encoded, checked by :func:`local_url`."""
    return local_url("/".join(quote(part, safe="") for part in name.split("/")))


def local_url(url: str) -> str:
    """``url`` unchanged when it is one the report may carry: a relative link to a file
    inside the report folder, an anchor of the page, or a ``data:`` PNG/JPEG made by the
    code. Anything else (a scheme such as ``javascript:``, ``//host``, ``/abs``, ``..``)
    raises ValueError: every ``href`` and ``src`` of the page passes through here."""
    if isinstance(url, str) and (
        _FILE_URL.fullmatch(url) or _ANCHOR_URL.fullmatch(url) or _DATA_URL.fullmatch(url)
    ):
        return url
    raise ValueError(
        f"The HTML report refuses the link {url!r}: only relative links to its own files, "
        "anchors and data: images it made may appear in the page."
    )
