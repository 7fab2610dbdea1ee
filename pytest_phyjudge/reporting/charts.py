"""PNG charts of a comparison (a forest plot of per-axis deltas) and of a leaderboard, drawn
with matplotlib's Agg canvas (no display needed); matplotlib is imported when one is drawn.
Run and axis names come from the reports: every label is made by
:func:`~pytest_phyjudge._escape.plot_label` and drawn with mathtext and TeX off, so ``$`` in
a name is a dollar sign, never a formula that could fail the chart.

The chart's path is named by the user (``--plot``): a new file is created, an earlier chart
(a PNG) is replaced through a temporary file renamed over it, and anything else there (a
user's file of another kind, a symlink, a folder, a FIFO or device) is refused, never
overwritten nor written through."""

from __future__ import annotations

import io
import os
import stat
import textwrap
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_phyjudge._escape import PLOT_RC, plot_label
from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._files import not_a_file
from pytest_phyjudge._outputs import replace_file
from pytest_phyjudge._words import counted
from pytest_phyjudge.regression.leaderboard import HEADINGS
from pytest_phyjudge.regression.stats import CORRECTION_TITLES
from pytest_phyjudge.reporting.compare_view import format_p, is_improvement

if TYPE_CHECKING:
    from pytest_phyjudge.regression.agreement import Agreement
    from pytest_phyjudge.regression.compare import Comparison
    from pytest_phyjudge.regression.leaderboard import Leaderboard

#: The charts' size: 1000 x 600 pixels.
CHART_SIZE_INCHES = (10.0, 6.0)
CHART_DPI = 100
#: Run names longer than this are shortened in titles and legends.
LABEL_CHARS = 40
REGRESSION_COLOR = "#c0392b"
IMPROVEMENT_COLOR = "#1e8449"
DELTA_COLOR = "#34495e"
OVERALL_COLOR = "#7f8c8d"


_Chart = TypeVar("_Chart", bound=Callable[..., Path])


def _short(label: str) -> str:
    return plot_label(label, LABEL_CHARS)


def _plain_text(draw: _Chart) -> _Chart:
    """Draw (and save) the chart under :data:`PLOT_RC`: every Text made then, tick labels
    made at save time included, takes its labels as plain text."""

    @wraps(draw)
    def drawn(*args: Any, **kwargs: Any) -> Path:
        import matplotlib

        with matplotlib.rc_context(PLOT_RC):
            return draw(*args, **kwargs)

    return drawn  # type: ignore[return-value]


def _figure() -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=CHART_SIZE_INCHES, dpi=CHART_DPI)
    FigureCanvasAgg(fig)
    return fig


#: How every PNG file starts: a file that does not is no chart of ours, and stays.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _replaceable(path: Path) -> None:
    """Refuse a chart path holding what is not an earlier chart: an InputError naming it."""
    try:
        is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return
    kind = not_a_file(path)
    if is_link:
        held = "a symlink (a chart is never written through one)"
    elif kind is not None:
        held = kind
    else:
        with open(path, "rb") as file:
            if file.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE:
                return
        held = "a file that is not a PNG image (not an earlier chart)"
    raise InputError(
        f"Cannot write the chart {str(path)!r}: it holds {held}, and a chart replaces only "
        "an earlier chart. Name a new .png file for --plot, or remove that one first."
    )


