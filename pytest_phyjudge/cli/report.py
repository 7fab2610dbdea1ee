"""``phyjudge report``: the HTML report of any scores.json (a pytest run's, a ``score-dir``
one, or a PhyGround results file), written after the fact."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_phyjudge._escape import terminal_text
from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._words import counted
from pytest_phyjudge.cli.exits import EXIT_OK
from pytest_phyjudge.scores import ScoresDocument, read_scores


def add_commands(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="write the HTML report of a scores.json (clips, verdicts, replies)",
        description="Write an HTML report folder (index.html, its assets, small re-encoded "
        "copies of the clips) from a scores.json written by pytest --phyjudge-report, by "
        "phyjudge score-dir, or by PhyGround. It opens from disk and fetches nothing.",
    )
    report.add_argument("scores", metavar="SCORES.json", help="the report to show")
    report.add_argument("--html", required=True, metavar="DIR", help="folder to write into")
    report.add_argument("--title", help="the page's title (default: from the report)")
    report.add_argument(
        "--clips",
        action="append",
        default=[],
        metavar="DIR",
        help="also show clips inside DIR (repeatable); by default only clips inside the "
        "current folder and the folder of SCORES.json are shown, so that a report from "
        "elsewhere cannot publish another video of this machine",
    )
    report.set_defaults(run=run_report)


def read_document(path: Path) -> ScoresDocument:
    """The scores.json document at ``path``, checked field by field before the HTML model
    reads it (``scores.read_scores``); an InputError naming the file, the JSON path of the
    wrong field and the fix."""
    return read_scores(path)


def run_report(args: argparse.Namespace) -> int:
    from pytest_phyjudge.reporting.html import write_html_report

    path = Path(args.scores)
    document = read_document(path)
    try:
        # A scores.json (and its sheets) may sit in the folder it is shown in: both are left
        # alone, like the pytest run's own report in its --phyjudge-html folder.
        index = write_html_report(
            document,
            args.html,
            base=path.parent,
            title=args.title,
            leave=[path, path.parent / f"{path.stem}-sheets"],
            clip_roots=[Path.cwd(), path.parent, *map(Path, args.clips)],
        )
    except OSError as exc:
        raise InputError(f"Cannot write the HTML report into {args.html!r} ({exc}).") from exc
    # A notice, not a result: on stderr like every command's "wrote" line.
    print(
        f"wrote {terminal_text(str(index))} ({counted(len(document.results), 'case')})",
        file=sys.stderr,
    )
    return EXIT_OK
