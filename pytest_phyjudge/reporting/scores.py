"""PhyGround's ``scores.json``: the results of many videos, in the shape its scorer writes,
and the one reader that checks it.

Both the batch command (``phyjudge score-dir``) and the pytest report write this shape, with
extra fields of their own beside PhyGround's (thresholds, pass/fail, the judge, the settings).

Threat model of the reader: a ``scores.json`` handed to ``phyjudge report``, ``compare``,
``agree`` or ``leaderboard`` may come from anyone (a CI artifact, a PR, a download). At worst
it holds a field of another type than the writer's (a string for an object, a list for
``meta``, null for a string), a score outside 1-5 or not finite, the same case twice, a
general metric filed under ``physical.laws``, an unknown axis, or a file too big or deep to
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
import json
import math
import os
import re
import secrets
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._files import FileProblem, read_json_file
from pytest_phyjudge.engine.axes import (
    ALL_AXES,
    GENERAL_METRICS,
    MAX_SCORE,
    MIN_SCORE,
    PHYSICAL_LAWS,
)
from pytest_phyjudge.engine.judgment import Judgment


@dataclass
class VideoResult:
    """Everything judged for one video: its outcomes per axis (a Judgment or an error)."""

    video: str
    prompt: str
    physical_laws: Sequence[str]
    outcomes: dict[str, Judgment | Exception] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: Scores that replace the outcome's, e.g. the mean over an axis' repeated samples.
    values: dict[str, float | None] = field(default_factory=dict)

    def score(self, axis: str) -> float | None:
        if axis in self.values:
            return self.values[axis]
        outcome = self.outcomes.get(axis)
        return outcome.score if isinstance(outcome, Judgment) else None

    def to_phyground(self) -> dict[str, Any]:
        general = {m: self.score(m) for m in GENERAL_METRICS}
        scored_general = [s for s in general.values() if s is not None]
        laws: dict[str, dict[str, Any]] = {}
        for law in self.physical_laws:
            outcome = self.outcomes.get(law)
            if isinstance(outcome, Judgment) or self.values.get(law) is not None:
                laws[law] = {"score": self.score(law), "status": "scored"}
            elif outcome is None:
                laws[law] = {"score": None, "status": "not_observed"}
            else:
                laws[law] = {"score": None, "status": "failed", "error": str(outcome)}
        law_scores = [v["score"] for v in laws.values() if v["score"] is not None]
        return {
            "video": self.video,
            "prompt": self.prompt,
            "physical_laws": list(self.physical_laws),
            **general,
            "general_avg": mean(scored_general) if scored_general else None,
            "physical": {
                "laws": laws,
                "missing_laws": [law for law, v in laws.items() if v["score"] is None],
                "coverage": len(law_scores) / len(laws) if laws else None,
                "avg": mean(law_scores) if law_scores else None,
            },
            **self.extra,
        }


def build_scores(results: Iterable[VideoResult], meta: Mapping[str, Any]) -> dict[str, Any]:
    """The whole ``scores.json`` document."""
    rows = [r.to_phyground() for r in results]
    return {
        "meta": dict(meta),
        "num_videos": len(rows),
        "general_dimensions": list(GENERAL_METRICS),
        "results": rows,
    }


def _create_beside(target: Path) -> tuple[int, Path]:
    """A new, empty file beside ``target`` opened for writing. Made with mode 0666 so the
    umask decides its permissions, as for any file the user writes (``mkstemp`` would make
    it 0600, unreadable to the rest of a team sharing the report or the baseline)."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON to a temporary file beside ``path`` and rename it over: a reader never
    sees half a report, and an interrupted write leaves the previous one in place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_beside(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


# --------------------------------------------------------------------------- reading

#: A case as every reader pairs them: (suite, video); suite is None outside a suite.
CaseKey = tuple[str | None, str]

_FIX = (
    "Fix that field, or write the report again with pytest --phyjudge-report or phyjudge score-dir."
)
_SHAPE = (
    'a scores.json is an object with "results": [{"video": "<id>", "SA": 4, ..., '
    '"physical": {"laws": {"gravity": {"score": 3}}}}] (PhyGround\'s shape: meta, '
    "num_videos, general_dimensions, results)"
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SCORE = f"a score (a number from {MIN_SCORE} to {MAX_SCORE}, or null when not scored)"
_WHOLE = f"a whole score from {MIN_SCORE} to {MAX_SCORE}, or null"
_STRING = "a string or null"
_NUMBER = "a finite number or null"


@dataclass(frozen=True)
class ScoreColumn:
    """One axis' scores in a document: ``rows`` index :attr:`ScoresDocument.cases`,
    ``values`` hold the scores (compact arrays, not one object per score)."""

    rows: array  # array("q")
    values: array  # array("d")


@dataclass(frozen=True)
class ScoresDocument:
    """A ``scores.json`` document that :func:`check_scores` accepted: every field a reader
    uses has its type, and each case appears once. ``data`` is the parsed document itself;
    ``cases`` is each result row's (suite, video) and ``columns`` the scores by axis (the
    general metrics and ``physical.laws``), so that readers need not walk the rows again."""

    name: str
    data: Mapping[str, Any]
    cases: tuple[CaseKey, ...]
    columns: Mapping[str, ScoreColumn]

    @property
    def meta(self) -> Mapping[str, Any]:
        meta = self.data.get("meta")
        return meta if isinstance(meta, dict) else {}

    @property
    def results(self) -> list[dict[str, Any]]:
        return self.data["results"]


def _key_path(path: str, key: str) -> str:
    if not path and _IDENTIFIER.match(key):
        return key
    if _IDENTIFIER.match(key) and len(key) <= 60:
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key if len(key) <= 60 else key[:57] + '...')}]"


