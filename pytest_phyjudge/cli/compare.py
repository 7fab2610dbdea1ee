"""``phyjudge compare``: two scores.json reports side by side, with paired statistics."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.cli.exits import EXIT_OK, EXIT_REGRESSION
from pytest_phyjudge.judges.settings import parse_confidence


def add_commands(commands: Any) -> None:
    comparison = commands.add_parser(
        "compare",
        help="compare two scores.json reports axis by axis (e.g. two generator versions)",
        description="Pair the cases two scores.json reports share; print per-axis means, the "
        "mean paired delta B - A with its bootstrap interval and a sign-flip permutation "
        "test, and flag significant regressions.",
    )
    comparison.add_argument("a", metavar="A.json", help="the reference report (the old version)")
    comparison.add_argument("b", metavar="B.json", help="the report to check (the new one)")
    comparison.add_argument(
        "--confidence",
        type=parse_confidence,
        default=0.95,
        help="level of the intervals; a regression needs p < 1 - confidence (default: 0.95)",
    )
    comparison.add_argument(
        "--fail-on-regression",
        action="store_true",
        help=f"exit with {EXIT_REGRESSION} when an axis regresses significantly",
    )
    comparison.add_argument("--plot", metavar="PNG", help="write a chart of the per-axis means")
    comparison.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from pytest_phyjudge.regression.compare import compare, read_report, table_lines, write_chart

    comparison = compare(read_report(args.a), read_report(args.b), confidence=args.confidence)
    print("\n".join(table_lines(comparison)), flush=True)
    if args.plot:
        try:
            chart = write_chart(comparison, args.plot)
        except OSError as exc:
            raise InputError(f"Cannot write the chart {args.plot!r} ({exc}).") from exc
        print(f"chart: {chart}", flush=True)
    if args.fail_on_regression and comparison.regressions:
        return EXIT_REGRESSION
    return EXIT_OK
