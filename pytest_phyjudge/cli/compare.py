"""``phyjudge compare`` (two reports axis by axis, corrected for testing many axes) and
``phyjudge agree`` (how far two runs over the same clips agree)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_phyjudge._escape import Markdown, markdown_text, terminal_text
from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._words import counted
from pytest_phyjudge.cli.exits import EXIT_OK, EXIT_REGRESSION
from pytest_phyjudge.engine.judgment import stand_in_notice
from pytest_phyjudge.judges.settings import parse_confidence
from pytest_phyjudge.regression.compare import compare, read_report
from pytest_phyjudge.regression.stats import CORRECTIONS

FORMATS = ("text", "markdown", "json")


def add_output_arguments(parser: argparse.ArgumentParser, *, labels: str) -> None:
    """``--format`` and ``--label``, shared by compare, agree and leaderboard."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default), markdown (a table ready for a PR comment or job summary) or json",
    )
    parser.add_argument(
        "--label",
        action="append",
        metavar="NAME",
        help=f"name the runs in tables and charts, once per file in order ({labels}); by "
        "default a run is named from its metadata (meta.video_model or meta.generator), "
        "else its file name",
    )


def stand_ins(runs: Sequence[Any]) -> list[dict[str, str]]:
    """The runs a stand-in judge (tiny, scripted) scored: each with its label, file, kind
    and the notice that its scores mean nothing. Every output format carries them, so a
    Markdown comment on a pull request cannot present a stand-in's scores as real ones."""
    found = []
    for run in runs:
        kind = (run.judge or {}).get("kind")
        notice = stand_in_notice(kind) if isinstance(kind, str) else None
        if notice is not None:
            found.append({"label": run.title, "path": run.name, "kind": kind, "notice": notice})
    return found


def read_runs(paths: Sequence[str], labels: Sequence[str] | None) -> list[Any]:
    """The reports at ``paths``, named by ``labels`` when given (one per file)."""
    if labels is not None and len(labels) != len(paths):
        raise InputError(
            f"--label was given {counted(len(labels), 'time')} for {counted(len(paths), 'file')}; "
            "give it once per "
            "file, in the files' order (or leave it out to name runs from their metadata)."
        )
    names: Sequence[str | None] = labels if labels is not None else [None] * len(paths)
    runs = [read_report(path).labelled(label) for path, label in zip(paths, names, strict=True)]
    # A stand-in's scores rank, pair and compare like a real judge's: say so, per file.
    for found in stand_ins(runs):
        print(
            f"phyjudge: warning: {terminal_text(found['path'])}: {found['notice']}", file=sys.stderr
        )
    return runs


def _stand_in_markdown(found: Sequence[dict[str, str]]) -> list[Markdown]:
    """One quoted warning line per stand-in run, every word from a file escaped."""
    return [
        Markdown(
            f"> **Warning: stand-in judge.** {markdown_text(one['label'])} "
            f"({markdown_text(one['path'])}): {markdown_text(one['notice'])}"
        )
        for one in found
    ]


def emit(
    fmt: str,
    lines: Callable[[], list[str]],
    markdown: Callable[[], list[str]],
    data: Callable[[], Any],
    runs: Sequence[Any] = (),
) -> None:
    """Print the result in the asked format. Text and Markdown come escaped for their medium
    from the views; each line is escaped for the terminal once more as it is printed (a no-op
    on escaped text), and JSON escapes control characters itself. Runs a stand-in judge
    scored (of ``runs``) are named in the Markdown, under its heading, and in the JSON
    (``stand_in_judges``); the text's warning is on stderr (``read_runs``)."""
    found = stand_ins(runs)
    if fmt == "json":
        print(json.dumps({**data(), "stand_in_judges": found}, indent=2), flush=True)
        return
    chosen = markdown() if fmt == "markdown" else lines()
    if fmt == "markdown" and found:
        chosen = [*chosen[:1], "", *_stand_in_markdown(found), *chosen[1:]]
    print("\n".join(terminal_text(line) for line in chosen), flush=True)


