"""Regression baselines: a committed JSON file of each (suite, case, axis)'s score.

The file::

    {
      "format": "pytest-phyjudge-baseline",
      "version": 1,
      "judge": {"kind": "local", "adapter": "...", ...},
      "judge_server": {"model": "phyjudge", "system_fingerprint": "fp_a"},
      "suites": {"basics": {"ball_ramp": {"gravity": {"score": 4}}}}
    }

``judge_server`` (optional: judges in this process have none, and older baselines lack it)
is what the judge server said of itself when the baseline was judged: the model its
``/v1/models`` lists and vLLM's ``system_fingerprint``. A run judged by a server that says
otherwise is compared all the same, with a note beside the verdicts (:func:`server_note`):
a vLLM or driver upgrade on the judge box moves scores that the generator did not.

An entry holds ``score`` (for a sampled case the mean over its samples, with ``samples``
beside it), and ``expected`` under distribution scoring. A run compares ``expected`` when
both sides have it, else the score. Updates are written atomically, the previous file kept
as ``<name>.bak``; keys are sorted so the file diffs well under version control.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._fields import server_text
from pytest_phyjudge._files import (
    MAX_FILE_BYTES,
    FileProblem,
    not_a_file,
    read_json_file,
    write_json_atomic,
)
from pytest_phyjudge._outputs import replace_file
from pytest_phyjudge.engine.axes import MAX_SCORE, MIN_SCORE, is_score
from pytest_phyjudge.engine.judgment import portable_name

FORMAT = "pytest-phyjudge-baseline"
VERSION = 1
#: Comparisons allow for float noise in means and expected scores (and JSON round trips).
EPSILON = 1e-6
UPDATE_FLAG = "--phyjudge-update-baseline"

Key = tuple[str, str, str]  # suite, case, axis
#: What a baseline keeps of a judge server's self-description.
SERVER_FIELDS = ("model", "system_fingerprint")


@dataclass(frozen=True)
class Entry:
    score: float
    expected: float | None = None
    samples: tuple[int | None, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"score": self.score}
        if self.expected is not None:
            data["expected"] = self.expected
        if self.samples is not None:
            data["samples"] = list(self.samples)
        return data


@dataclass
class Baseline:
    path: Path
    judge: dict[str, Any] | None = None
    entries: dict[Key, Entry] = field(default_factory=dict)
    exists: bool = False
    #: What the judge server said of itself when the baseline was judged (None: unknown).
    judge_server: dict[str, Any] | None = None


def _bad(path: Path, problem: str) -> InputError:
    return InputError(
        f"The baseline {path} {problem}. Fix the file, or move it away and create a new one "
        f"with {UPDATE_FLAG} (an existing baseline is never overwritten while it is unreadable)."
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _score_value(value: Any) -> bool:
    """A finite number on the judge's scale (a mean or an expected score may be fractional)."""
    return _number(value) and math.isfinite(value) and MIN_SCORE <= value <= MAX_SCORE