def _save(fig: Any, path: str | Path) -> Path:
    """Save as PNG through a temporary file renamed over ``path``, which must be new or an
    earlier chart: a symlink, a folder, a special file or a file of another kind there is
    refused (InputError) before anything is written."""
    path = Path(path)
    _replaceable(path)
    if path.suffix.lower() != ".png":
        raise InputError(
            f"Cannot write the chart {str(path)!r}: charts are PNG images, and that name does "
            "not end in .png (another program would misread the file). Name a .png file."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    png = io.BytesIO()
    fig.savefig(png, format="png")
    replace_file(path, png.getvalue())
    return path


@_plain_text
def write_forest(comparison: Comparison, path: str | Path) -> Path:
    """A forest plot: per axis (top to bottom, then all axes pooled), the mean paired delta
    B - A with its bootstrap interval, n beside the axis name and the adjusted p-value on the
    right (written as the table writes it); significantly regressing axes in red, improving
    ones in green, a vertical line at no change."""
    c = comparison
    rows = [*c.rows, c.overall]

    def color_of(row: Any) -> str | None:
        if row is c.overall:
            return None
        if row.regression:
            return REGRESSION_COLOR
        return IMPROVEMENT_COLOR if is_improvement(c, row) else None

    fig = _figure()
    ax = fig.add_subplot()
    ys = list(range(len(rows), 0, -1))
    for y, row in zip(ys, rows, strict=True):
        overall = row is c.overall
        color = color_of(row) or (OVERALL_COLOR if overall else DELTA_COLOR)
        low, high = row.interval
        ax.errorbar(
            [row.delta],
            [y],
            xerr=[[max(0.0, row.delta - low)], [max(0.0, high - row.delta)]],
            fmt="D" if overall else "o",
            color=color,
            capsize=3,
            markersize=5,
        )
    ax.axvline(0.0, color="#999999", linewidth=1, linestyle="--")
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{_short(r.axis)}  (n={r.n})" for r in rows], fontsize=8)
    for tick, row in zip(ax.get_yticklabels(), rows, strict=True):
        if (marked := color_of(row)) is not None:
            tick.set_color(marked)
            tick.set_fontweight("bold")
    ax.set_ylim(0.3, len(rows) + 0.7)
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(ys)
    adjusted = [f"p adj {format_p(r.p_adjusted)}" for r in c.rows]
    adjusted.append(f"p {format_p(c.overall.p_value)}")
    right.set_yticklabels(adjusted, fontsize=7)
    ax.set_xlabel(f"mean change in score, B - A (1-5 scale), {c.confidence * 100:g}% interval")
    correction = CORRECTION_TITLES[c.correction]
    title = f"{_short(c.b.title)} (B) vs {_short(c.a.title)} (A): per-axis change"
    which = f"{correction}-adjusted" if c.correction != "none" else "unadjusted"
    detail = (
        f"{c.shared_cases} shared cases; red: significant regression, green: significant "
        f"improvement ({which} p < {c.alpha:.2g})"
    )
    ax.set_title("\n".join([*textwrap.wrap(title, 90), detail]), fontsize=9)
    fig.subplots_adjust(left=0.2, right=0.88, top=0.9, bottom=0.1)
    return _save(fig, path)


@_plain_text
def write_leaderboard_chart(board: Leaderboard, path: str | Path) -> Path:
    """Grouped bars: per column (SA ... Overall), one bar per run, runs in rank order."""
    fig = _figure()
    ax = fig.add_subplot()
    columns = board.columns
    width = 0.8 / max(1, len(board.rows))
    for index, row in enumerate(board.rows):
        xs = [i - 0.4 + width * (index + 0.5) for i in range(len(columns))]
        values = [row.scores.get(column) for column in columns]
        ax.bar(
            [x for x, v in zip(xs, values, strict=True) if v is not None],
            [v for v in values if v is not None],
            width,
            label=f"{index + 1}. {_short(row.label)}",
        )
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([_short(HEADINGS.get(c, c)) for c in columns], fontsize=8)
    ax.set_ylim(1, 5)
    ax.set_ylabel("mean score (1-5)")
    title = f"PhyGround leaderboard: {counted(len(board.rows), 'run')}, ranked by Overall"
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=7, ncols=2)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.92, bottom=0.08)
    return _save(fig, path)


#: Agreement matrices drawn per row of the chart.
MATRICES_PER_ROW = 4


@_plain_text
def write_agreement_chart(agreement: Agreement, path: str | Path) -> Path:
    """Per axis (then all axes pooled), the agreement matrix of the two runs: how many clips
    A scored i and B scored j (1-5), darker for more, each count written in its cell; the
    diagonal (exact agreement) outlined. Where the counts sit off the diagonal says which way
    the judges disagree (B above A, or below), which one kappa per axis cannot."""
    g = agreement
    panels = [*g.rows, g.overall]
    columns = min(MATRICES_PER_ROW, len(panels))
    lines = -(-len(panels) // columns)
    fig = _figure()
    fig.set_size_inches(2.6 * columns + 0.6, 2.7 * lines + 0.9)
    scores = list(range(1, 6))
    for index, row in enumerate(panels):
        ax = fig.add_subplot(lines, columns, index + 1)
        counts = row.matrix or tuple((0,) * 5 for _ in scores)
        most = max(1, max(max(line) for line in counts))
        ax.imshow(counts, cmap="Blues", vmin=0, vmax=most, origin="lower")
        for i, line in enumerate(counts):
            for j, count in enumerate(line):
                if count:
                    dark = count > most * 0.6
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")  # fmt: skip
        for k in range(5):  # the diagonal: exact agreement
            ax.add_patch(_cell(k))
        ax.set_xticks(range(5), [str(v) for v in scores], fontsize=7)
        ax.set_yticks(range(5), [str(v) for v in scores], fontsize=7)
        kappa = "-" if row.kappa is None else f"{row.kappa:.2f}"
        ax.set_title(f"{_short(row.axis)}: n={row.n}, kappa {kappa}", fontsize=8)
        ax.set_xlabel("B's score", fontsize=7)
        ax.set_ylabel("A's score", fontsize=7)
    title = f"{_short(g.a.title)} (A) vs {_short(g.b.title)} (B): agreement per axis"
    fig.suptitle(f"{title}, {g.shared_cases} shared cases", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _cell(k: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((k - 0.5, k - 0.5), 1, 1, fill=False, edgecolor="#c0392b", linewidth=0.8)
