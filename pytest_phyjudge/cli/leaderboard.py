"""``phyjudge leaderboard``: PhyGround's leaderboard table from one or more results files."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_phyjudge.cli.compare import add_output_arguments, emit, read_runs, write_png
from pytest_phyjudge.cli.exits import EXIT_OK


def add_commands(commands: Any) -> None:
    board = commands.add_parser(
        "leaderboard",
        help="rank runs (scores.json or PhyGround results files) as PhyGround's leaderboard",
        description="Compute PhyGround's leaderboard columns for each run (SA, PTV, "
        "persistence, Solid-Body, Fluid, Optical, Overall) as PhyGround aggregates them, and "
        "rank the runs by Overall.",
    )
    board.add_argument("runs", nargs="+", metavar="RUN.json", help="one results file per run")
    board.add_argument("--plot", metavar="PNG", help="write a bar chart of the table")
    add_output_arguments(board, labels="in the files' order")
    board.set_defaults(run=run_leaderboard)


def run_leaderboard(args: argparse.Namespace) -> int:
    from pytest_phyjudge.regression.leaderboard import leaderboard
    from pytest_phyjudge.reporting import board_view as view
    from pytest_phyjudge.reporting.charts import write_leaderboard_chart

    runs = read_runs(args.runs, args.label)
    board = leaderboard(runs)
    emit(
        args.format,
        lambda: view.leaderboard_text(board),
        lambda: view.leaderboard_markdown(board),
        lambda: view.leaderboard_json(board),
        runs,
    )
    if args.plot:
        write_png(write_leaderboard_chart, board, args.plot)
    return EXIT_OK