def _check_entry(path: Path, where: str, entry: Any) -> Entry:
    scale = f"a number from {MIN_SCORE} to {MAX_SCORE}"
    if not isinstance(entry, dict) or "score" not in entry:
        raise _bad(path, f'{where} has no numeric "score" ({scale})')
    for name in ("score", "expected"):
        value = entry.get(name)
        if (name == "score" or value is not None) and not _score_value(value):
            raise _bad(path, f'{where} has "{name}": {value!r}, which is not {scale}')
    samples = entry.get("samples")
    if samples is not None and not (
        isinstance(samples, list) and all(x is None or is_score(x) for x in samples)
    ):
        raise _bad(
            path,
            f'{where} has "samples": {samples!r}; it must be a list of whole scores from '
            f"{MIN_SCORE} to {MAX_SCORE} (null for a sample that was not scored)",
        )
    return Entry(
        score=entry["score"],
        expected=entry.get("expected"),
        samples=None if samples is None else tuple(samples),
    )


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline; a missing file is an empty baseline with ``exists=False``. Anything
    that is not this format is an InputError naming the file."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return Baseline(path)
    try:
        data = read_json_file(path, unique_keys=True)
    except FileProblem as problem:
        at = f" at line {problem.line}" if problem.line else ""
        raise _bad(path, f"{problem.reason}{at}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _bad(
            path,
            f'is not a pytest-phyjudge baseline (it has no "format": "{FORMAT}"; is it a '
            "scores.json report?)",
        )
    version = data.get("version")
    if type(version) is not int or version != VERSION:  # ``true == 1`` in Python
        raise _bad(
            path,
            f"has version {version!r}; this pytest-phyjudge reads version {VERSION} (upgrade "
            "pytest-phyjudge if the file is newer)",
        )
    judge = data.get("judge")
    if judge is not None and not isinstance(judge, dict):
        raise _bad(path, '"judge" is not an object')
    server = data.get("judge_server")
    if server is not None and not (
        isinstance(server, dict)
        and all(isinstance(server.get(k), str | None) for k in SERVER_FIELDS)
    ):
        raise _bad(path, '"judge_server" is not an object of strings (model, system_fingerprint)')
    suites = data.get("suites", {})
    if not isinstance(suites, dict):
        raise _bad(path, '"suites" is not an object of suites')
    entries: dict[Key, Entry] = {}
    for suite, cases in suites.items():
        if not isinstance(cases, dict):
            raise _bad(path, f"suite {suite!r} is not an object of cases")
        for case, axes in cases.items():
            if not isinstance(axes, dict):
                raise _bad(path, f"case {suite}::{case} is not an object of axes")
            for axis, entry in axes.items():
                where = f"entry {suite}::{case}::{axis}"
                entries[(suite, case, axis)] = _check_entry(path, where, entry)
    return Baseline(path, judge=judge, entries=entries, exists=True, judge_server=server)


