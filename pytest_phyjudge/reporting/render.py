"""Tables as aligned text or GitHub Markdown: one renderer, so every command's tables agree."""

from __future__ import annotations

from collections.abc import Sequence

Row = Sequence[str]


def text_table(head: Row, body: Sequence[Row], *, left: int = 1) -> list[str]:
    """Aligned columns two spaces apart: the first ``left`` columns left-aligned (names),
    the rest right-aligned (numbers); trailing blanks are trimmed."""
    rows = [head, *body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]

    def line(row: Row) -> str:
        cells = [
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(row) for row in rows]


def _cell(text: str) -> str:
    # A pipe would end the cell and a newline the row: GitHub renders both escaped forms.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def markdown_table(head: Row, body: Sequence[Row], *, left: int = 1) -> list[str]:
    """A GitHub-flavoured Markdown table (for job summaries and PR comments), aligned like
    :func:`text_table`: the first ``left`` columns to the left, the rest to the right."""
    rule = [":---" if i < left else "---:" for i in range(len(head))]

    def line(cells: Row) -> str:
        return "| " + " | ".join(cells) + " |"

    return [
        line([_cell(c) for c in head]),
        line(rule),
        *(line([_cell(c) for c in row]) for row in body),
    ]
