"""The leaderboard and the agreement table as text, Markdown or JSON. Run and axis names come
from the results files: tables escape their cells, and the headings escape the run names
(:mod:`pytest_phyjudge._escape`); JSON escapes by itself."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from pytest_phyjudge._escape import markdown_text, terminal_text
from pytest_phyjudge.regression.leaderboard import HEADINGS
from pytest_phyjudge.reporting.render import markdown_table, text_table

if TYPE_CHECKING:
    from pytest_phyjudge.regression.agreement import Agreement, AxisAgreement
    from pytest_phyjudge.regression.leaderboard import Leaderboard

AGGREGATION = (
    "SA, PTV, Persist.: mean over videos; Solid-Body, Fluid, Optical: mean of the (video, law) "
    "scores of the domain's laws; Overall = 0.5 x mean(SA, PTV, Persist.) + 0.5 x the domain "
    "means weighted by their numbers of (video, law) scores"
)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _board(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    head = ["rank", "run", *(HEADINGS.get(c, c) for c in board.columns)]
    body = [
        [str(rank), row.label, *(_number(row.scores[c]) for c in board.columns)]
        for rank, row in enumerate(board.rows, start=1)
    ]
    return head, body


def leaderboard_text(board: Leaderboard) -> list[str]:
    head, body = _board(board)
    return [*text_table(head, body, left=2), "", AGGREGATION + "."]


def leaderboard_markdown(board: Leaderboard) -> list[str]:
    head, body = _board(board)
    table = markdown_table(head, body, left=2)
    return ["### PhyGround leaderboard", "", *table, "", AGGREGATION + "."]


def leaderboard_json(board: Leaderboard) -> dict[str, Any]:
    return {
        "columns": list(board.columns),
        "aggregation": AGGREGATION,
        "rows": [{"rank": rank, **asdict(row)} for rank, row in enumerate(board.rows, start=1)],
    }


# --------------------------------------------------------------------------- agreement

AGREEMENT_HEAD = ["axis", "n", "exact", "within 1", "kappa (quadratic)", "Spearman rho"]


def _agreement_cells(r: AxisAgreement) -> list[str]:
    return [
        r.axis,
        str(r.n),
        f"{r.exact:.2f}",
        f"{r.within_one:.2f}",
        _number(r.kappa),
        _number(r.rho),
    ]


def _agreement_body(g: Agreement) -> list[list[str]]:
    return [*(_agreement_cells(r) for r in g.rows), _agreement_cells(g.overall)]


def _agreement_intro(g: Agreement) -> str:
    return (
        f"{g.shared_cases} shared clips; exact and within-one agreement and kappa on whole "
        "scores, rho on the scores as they are; all: every axis' pairs pooled"
    )


def agreement_text(g: Agreement) -> list[str]:
    return [
        f"A: {terminal_text(g.a.title)}",
        f"B: {terminal_text(g.b.title)}",
        _agreement_intro(g),
        *text_table(AGREEMENT_HEAD, _agreement_body(g)),
    ]


def agreement_markdown(g: Agreement) -> list[str]:
    return [
        f"### phyjudge agree: {markdown_text(g.a.title)} (A) vs {markdown_text(g.b.title)} (B)",
        "",
        _agreement_intro(g) + ".",
        "",
        *markdown_table(AGREEMENT_HEAD, _agreement_body(g)),
    ]


def agreement_json(g: Agreement) -> dict[str, Any]:
    return {
        "a": {"label": g.a.title, "path": g.a.name},
        "b": {"label": g.b.title, "path": g.b.name},
        "shared_cases": g.shared_cases,
        "axes": [asdict(r) for r in g.rows],
        "overall": asdict(g.overall),
    }
