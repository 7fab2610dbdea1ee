"""A comparison as text, Markdown (a PR comment) or JSON, from one set of rows. Run and axis
names come from the reports compared: each is escaped for its medium (terminal text, or
Markdown through :mod:`pytest_phyjudge._escape`); JSON escapes by itself."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from pytest_phyjudge._escape import Markdown, markdown_text, terminal_text
from pytest_phyjudge._words import counted
from pytest_phyjudge.regression.stats import CORRECTION_TITLES
from pytest_phyjudge.reporting.render import markdown_table, text_table

if TYPE_CHECKING:
    from pytest_phyjudge.regression.compare import AxisComparison, Comparison

FLAG = "REGRESSION"
IMPROVEMENT_FLAG = "IMPROVEMENT"
#: The heading of the flag column (significant regressions and improvements).
FLAG_HEADING = "significant"


def _pct(confidence: float) -> str:
    return f"{confidence * 100:g}%"


def format_p(value: float) -> str:
    """A p-value as every table and chart shows it: ``<0.001`` rather than ``0.000``."""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def is_improvement(c: Comparison, r: AxisComparison) -> bool:
    """A significant rise of an axis, by the same adjusted p as a regression."""
    return r.delta > 0 and r.p_adjusted < c.alpha


def flag(c: Comparison, r: AxisComparison) -> str:
    """What the flag column says of an axis' row: a significant regression or improvement."""
    if r.regression:
        return FLAG
    return IMPROVEMENT_FLAG if is_improvement(c, r) else ""


def _columns(c: Comparison) -> list[str]:
    adjusted = "p adj" if c.correction != "none" else "p adj (none)"
    return [
        *("axis", "n", "A", "B", "delta", f"{_pct(c.confidence)} CI", "p", adjusted),
        FLAG_HEADING,
    ]


def _cells(c: Comparison, r: AxisComparison, overall: bool) -> list[str]:
    return [
        r.axis,
        str(r.n),
        f"{r.mean_a:.2f}",
        f"{r.mean_b:.2f}",
        f"{r.delta:+.2f}",
        Markdown(f"[{r.interval[0]:+.2f}, {r.interval[1]:+.2f}]"),  # numbers we formatted
        format_p(r.p_value),
        "" if overall else format_p(r.p_adjusted),
        "" if overall else flag(c, r),
    ]


def method_line(c: Comparison) -> str:
    """How the numbers were made, in one sentence."""
    family = counted(len(c.rows), "axis")
    adjusted = (
        "not adjusted for the axes tested together"
        if c.correction == "none"
        else f"adjusted over the {family} by {CORRECTION_TITLES[c.correction]}"
    )
    return (
        f"delta = B - A, paired over shared cases, with {_pct(c.confidence)} bootstrap "
        f"intervals; p: two-sided sign-flip permutation test, {adjusted}"
    )


def verdict_line(c: Comparison) -> str:
    """The gate's verdict: which axes regress, judged on the adjusted p-values."""
    which = "p" if c.correction == "none" else f"{CORRECTION_TITLES[c.correction]}-adjusted p"
    regressions = c.regressions
    if not regressions:
        return f"no significant regression ({which} < {c.alpha:.2g})"
    names = ", ".join(r.axis for r in regressions)
    return f"significant regressions ({which} < {c.alpha:.2g}): {len(regressions)} ({names})"


def _verdict_markdown(c: Comparison) -> str:
    # The verdict names axes: the same sentence with each name escaped for Markdown.
    if not c.regressions:
        return verdict_line(c)
    which = "p" if c.correction == "none" else f"{CORRECTION_TITLES[c.correction]}-adjusted p"
    names = ", ".join(markdown_text(r.axis) for r in c.regressions)
    return f"**significant regressions ({which} < {c.alpha:.2g}): {len(c.regressions)} ({names})**"


def _body(c: Comparison) -> list[list[str]]:
    return [*(_cells(c, r, False) for r in c.rows), _cells(c, c.overall, True)]


def _shared_line(c: Comparison) -> str:
    return f"shared cases: {c.shared_cases} (only in A: {c.only_a}, only in B: {c.only_b})"


def _unscored_line(c: Comparison, name: Any = str) -> str | None:
    """How many null scores ("not scored") each side holds per axis, left out of the
    statistics; ``name`` escapes an axis for the medium. None when there are none."""
    sides = [
        f"{side}: " + ", ".join(f"{name(axis)} {n}" for axis, n in counts.items())
        for side, counts in c.unscored.items()
    ]
    return "not scored (null, left out): " + "; ".join(sides) if sides else None


def comparison_text(c: Comparison) -> list[str]:
    """The terminal table: who A and B are, how, the rows, the verdict."""
    lines = [
        f"A: {c.a.title}" + ("" if c.a.title == c.a.name else f"  ({c.a.name})"),
        f"B: {c.b.title}" + ("" if c.b.title == c.b.name else f"  ({c.b.name})"),
        f"{_shared_line(c)}; {method_line(c)}",
        *filter(None, [_unscored_line(c)]),
        *c.notes,
    ]
    return [
        *map(terminal_text, lines),
        *text_table(_columns(c), _body(c)),
        terminal_text(verdict_line(c)),
    ]


def comparison_markdown(c: Comparison) -> list[str]:
    """A PR-comment-ready block: a heading naming both runs, the table, the verdict."""
    a, b = markdown_text(c.a.title), markdown_text(c.b.title)
    return [
        f"### phyjudge compare: {a} (A) vs {b} (B)",
        "",
        f"{_shared_line(c)}. {method_line(c)[0].upper()}{method_line(c)[1:]}.",
        *filter(None, [_unscored_line(c, markdown_text)]),
        *(f"> {markdown_text(note)}" for note in c.notes),
        "",
        *markdown_table(_columns(c), _body(c)),
        "",
        _verdict_markdown(c),
    ]


def comparison_json(c: Comparison) -> dict[str, Any]:
    """Everything the table shows, as plain values."""
    return {
        "a": {"label": c.a.title, "path": c.a.name},
        "b": {"label": c.b.title, "path": c.b.name},
        "confidence": c.confidence,
        "correction": c.correction,
        "shared_cases": c.shared_cases,
        "only_a": c.only_a,
        "only_b": c.only_b,
        "unscored": c.unscored,
        "notes": list(c.notes),
        "axes": [asdict(r) for r in c.rows],
        "overall": asdict(c.overall),
        "regressions": [r.axis for r in c.regressions],
    }
