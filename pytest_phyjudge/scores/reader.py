"""The one reader of ``scores.json``: every field a reader uses is checked once, before
anyone uses it, and the document is upgraded to this version (``model.upgrade``).

Threat model: a ``scores.json`` handed to ``phyjudge report``, ``compare``,
``agree`` or ``leaderboard`` may come from anyone (a CI artifact, a PR, a download). At worst
it holds a field of another type than the writer's (a string for an object, a list for
``meta``, null for a string), a score outside 1-5 or not finite, the same case twice, a
general metric filed under ``physical.laws``, an unknown axis, a format or version this
pytest-phyjudge does not read, or a file too big or deep to
read. :func:`read_scores` checks every field any reader uses before anyone uses it, in one
pass, and refuses the document with one paragraph naming the file, the JSON path of the
field (``results[3].physical.laws.gravity.score``), what it holds and the fix; it reads
only that file (through ``_files.read_json_file``: size and depth capped, special files
refused) and writes nothing. Cases are told apart by ``(suite, video)`` as a tuple; a
``video`` must be a string (PhyGround's ids are), so ``1`` and ``"1"`` never meet, and two
rows of one case are an error naming both: PhyGround keeps one row per prompt in a results
file (several clips of a prompt go to one file per generator), so there is no rule to
average them by.
"""

from __future__ import annotations

import difflib
import gc
from array import array
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._fields import (
    BOOLEAN,
    INTEGER,
    NUMBER,
    OBJECT,
    STRING,
    TEXT,
    TEXTS,
    Fields,
    Rule,
    between,
    is_number,
    key_path,
    shown,
)
from pytest_phyjudge._files import FileProblem, read_json_file
from pytest_phyjudge.engine.axes import (
    ALL_AXES,
    GENERAL_METRICS,
    MAX_SCORE,
    MIN_SCORE,
    PHYSICAL_LAWS,
)
from pytest_phyjudge.scores.model import (
    CANARY_VERDICTS,
    FORMAT,
    HUMAN_KIND,
    UNSTAMPED,
    VERSION,
    CaseKey,
    ScoreColumn,
    ScoresDocument,
    upgrade,
)

_FIX = (
    "Fix that field, or write the report again with pytest --phyjudge-report or phyjudge score-dir."
)
_SHAPE = (
    'a scores.json is an object with "results": [{"video": "<id>", "SA": 4, ..., '
    '"physical": {"laws": {"gravity": {"score": 3}}}}] (PhyGround\'s shape: meta, '
    "num_videos, general_dimensions, results)"
)
_SCORE = f"a score (a number from {MIN_SCORE} to {MAX_SCORE}, or null when not scored)"


def _is_score(value: Any) -> bool:
    return is_number(value) and MIN_SCORE <= value <= MAX_SCORE


def _score_ok(value: Any) -> bool:
    """``_is_score`` by exact types, for the million-row loop (NaN and infinities fail
    the range; a bool is not an int here)."""
    kind = type(value)
    return (kind is int or kind is float) and MIN_SCORE <= value <= MAX_SCORE


SCORE: Rule = (_is_score, _SCORE)
WHOLE: Rule = (lambda v: type(v) is int and _is_score(v), f"a whole score, {MIN_SCORE}-{MAX_SCORE}")
PROBS: Rule = (
    lambda v: isinstance(v, list) and all(is_number(p) and 0 <= p <= 1 for p in v),
    "a list of probabilities (0 to 1) or null",
)

#: How the row checker treats each field it knows (the rest no reader uses).
_ROW_FIELDS: dict[str, str] = {
    **dict.fromkeys(GENERAL_METRICS, "metric"),
    **dict.fromkeys(
        ("suite", "source", "prompt", "video_path", "file", "sheet", "generator"), "text"
    ),
    "physical": "physical",
    **dict.fromkeys(("physical_laws", "general_avg", "passed", "checks", "samples"), "rare"),
}