def _shown(value: Any) -> str:
    """A value as a message shows it: short, and with control characters escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_score(value: Any) -> bool:
    return _is_number(value) and MIN_SCORE <= value <= MAX_SCORE


def _score_ok(value: Any) -> bool:
    """``_is_score`` by exact types, for the million-row loop (NaN and infinities fail
    the range; a bool is not an int here)."""
    kind = type(value)
    return (kind is int or kind is float) and MIN_SCORE <= value <= MAX_SCORE


#: How the row checker treats each field it knows (the rest no reader uses).
_ROW_FIELDS: dict[str, str] = {
    **dict.fromkeys(GENERAL_METRICS, "metric"),
    **dict.fromkeys(("suite", "prompt", "video_path", "file", "sheet", "generator"), "text"),
    "physical": "physical",
    **dict.fromkeys(("physical_laws", "general_avg", "passed", "checks", "samples"), "rare"),
}


class _Reader:
    """One pass over a document: every check, and the score columns on the way."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.case: str | None = None
        self.columns: dict[str, tuple[array, array]] = {
            axis: (array("q"), array("d")) for axis in ALL_AXES
        }

    # ----------------------------------------------------------------- errors

    def fail(self, path: str, problem: str) -> InputError:
        case = f" (case {_shown(self.case)})" if self.case is not None else ""
        return InputError(f"{self.name}: {path}{case} {problem}. {_FIX}")

    def wrong(self, path: str, value: Any, expected: str) -> InputError:
        return self.fail(path, f"= {_shown(value)}, which is not {expected}")

    # ----------------------------------------------------------------- leaves

    def string(self, row: Mapping[str, Any], key: str, path: str) -> None:
        value = row.get(key)
        if value is not None and not isinstance(value, str):
            raise self.wrong(_key_path(path, key), value, _STRING)

    def number(self, row: Mapping[str, Any], key: str, path: str) -> None:
        value = row.get(key)
        if value is not None and not _is_number(value):
            raise self.wrong(_key_path(path, key), value, _NUMBER)

    def boolean(self, row: Mapping[str, Any], key: str, path: str) -> None:
        value = row.get(key)
        if value is not None and not isinstance(value, bool):
            raise self.wrong(_key_path(path, key), value, "true, false or null")

    def score(self, row: Mapping[str, Any], key: str, path: str) -> Any:
        value = row.get(key)
        if value is not None and not _is_score(value):
            raise self.wrong(_key_path(path, key), value, _SCORE)
        return value

    def obj(self, row: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
        value = row.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.wrong(_key_path(path, key), value, "an object or null")
        return value

    def strings(self, row: Mapping[str, Any], key: str, path: str) -> None:
        value = row.get(key)
        if value is None:
            return
        if not isinstance(value, list):
            raise self.wrong(_key_path(path, key), value, "a list of strings or null")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.wrong(f"{_key_path(path, key)}[{i}]", item, "a string")

    def axis(self, name: str, path: str, *, law: bool) -> None:
        if law and name in GENERAL_METRICS:
            raise self.fail(
                _key_path(path, name),
                f"is the general metric {name!r} filed as a physical law: a general metric "
                f'is a field of the row ("{name}": 4), not an entry of physical.laws',
            )
        if name not in ALL_AXES:
            close = difflib.get_close_matches(name, ALL_AXES, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.fail(
                _key_path(path, name),
                f"is not one of the judge's axes{hint}: they are the general metrics "
                f"{', '.join(GENERAL_METRICS)} and the laws {', '.join(PHYSICAL_LAWS)}",
            )

    # ----------------------------------------------------------------- the document

    def meta(self, data: Mapping[str, Any]) -> None:
        meta = self.obj(data, "meta", "")
        path = "meta"
        for key in ("video_model", "generator", "created", "tool", "version", "source"):
            self.string(meta, key, path)
        self.boolean(meta, "scores_meaningless", path)
        self.judge(self.obj(meta, "judge", path), f"{path}.judge")
        judges = meta.get("judges")
        if judges is not None:
            if not isinstance(judges, list):
                raise self.wrong(f"{path}.judges", judges, "a list of judges (objects) or null")
            for i, judge in enumerate(judges):
                if not isinstance(judge, dict):
                    raise self.wrong(f"{path}.judges[{i}]", judge, "a judge (an object)")
                self.judge(judge, f"{path}.judges[{i}]")
        self.obj(meta, "settings", path)
        self.obj(meta, "run", path)

    def judge(self, judge: Mapping[str, Any], path: str) -> None:
        for key in ("kind", "adapter", "revision", "base", "adapter_sha256"):
            self.string(judge, key, path)

    def read(self, data: Any) -> ScoresDocument:
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            if isinstance(data, dict):
                what = (
                    f"its results are {_shown(data['results'])}"
                    if "results" in data
                    else "it has none"
                )
            else:
                what = f"it is {'a list' if isinstance(data, list) else _shown(data)}"
            raise InputError(
                f"{self.name} is not a scores.json report: it has no 'results' list ({what}); "
                f"{_SHAPE}. Point at a scores.json written by pytest --phyjudge-report or "
                "phyjudge score-dir, or a PhyGround results file."
            )
        self.meta(data)
        num = data.get("num_videos")
        if num is not None and not (
            isinstance(num, int) and not isinstance(num, bool) and num >= 0
        ):
            raise self.wrong("num_videos", num, "a count (a whole number) or null")
        self.strings(data, "general_dimensions", "")
        cases: list[CaseKey] = []
        first: dict[CaseKey, int] = {}
        for index, row in enumerate(data["results"]):
            self.case = None
            key = self.row(row, index)
            seen = first.setdefault(key, index)
            if seen != index:
                suite = "" if key[0] is None else f" of suite {_shown(key[0])}"
                raise InputError(
                    f"{self.name}: results[{seen}] and results[{index}] are the same case "
                    f"(video {_shown(key[1])}{suite}). A report holds one row per case "
                    "(PhyGround's results hold one per prompt; several clips of a prompt go "
                    "to one file per generator), so there is no telling which to use: remove "
                    "or rename one of them."
                )
            cases.append(key)
        self.case = None
        return ScoresDocument(
            name=self.name,
            data=data,
            cases=tuple(cases),
            columns={
                axis: ScoreColumn(rows, values)
                for axis, (rows, values) in self.columns.items()
                if len(rows)
            },
        )

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
                    raise self.wrong(_key_path(f"results[{index}]", key), value, _STRING)
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
        if key == "physical_laws":
            self.strings(row, key, path)
        elif key == "general_avg":
            self.number(row, key, path)
        elif key == "passed":
            self.boolean(row, key, path)
        elif key == "checks":
            for axis, entry in self.obj(row, key, path).items():
                self.axis(axis, f"{path}.checks", law=False)
                self.check(entry, _key_path(f"{path}.checks", axis))
        elif key == "samples":
            for axis, scores in self.obj(row, key, path).items():
                if not isinstance(scores, list):
                    raise self.wrong(
                        _key_path(f"{path}.samples", axis),
                        scores,
                        "a list of whole scores (null: not scored)",
                    )

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
                    where = _key_path(f"results[{index}].physical.laws", law)
                    raise self.wrong(where, entry, 'an object ({"score": 3})')
                score = entry.get("score")
                if score is not None:
                    if not _score_ok(score):
                        where = _key_path(f"results[{index}].physical.laws", law)
                        raise self.wrong(f"{where}.score", score, _SCORE)
                    column[0].append(index)  # type: ignore[index]
                    column[1].append(score)  # type: ignore[index]
                if len(entry) > 1:
                    where = _key_path(f"results[{index}].physical.laws", law)
                    self.string(entry, "status", where)
                    self.string(entry, "error", where)
        if len(physical) > 1:
            path = f"results[{index}].physical"
            self.strings(physical, "missing_laws", path)
            self.number(physical, "coverage", path)
            self.number(physical, "avg", path)

    def check(self, entry: Any, path: str) -> None:
        if not isinstance(entry, dict):
            raise self.wrong(path, entry, 'an object ({"score": 3, ...})')
        self.score(entry, "score", path)
        min_score = entry.get("min_score")
        if min_score is not None and not (
            isinstance(min_score, int) and not isinstance(min_score, bool) and _is_score(min_score)
        ):
            raise self.wrong(f"{path}.min_score", min_score, _WHOLE)
        self.boolean(entry, "passed", path)
        for key in ("outcome", "nodeid", "raw", "error", "sheet"):
            self.string(entry, key, path)
        self.score(entry, "expected", path)
        probs = entry.get("probs")
        if probs is not None and not (
            isinstance(probs, list) and all(_is_number(p) and 0 <= p <= 1 for p in probs)
        ):
            raise self.wrong(f"{path}.probs", probs, "a list of probabilities or null")
        prompt = self.obj(entry, "prompt", path)
        if prompt:
            for key in ("system", "user"):
                if not isinstance(prompt.get(key), str):
                    raise self.wrong(f"{path}.prompt.{key}", prompt.get(key), "a string")
        baseline = self.obj(entry, "baseline", path)
        if baseline:
            if not isinstance(baseline.get("status"), str):
                raise self.wrong(f"{path}.baseline.status", baseline.get("status"), "a string")
            for key in ("stored", "obtained", "tolerance"):
                self.number(baseline, key, f"{path}.baseline")
        self.obj(entry, "summary", path)
        samples = entry.get("samples")
        if samples is not None:
            if not isinstance(samples, list):
                raise self.wrong(f"{path}.samples", samples, "a list of samples or null")
            for i, sample in enumerate(samples):
                self.sample(sample, f"{path}.samples[{i}]")

    def sample(self, sample: Any, path: str) -> None:
        if not isinstance(sample, dict):
            raise self.wrong(path, sample, "a sample (an object)")
        for key in ("sample", "seed", "score", "expected", "error"):
            if key not in sample:
                raise self.fail(
                    path, f"has no {key!r} (a sample holds sample, seed, score, expected and error)"
                )
        number = sample["sample"]
        if not isinstance(number, int) or isinstance(number, bool):
            raise self.wrong(f"{path}.sample", number, "a whole number")
        seed = sample["seed"]
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise self.wrong(f"{path}.seed", seed, "a whole number or null")
        self.score(sample, "score", path)
        self.score(sample, "expected", path)
        self.string(sample, "error", path)
        self.string(sample, "video", path)


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
