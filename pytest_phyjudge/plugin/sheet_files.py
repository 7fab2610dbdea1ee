"""The run's contact sheet files: where they go, their folder checked before the run and
pruned after it (through ``pytest_phyjudge._outputs``: only sheets this plugin wrote are
replaced or removed), and each case's sheet made once, named by its full case key."""

from __future__ import annotations

import base64
import dataclasses
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import pytest

from pytest_phyjudge._exceptions import describe_error
from pytest_phyjudge._outputs import FolderNotOwned, OwnedFolder, writes_over
from pytest_phyjudge.plugin.state import PhyJudgeState
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.reporting.sheets import case_nodeid, sheet_for_case
from pytest_phyjudge.scores.writer import is_earlier_results


def make_sheet(
    check: Check, folder: OwnedFolder, prefix: str, missed: list[tuple[str, str]] | None = None
) -> str | None:
    """The case's sheet, None when none can be made: a warning at once, or noted in
    ``missed`` (said once at the end by :func:`warn_missed_sheets`)."""
    try:
        return sheet_for_case(check, folder, prefix)
    except Exception as exc:  # a sheet is a convenience: never fail a test over it
        if missed is not None:
            missed.append((case_nodeid(check), describe_error(exc)))
            return None
        warnings.warn(
            f"pytest-phyjudge: no contact sheet for {case_nodeid(check)} ({describe_error(exc)}).",
            pytest.PytestWarning,
            stacklevel=1,
        )
        return None


def warn_missed_sheets(state: PhyJudgeState) -> None:
    """One warning for every case without a sheet (a suite whose stand-in clips are not
    videos misses them all): the count, and the first case with its reason."""
    if not state.sheets_missed:
        return
    count = len(state.sheets_missed)
    first, why = state.sheets_missed[0]
    which = f"{first} ({why})" if count == 1 else f"{count} cases; the first, {first}: {why}"
    warnings.warn(
        f"pytest-phyjudge: no contact sheet for {which}.",
        pytest.PytestWarning,
        stacklevel=1,
    )
    state.sheets_missed.clear()


def html_extra(report: pytest.TestReport, sheet: Path) -> None:
    try:
        from pytest_html import extras
    except ImportError:
        return
    data = base64.b64encode(sheet.read_bytes()).decode("ascii")
    report.extras = [*getattr(report, "extras", []), extras.png(data, name=sheet.name)]


@dataclasses.dataclass(frozen=True)
class SheetsPlace:
    """Where this run's contact sheets go: beside the JSON report in its own folder
    ``<report stem>-sheets/`` (``prefix`` empty), or with only an HTML report into that
    folder's ``sheets/`` (one manifest for the whole HTML folder)."""

    root: Path
    prefix: str


#: This process's sheets folder, opened once (None: it was refused, sheets are off).
_SHEETS_FOLDER = pytest.StashKey["OwnedFolder | None"]()


def sheets_place(state: PhyJudgeState) -> SheetsPlace | None:
    """Where this run's contact sheets go; None when it writes none."""
    options = state.options
    if not options.sheets:
        return None
    if options.report is not None:
        return SheetsPlace(options.report.parent / f"{options.report.stem}-sheets", "")
    return None if options.html is None else SheetsPlace(options.html, "sheets/")


def sheets_folder(state: PhyJudgeState) -> OwnedFolder | None:
    """The run's sheets folder, opened once per process: the controller checked it at the
    session's start (``open_outputs``); a worker only attaches to it."""
    stash = state.config.stash
    if _SHEETS_FOLDER not in stash:
        place = sheets_place(state)
        folder = None
        if place is not None:
            try:
                folder = OwnedFolder.attach(place.root, what="contact sheets folder")
            except (OSError, FolderNotOwned) as exc:
                warnings.warn(
                    f"pytest-phyjudge: no contact sheets ({describe_error(exc)}).",
                    pytest.PytestWarning,
                    stacklevel=1,
                )
        stash[_SHEETS_FOLDER] = folder
    return stash[_SHEETS_FOLDER]


def own_outputs(state: PhyJudgeState) -> list[Path]:
    """The run's outputs that may sit inside its HTML folder (scores.json, its sheets)."""
    report, place = state.options.report, sheets_place(state)
    found = [] if report is None else [report]
    return found + ([place.root] if place is not None and not place.prefix else [])


def open_outputs(state: PhyJudgeState) -> None:
    """Check the run's output folders before anything is judged: one that holds files
    pytest-phyjudge did not write is a usage error now, not a lost report at the end (one
    that cannot be made is found when it is written, and fails the run then: exit 4)."""
    options, place = state.options, sheets_place(state)
    _refuse_shared_files(
        {
            "report": options.report,
            "baseline": options.baseline,
            "compare-plot": options.compare_plot,
        }
    )
    if options.html and options.report and writes_over(options.html, options.report):
        raise pytest.UsageError(
            f"--phyjudge-report {str(options.report)!r} names a file that the HTML report "
            f"writes in --phyjudge-html {str(options.html)!r}: one would be lost to the other. "
            f"Name the report otherwise, e.g. {str(Path(options.html) / 'scores.json')!r}."
        )
    if options.report is not None and not is_earlier_results(options.report):
        raise pytest.UsageError(
            f"--phyjudge-report {str(options.report)!r} holds something that is not a "
            "scores.json pytest-phyjudge wrote (a user's file, a symlink, a folder): a report "
            "replaces only an earlier report. Name a new file, or move that one away."
        )
    try:
        if options.html is not None:
            OwnedFolder.check(options.html, what="HTML report folder", leave=own_outputs(state))
        if place is not None and place.root != options.html:
            OwnedFolder.check(place.root, what="contact sheets folder")
    except FolderNotOwned as exc:
        raise pytest.UsageError(str(exc)) from None
    except OSError:
        pass


def _refuse_shared_files(files: dict[str, Path | None]) -> None:
    """A usage error when two of the run's files are one: the last written would replace
    the other (a baseline written over the report it followed), with the run green."""
    seen: dict[str, str] = {}
    for option, path in files.items():
        if path is None:
            continue
        real = os.path.realpath(path)
        if real in seen:
            raise pytest.UsageError(
                f"--phyjudge-{seen[real]} and --phyjudge-{option} both name {str(path)!r}: "
                "one would be lost to the other. Give each its own file."
            )
        seen[real] = option


def _sheet_name(folder: OwnedFolder, sheet: str) -> str | None:
    try:
        return Path(sheet).resolve().relative_to(folder.root).as_posix()
    except (ValueError, OSError):
        return None


def prune_sheets(state: PhyJudgeState, checks: Iterable[Check]) -> None:
    """Remove the sheets an earlier run made that this run did not make again (the HTML
    report prunes its own folder's); a failure only warns."""
    place = sheets_place(state)
    if place is None or place.prefix or not place.root.is_dir():
        return
    folder = sheets_folder(state)
    if folder is None:
        return
    names = {_sheet_name(folder, c.sheet) for c in checks if c.sheet}
    try:
        folder.finish({name for name in names if name})
    except (OSError, FolderNotOwned) as exc:
        warnings.warn(
            f"pytest-phyjudge: old contact sheets not pruned ({describe_error(exc)}).",
            pytest.PytestWarning,
            stacklevel=1,
        )