class _Reader(Fields):
    """One pass over a document: every check, and the score columns on the way."""

    def __init__(self, name: str) -> None:
        super().__init__(name, _FIX)
        self.case: str | None = None
        #: The document claims to be a person's ratings (judge kind "human").
        self.human = False
        self.columns: dict[str, tuple[array, array]] = {
            axis: (array("q"), array("d")) for axis in ALL_AXES
        }

    def context(self) -> str:
        return f" (case {shown(self.case)})" if self.case is not None else ""

    def axis(self, name: str, path: str, *, law: bool) -> None:
        if law and name in GENERAL_METRICS:
            raise self.fail(
                key_path(path, name),
                f"is the general metric {name!r} filed as a physical law: a general metric "
                f'is a field of the row ("{name}": 4), not an entry of physical.laws',
            )
        if name not in ALL_AXES:
            close = difflib.get_close_matches(name, ALL_AXES, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.fail(
                key_path(path, name),
                f"is not one of the judge's axes{hint}: they are the general metrics "
                f"{', '.join(GENERAL_METRICS)} and the laws {', '.join(PHYSICAL_LAWS)}",
            )

    # ----------------------------------------------------------------- the document

    def meta(self, data: Mapping[str, Any]) -> None:
        meta = self.obj(data, "meta", "")
        self.fields(meta, "meta", TEXT, "video_model", "generator", "created", "tool", "version")
        self.fields(meta, "meta", BOOLEAN, "scores_meaningless")
        self.fields(meta, "meta", OBJECT, "settings", "run", "canary", "judge_server")
        judges = meta.get("judges")
        self.fields(meta, "meta", (lambda v: isinstance(v, list), "a list of judges"), "judges")
        for i, judge in enumerate([self.obj(meta, "judge", "meta"), *(judges or [])]):
            path = "meta.judge" if i == 0 else f"meta.judges[{i - 1}]"
            if not isinstance(judge, dict):
                raise self.wrong(path, judge, "a judge (an object)")
            self.fields(judge, path, TEXT, "kind", "adapter", "revision", "base", "adapter_sha256")
            self.human = self.human or (i == 0 and judge.get("kind") == HUMAN_KIND)
        self.judge_warnings(meta)
        self.judge_checks(meta)

    def judge_checks(self, meta: Mapping[str, Any]) -> None:
        """``meta.canary`` and ``meta.judge_server``: the texts the HTML page shows."""
        canary = meta.get("canary")
        if canary is not None:
            self.canary(canary)
        server = meta.get("judge_server")
        if server is not None:
            path = "meta.judge_server"
            self.fields(server, path, TEXT, "model", "system_fingerprint", "answered_by")
            self.fields(server, path, OBJECT, "identity")
            judges = (meta.get("judge"), *(meta.get("judges") or ()))
            kinds = list(dict.fromkeys(j.get("kind") for j in judges if isinstance(j, dict)))
            # Behind a server a judge is "remote" (or keeps "tiny"/"scripted": its scores
            # mean nothing); a report of only in-process judges had no server to describe.
            if any(kinds) and not set(kinds) & {"remote", "tiny", "scripted"}:
                named = ", ".join(map(repr, kinds))
                raise self.fail(
                    path, f"names a judge server, but the report's judges are {named}, none served"
                )

    def canary(self, canary: Mapping[str, Any]) -> None:
        """``meta.canary`` as a check writes it: a status with a verdict that goes with it,
        and a passed check that judged its canaries (a forged "passed" is refused, never
        shown as a check that ran)."""
        path = "meta.canary"
        self.fields(canary, path, STRING, "file", "status", "line", needed=True)
        self.fields(canary, path, TEXT, "verdict", "mode", "judge", "first_item", "worker")
        self.fields(canary, path, (INTEGER[0], "a whole number"), "judge_calls")
        self.fields(canary, path, (between(0, 1e9)[0], "a number of seconds"), "judge_seconds")
        self.fields(canary, path, TEXTS, "notes", "drifted")
        self.fields(canary, path, (lambda v: isinstance(v, list), "a list"), "axes")
        status, verdict = canary["status"], canary.get("verdict")
        if status not in CANARY_VERDICTS:
            raise self.wrong(f"{path}.status", status, " or ".join(map(repr, CANARY_VERDICTS)))
        if verdict not in CANARY_VERDICTS[status]:
            raise self.wrong(f"{path}.verdict", verdict, f"a verdict of a check that is {status!r}")
        calls = canary.get("judge_calls") or 0
        if status == "passed" and (type(calls) is not int or calls < 1):
            raise self.fail(path, "says the check passed, but no judge call answered a canary")

    def judge_warnings(self, meta: Mapping[str, Any]) -> None:
        """``meta.judge_warnings``: the degenerate-judge warnings the HTML page shows."""
        listed = (lambda v: isinstance(v, list), "a list of judge warnings")
        self.fields(meta, "meta", listed, "judge_warnings")
        for i, warning in enumerate(meta.get("judge_warnings") or []):
            path = f"meta.judge_warnings[{i}]"
            if not isinstance(warning, dict):
                raise self.wrong(path, warning, 'a judge warning ({"axis": ..., "message": ...})')
            self.fields(warning, path, STRING, "axis", "kind", "message", needed=True)
            if warning["axis"] not in ALL_AXES:
                raise self.wrong(f"{path}.axis", warning["axis"], "one of the judge's axes")
            self.fields(warning, path, (INTEGER[0], "a whole number"), "judgments", "count")
            self.fields(warning, path, WHOLE, "digit")

    def read(self, data: Any) -> ScoresDocument:
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            if isinstance(data, dict):
                what = (
                    f"its results are {shown(data['results'])}"
                    if "results" in data
                    else "it has none"
                )
            else:
                what = f"it is {'a list' if isinstance(data, list) else shown(data)}"
            raise InputError(
                f"{self.name} is not a scores.json report: it has no 'results' list ({what}); "
                f"{_SHAPE}. Point at a scores.json written by pytest --phyjudge-report or "
                "phyjudge score-dir, or a PhyGround results file."
            )
        version = self.version(data)
        self.meta(data)
        self.fields(data, "", INTEGER, "num_videos")
        self.fields(data, "", TEXTS, "general_dimensions")
        cases: list[CaseKey] = []
        first: dict[CaseKey, int] = {}
        for index, row in enumerate(data["results"]):
            self.case = None
            key = self.row(row, index)
            seen = first.setdefault(key, index)
            if seen != index:
                suite = "" if key[0] is None else f" of suite {shown(key[0])}"
                raise InputError(
                    f"{self.name}: results[{seen}] and results[{index}] are the same case "
                    f"(video {shown(key[1])}{suite}). A report holds one row per case "
                    "(PhyGround's results hold one per prompt; several clips of a prompt go "
                    "to one file per generator), so there is no telling which to use: remove "
                    "or rename one of them."
                )
            cases.append(key)
        self.case = None
        return ScoresDocument(
            name=self.name,
            data=upgrade(data, version),
            version=version,
            cases=tuple(cases),
            columns={
                axis: ScoreColumn(rows, values)
                for axis, (rows, values) in self.columns.items()
                if len(rows)
            },
        )

    def version(self, data: Mapping[str, Any]) -> int:
        """The version the document was written in: 0 without ``format`` (PhyGround's own
        files), else its ``version``, which must be one this pytest-phyjudge reads."""
        written = data.get("format")
        if written is None:
            return UNSTAMPED
        if written != FORMAT:
            raise self.wrong(
                "format",
                written,
                f'"{FORMAT}" (a scores.json written by pytest-phyjudge), or absent (a '
                "PhyGround results file)",
            )
        version = data.get("version")
        if type(version) is not int or version < 1:
            raise self.wrong("version", version, f"a version of the format (1 to {VERSION})")
        if version > VERSION:
            raise InputError(
                f"{self.name} is a scores.json of version {version}, written by a newer "
                f"pytest-phyjudge; this one reads versions up to {VERSION}. Upgrade "
                "pytest-phyjudge to read it."
            )
        return version

    def row(self, row: Any, index: int) -> CaseKey:
        """One result row checked, its scores added to the columns. Written for speed (a
        report may hold a million rows): one pass over the row's own fields, paths built
        only for a message."""
        if type(row) is not dict:
            raise self.wrong(f"results[{index}]", row, "a result (an object with a 'video')")
        video = row.get("video")
        if type(video) is not str or not video:
            if "video" not in row:
                raise self.fail(f"results[{index}]", f"has no 'video' (the case's id); {_SHAPE}")
            raise self.wrong(
                f"results[{index}].video",
                video,
                'a case id: a non-empty string (PhyGround\'s ids are strings; 1 and "1" '
                "are not the same id)",
            )
        self.case = video
        suite = None
        columns = self.columns
        for key, value in row.items():
            kind = _ROW_FIELDS.get(key)
            if kind is None or value is None:
                continue  # a field no reader uses (or null): another tool's business
            if kind == "metric":
                if not _score_ok(value):
                    raise self.wrong(f"results[{index}].{key}", value, _SCORE)
                rows, scores = columns[key]
                rows.append(index)
                scores.append(value)
            elif kind == "text":
                if type(value) is not str:
                    raise self.wrong(key_path(f"results[{index}]", key), value, TEXT[1])
                if key == "suite":
                    suite = value
            elif kind == "physical":
                self.physical(value, index)
            else:
                self.rare(key, row, index)
        return (suite or None, video)

    def rare(self, key: str, row: Mapping[str, Any], index: int) -> None:
        """The fields of a pytest or score-dir report (checks, samples, ...)."""
        path = f"results[{index}]"
        self.fields(row, path, TEXTS, "physical_laws")
        self.fields(row, path, NUMBER, "general_avg")
        self.fields(row, path, BOOLEAN, "passed")
        if key == "checks":
            if self.human:
                raise self.fail(
                    f"{path}.checks",
                    "holds a judge's checks (replies, verdicts) in ratings a person gave "
                    '(meta.judge.kind "human"): a rating export holds scores only. Export the '
                    "ratings again from the HTML report's rating mode, or give the judge's "
                    "kind in meta.judge.kind",
                )
            for axis, entry in self.obj(row, key, path).items():
                self.axis(axis, f"{path}.checks", law=False)
                self.check(entry, key_path(f"{path}.checks", axis))
        elif key == "samples":
            listed = (lambda v: isinstance(v, list), "a list of whole scores (null: not scored)")
            samples = self.obj(row, key, path)
            self.fields(samples, f"{path}.samples", listed, *samples)

    def physical(self, physical: Any, index: int) -> None:
        if type(physical) is not dict:
            raise self.wrong(f"results[{index}].physical", physical, "an object or null")
        laws = physical.get("laws")
        if laws is not None:
            if type(laws) is not dict:
                raise self.wrong(f"results[{index}].physical.laws", laws, "an object or null")
            columns = self.columns
            for law, entry in laws.items():
                column = columns.get(law) if law not in GENERAL_METRICS else None
                if column is None:
                    self.axis(law, f"results[{index}].physical.laws", law=True)
                if type(entry) is not dict:
                    where = key_path(f"results[{index}].physical.laws", law)
                    raise self.wrong(where, entry, 'an object ({"score": 3})')
                score = entry.get("score")
                if score is not None:
                    if not _score_ok(score):
                        where = key_path(f"results[{index}].physical.laws", law)
                        raise self.wrong(f"{where}.score", score, _SCORE)
                    column[0].append(index)  # type: ignore[index]
                    column[1].append(score)  # type: ignore[index]
                if len(entry) > 1:
                    where = key_path(f"results[{index}].physical.laws", law)
                    self.fields(entry, where, TEXT, "status", "error")
        if len(physical) > 1:
            path = f"results[{index}].physical"
            self.fields(physical, path, TEXTS, "missing_laws")
            self.fields(physical, path, NUMBER, "coverage", "avg")

    def check(self, entry: Any, path: str) -> None:
        if not isinstance(entry, dict):
            raise self.wrong(path, entry, 'an object ({"score": 3, ...})')
        self.fields(entry, path, SCORE, "score", "expected")
        self.fields(entry, path, WHOLE, "min_score")
        self.fields(entry, path, BOOLEAN, "passed", "would_fail")
        self.fields(entry, path, TEXT, "outcome", "nodeid", "raw", "error", "sheet")
        self.fields(entry, path, PROBS, "probs")
        self.fields(entry, path, OBJECT, "summary")
        prompt = self.obj(entry, "prompt", path)
        if prompt:  # the page shows both texts
            self.fields(
                prompt, f"{path}.prompt", (TEXT[0], "a string"), "system", "user", needed=True
            )
        baseline = self.obj(entry, "baseline", path)
        if baseline:
            self.fields(baseline, f"{path}.baseline", STRING, "status", needed=True)
            self.fields(baseline, f"{path}.baseline", NUMBER, "stored", "obtained", "tolerance")
        self.fields(entry, path, (lambda v: isinstance(v, list), "a list of samples"), "samples")
        for i, sample in enumerate(entry.get("samples") or []):
            where = f"{path}.samples[{i}]"
            if not isinstance(sample, dict):
                raise self.wrong(where, sample, "a sample (an object)")
            self.needs(sample, where, ("sample", "seed", "score", "expected", "error"))
            self.fields(sample, where, (INTEGER[0], "a whole number"), "sample", needed=True)
            self.fields(sample, where, INTEGER, "seed")
            self.fields(sample, where, SCORE, "score", "expected")
            self.fields(sample, where, TEXT, "error", "video")


def check_scores(data: Any, name: str) -> ScoresDocument:
    """``data`` (a parsed ``scores.json``) checked field by field; an InputError naming
    ``name``, the JSON path of the first wrong field, what it holds and the fix."""
    return _Reader(name).read(data)


def read_scores(path: str | Path) -> ScoresDocument:
    """The ``scores.json`` at ``path``, read with the file guards and checked; an
    InputError naming the file and what is wrong with it."""
    path = Path(path)
    collecting = gc.isenabled()
    gc.disable()  # a million rows are a million dicts: collecting meanwhile triples the time
    try:
        try:
            data = read_json_file(path, unique_keys=True)
        except FileProblem as problem:
            at = f" at line {problem.line}" if problem.line else ""
            raise InputError(
                f"The report {str(path)!r} {problem.reason}{at}. Point at a scores.json "
                "written by pytest --phyjudge-report or phyjudge score-dir, or a PhyGround "
                "results file."
            ) from None
        return check_scores(data, str(path))
    finally:
        if collecting:
            gc.enable()
