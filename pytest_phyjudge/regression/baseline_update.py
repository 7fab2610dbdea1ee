"""What a finished run does to its baseline: compare with it, and update it when asked and
the run can be trusted to, decided here, apart from pytest, the checks and the terminal.

The run arrives as its baseline entries (``(suite, case, axis)`` to :class:`Entry`) and its
judge's identity; what happened comes back as plain values that ``reporting.baseline_run``
presents.

Threat model: the baseline file is read at the start of a run and written at its end,
minutes later; another run (a second CI job, a colleague's terminal) may have updated it
meanwhile. Writing what this run read plus its own entries would silently drop the other
run's, so the file is read again just before the write, and an update over a baseline that
changed is refused (the run fails; rerunning updates over the new entries). A forged or
damaged file is refused by ``load_baseline``; a link is replaced, never followed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._outputs import locked_folder
from pytest_phyjudge.regression.baseline import (
    UPDATE_FLAG,
    Baseline,
    Entry,
    Key,
    judge_mismatch_message,
    load_baseline,
    same_judge,
    write_baseline,
)
from pytest_phyjudge.regression.compare import Comparison, compare, scores_from_entries


@dataclass(frozen=True)
class BaselineRequest:
    """The run's baseline flags, as plain values (``--phyjudge-update-baseline`` and co.)."""

    update: bool = False
    prune: bool = False
    any_judge: bool = False
    compare_plot: Path | None = None


@dataclass(frozen=True)
class BaselineUpdate:
    """The outcome of an update: refused (``refusal`` says why), or written."""

    refusal: str | None = None
    entries: int = 0
    added: int = 0
    #: The entries this run did not judge were removed (pruned, or another judge's).
    removed_unjudged: bool = False
    backup: Path | None = None
    #: The update was wanted but the file could not be written (the run must not exit 0).
    write_failed: bool = False


def baseline_comparison(base: Baseline, run: Mapping[Key, Entry]) -> Comparison:
    """The run's scores against the baseline's, paired by (suite, case) and axis; an
    InputError when they share nothing to pair."""
    stored = scores_from_entries(
        ((key, e.score) for key, e in base.entries.items()), f"baseline {base.path.name}"
    )
    obtained = scores_from_entries(((key, e.score) for key, e in run.items()), "this run")
    return compare(stored, obtained)


def update_baseline(
    base: Baseline,
    run: Mapping[Key, Entry],
    judge: Mapping[str, Any] | None,
    request: BaselineRequest,
    *,
    complete: bool,
    server: Mapping[str, Any] | None = None,
) -> BaselineUpdate:
    """Write this run's entries into the baseline, unless the run cannot be trusted to: it
    did not complete, scored nothing, or was judged by another judge than the baseline's
    (unless ``any_judge``, which then starts the baseline afresh). ``server``: what the judge
    server said of itself, recorded with the entries."""
    if not complete:
        return BaselineUpdate(refusal="the run did not complete")
    if not run:
        return BaselineUpdate(refusal="this run scored nothing")
    kept = dict(base.entries)
    other_judge = base.exists and judge is not None and not same_judge(base.judge, judge)
    if other_judge:
        if not request.any_judge:
            return BaselineUpdate(refusal=judge_mismatch_message(base, judge or {}))
        kept = {}  # another judge's scores cannot stand beside this judge's
    if request.prune:
        kept = {key: entry for key, entry in kept.items() if key in run}
    entries = {**kept, **run}
    try:
        # Read again and written under the folder's lock: two runs ending at once take turns.
        with _locked(base.path.parent):
            changed = _changed_since_read(base)
            if changed is not None:
                return BaselineUpdate(refusal=changed, write_failed=True)
            backup = write_baseline(base.path, judge or base.judge, entries, server)
    except OSError as exc:
        return BaselineUpdate(refusal=f"cannot write {base.path} ({exc})", write_failed=True)
    return BaselineUpdate(
        entries=len(entries),
        added=sum(key not in base.entries for key in run),
        removed_unjudged=request.prune or other_judge,
        backup=backup,
    )


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """``folder`` locked against other processes, when it exists (else the write fails)."""
    if not folder.is_dir():
        yield
        return
    with locked_folder(folder):
        yield


def _changed_since_read(base: Baseline) -> str | None:
    """Why ``base`` must not be written over now (it changed on disk since this run read
    it, or no longer reads as a baseline), or None when it is as it was."""
    try:
        now = load_baseline(base.path)
    except InputError as exc:
        return f"{exc} (it changed while this run ran)"
    if (now.exists, now.judge, now.entries, now.judge_server) == (
        base.exists,
        base.judge,
        base.entries,
        base.judge_server,
    ):
        return None
    return (
        f"{base.path} changed while this run ran (another run updated it?); writing this "
        "run's entries over what it read then would lose the new ones. Rerun with "
        f"{UPDATE_FLAG} to update it over them."
    )