def write_png(writer: Callable[[Any, Path], Path], value: Any, path: str) -> None:
    """Draw a chart; an unwritable path is an InputError that names it. The notice goes to
    stderr: stdout holds only the asked format (JSON that parses, Markdown for a comment)."""
    try:
        chart = writer(value, Path(path))
    except OSError as exc:
        raise InputError(f"Cannot write the chart {path!r} ({exc}).") from exc
    print(f"chart: {terminal_text(str(chart))}", file=sys.stderr, flush=True)


def add_commands(commands: Any) -> None:
    comparison = commands.add_parser(
        "compare",
        help="compare two scores.json reports axis by axis (e.g. two generator versions)",
        description="Pair the cases two scores.json reports share; print per-axis means, the "
        "mean paired delta B - A with its bootstrap interval and a sign-flip permutation "
        "test whose p-values are adjusted for testing every axis at once, and flag "
        "significant regressions.",
    )
    comparison.add_argument("a", metavar="A.json", help="the reference report (the old version)")
    comparison.add_argument("b", metavar="B.json", help="the report to check (the new one)")
    comparison.add_argument(
        "--confidence",
        type=parse_confidence,
        default=0.95,
        help="level of the intervals; a regression needs adjusted p < 1 - confidence "
        "(default: 0.95)",
    )
    comparison.add_argument(
        "--correction",
        choices=CORRECTIONS,
        default="holm",
        help="adjust the axes' p-values for being tested together: holm (default; controls "
        "the chance of any false alarm), bh (Benjamini-Hochberg; the share of false alarms) "
        "or none",
    )
    comparison.add_argument(
        "--fail-on-regression",
        action="store_true",
        help=f"exit with {EXIT_REGRESSION} when an axis regresses significantly (adjusted p)",
    )
    comparison.add_argument(
        "--plot", metavar="PNG", help="write a forest plot of the per-axis deltas"
    )
    add_output_arguments(comparison, labels="A then B")
    comparison.set_defaults(run=run_compare)

    agree = commands.add_parser(
        "agree",
        help="how far two runs over the same clips agree, per axis",
        description="Pair the clips two scores.json reports share (two runs of one judge, "
        "two judges, or a judge and the ratings a person exported from the HTML report's "
        "rating mode) and print per axis: "
        "exact agreement, agreement within one point, quadratic-weighted Cohen's kappa and "
        "Spearman's rho; --plot draws each axis' agreement matrix.",
    )
    agree.add_argument("a", metavar="A.json")
    agree.add_argument("b", metavar="B.json")
    agree.add_argument(
        "--plot",
        metavar="PNG",
        help="write a chart of each axis' agreement matrix (A's score against B's)",
    )
    add_output_arguments(agree, labels="A then B")
    agree.set_defaults(run=run_agree)


def run_compare(args: argparse.Namespace) -> int:
    from pytest_phyjudge.reporting import compare_view as view
    from pytest_phyjudge.reporting.charts import write_forest

    a, b = read_runs([args.a, args.b], args.label)
    comparison = compare(a, b, confidence=args.confidence, correction=args.correction)
    emit(
        args.format,
        lambda: view.comparison_text(comparison),
        lambda: view.comparison_markdown(comparison),
        lambda: view.comparison_json(comparison),
        (a, b),
    )
    if args.plot:
        write_png(write_forest, comparison, args.plot)
    if args.fail_on_regression and comparison.regressions:
        return EXIT_REGRESSION
    return EXIT_OK


def run_agree(args: argparse.Namespace) -> int:
    from pytest_phyjudge.regression.agreement import agreement
    from pytest_phyjudge.reporting import board_view as view
    from pytest_phyjudge.reporting.charts import write_agreement_chart

    runs = read_runs([args.a, args.b], args.label)
    found = agreement(*runs)
    emit(
        args.format,
        lambda: view.agreement_text(found),
        lambda: view.agreement_markdown(found),
        lambda: view.agreement_json(found),
        runs,
    )
    if args.plot:
        write_png(write_agreement_chart, found, args.plot)
    return EXIT_OK
