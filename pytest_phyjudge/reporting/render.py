"""Tables as aligned text or GitHub Markdown: one renderer, so every command's tables agree."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_phyjudge._escape import Markdown, markdown_text, terminal_text

Row = Sequence[str]


def text_table(head: Row, body: Sequence[Row], *, left: int = 1) -> list[str]:
    """Aligned columns two spaces apart: the first ``left`` columns left-aligned (names),
    the rest right-aligned (numbers); trailing blanks are trimmed. Cells are escaped for the
    terminal before they are measured, so a control character neither acts nor misaligns."""
    rows = [[terminal_text(cell) for cell in row] for row in (head, *body)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]

    def line(row: Row) -> str:
        cells = [
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(row) for row in rows]


def _cell(text: str) -> str:
    # A name in a cell could end the cell (|), the row (a newline), or carry an image, a
    # link or a mention: every plain string is escaped; Markdown we made is kept.
    return text if isinstance(text, Markdown) else markdown_text(text)


def markdown_table(head: Row, body: Sequence[Row], *, left: int = 1) -> list[str]:
    """A GitHub-flavoured Markdown table (for job summaries and PR comments), aligned like
    :func:`text_table`: the first ``left`` columns to the left, the rest to the right. Every
    cell that is a plain ``str`` is escaped (:func:`~pytest_phyjudge._escape.markdown_text`);
    a :class:`~pytest_phyjudge._escape.Markdown` cell is taken as the Markdown it is."""
    rule = [":---" if i < left else "---:" for i in range(len(head))]

    def line(cells: Row) -> str:
        return "| " + " | ".join(cells) + " |"

    return [
        line([_cell(c) for c in head]),
        line(rule),
        *(line([_cell(c) for c in row]) for row in body),
    ]