def same_judge(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Two identities name the same judge (unknown on either side counts as the same).

    When both know the sha256 of the adapter weights, that (with the kind and the base)
    decides, so the same adapter from a hub id and from a local folder is the same judge;
    otherwise the adapter's name and revision must match too."""
    if a is None or b is None:
        return True
    a, b = portable_judge(a), portable_judge(b)
    fields: tuple[str, ...] = ("kind", "adapter", "revision", "base", "adapter_sha256")
    if a.get("adapter_sha256") and b.get("adapter_sha256"):
        fields = ("kind", "base", "adapter_sha256")
    return all(a.get(f) == b.get(f) for f in fields)


def portable_judge(judge: Mapping[str, Any]) -> dict[str, Any]:
    """The judge as a committed file names it: no machine-local folder paths (an adapter or
    base in a local folder is named by the folder's name)."""
    portable = dict(judge)
    for name in ("adapter", "base"):
        if isinstance(portable.get(name), str):
            portable[name] = portable_name(portable[name])
    return portable


def describe_judge(judge: Mapping[str, Any] | None) -> str:
    if not judge:
        return "an unknown judge"
    rev = f"@{judge['revision']}" if judge.get("revision") else ""
    base = f" on {judge['base']}" if judge.get("base") else ""
    return f"{judge.get('adapter')}{rev}{base} ({judge.get('kind')})"


def judge_mismatch_message(baseline: Baseline, judge: Mapping[str, Any]) -> str:
    return (
        f"The baseline {baseline.path} was made by {describe_judge(baseline.judge)}, but this "
        f"run's judge is {describe_judge(judge)}: scores of different judges are not "
        f"comparable. Run with the baseline's judge, make a new baseline with {UPDATE_FLAG} "
        "--phyjudge-baseline-any-judge, or compare anyway with --phyjudge-baseline-any-judge."
    )


def portable_server(server: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a baseline keeps of a judge server's self-description (None: nothing known)."""
    if not server:
        return None
    kept = {name: server.get(name) for name in SERVER_FIELDS}
    return kept if any(value is not None for value in kept.values()) else None


def _server_text(server: Mapping[str, Any]) -> str:
    # A baseline from a pull request may hold a fingerprint of megabytes: shown cut.
    model = server_text(server.get("model")) or "an unnamed model"
    fingerprint = server_text(server.get("system_fingerprint"))
    return f"{model} (fingerprint {fingerprint})" if fingerprint else f"{model} (no fingerprint)"


def server_note(
    stored: Mapping[str, Any] | None,
    now: Mapping[str, Any] | None,
    sides: tuple[str, str] = ("the baseline", "this run"),
) -> str | None:
    """The note beside a baseline comparison whose judge server said another model name or
    ``system_fingerprint`` than the baseline's; None when they agree, or either is unknown
    (a judge in this process, an older baseline, a server that sends no fingerprint).
    ``sides`` names the two (``phyjudge compare`` says A and B)."""
    before, after = portable_server(stored), portable_server(now)
    if before is None or after is None:
        return None
    differ = [
        name
        for name in SERVER_FIELDS
        if before.get(name) is not None
        and after.get(name) is not None
        and before.get(name) != after.get(name)
    ]
    if not differ:
        return None
    return (
        f"{sides[0]} was judged by {_server_text(before)}; {sides[1]} by "
        f"{_server_text(after)}: differences may be the judge's, not the generator's"
    )


def obtained_entry(
    value: float, expected: float | None, samples: Iterable[int | None] | None
) -> Entry:
    return Entry(
        score=value, expected=expected, samples=None if samples is None else tuple(samples)
    )


def compare_entry(stored: Entry | None, obtained: Entry, tolerance: float) -> dict[str, Any]:
    """``status``: new (no entry), drop (below the entry by more than ``tolerance``),
    improved (above it) or same; with what was compared."""
    if stored is None:
        return {"status": "new", "obtained": obtained.score, "measure": "score"}
    measure = "score"
    have, want = obtained.score, stored.score
    if obtained.expected is not None and stored.expected is not None:
        measure, have, want = "expected", obtained.expected, stored.expected
    elif obtained.samples is not None or stored.samples is not None:
        measure = "mean"
    if have < want - tolerance - EPSILON:
        status = "drop"
    elif have > want + EPSILON:
        status = "improved"
    else:
        status = "same"
    return {
        "status": status,
        "measure": measure,
        "stored": want,
        "obtained": have,
        "tolerance": tolerance,
    }


def document(
    judge: Mapping[str, Any] | None,
    entries: Mapping[Key, Entry],
    server: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    suites: dict[str, dict[str, dict[str, Any]]] = {}
    for (suite, case, axis), entry in sorted(entries.items()):
        suites.setdefault(suite, {}).setdefault(case, {})[axis] = entry.to_dict()
    data: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "judge": None if judge is None else portable_judge(judge),
    }
    kept = portable_server(server)
    if kept is not None:  # judges in this process have none: their files stay as they were
        data["judge_server"] = kept
    data["suites"] = suites
    return data


def write_baseline(
    path: str | Path,
    judge: Mapping[str, Any] | None,
    entries: Mapping[Key, Entry],
    server: Mapping[str, Any] | None = None,
) -> Path | None:
    """Write atomically; the previous file, if any, is kept as ``<name>.bak``. Returns the
    ``.bak`` path when one was written."""
    path = Path(path)
    backup = None
    if path.exists():
        # Read (a regular file only, capped) and written anew beside it: a ``.bak`` that is a
        # link is replaced, never followed, so no file elsewhere is ever overwritten.
        kind = not_a_file(path)
        if kind is not None:
            raise OSError(f"the baseline {path} is {kind}, not a file")
        with path.open("rb") as file:
            previous = file.read(MAX_FILE_BYTES + 1)
        if len(previous) > MAX_FILE_BYTES:
            raise OSError(f"the baseline {path} is larger than a baseline ({len(previous)} bytes)")
        backup = path.with_name(path.name + ".bak")
        replace_file(backup, previous)
    write_json_atomic(path, document(judge, entries, server))
    return backup
