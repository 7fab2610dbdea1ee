"""Duplicate ids, ids of two types, colliding case keys and a general metric under
``physical.laws`` in results files (issue 19, item 6); and ``scores.json`` files whose
fields have the wrong types, for ``phyjudge report`` (item 8).

Clean for a duplicate: a refusal (non-zero exit) whose message names the id, or output
that demonstrably used both rows: it differs from the output of the same command on each
file with one of the two rows dropped (what a silent merge gives). Clean for a wrong type:
no traceback, a result (a refusal or a report).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tally import kit
from tally.model import NotClean, Probe, expect
from tally.probes import cli

DUP = "results: duplicates and key collisions"
SHAPES = "report: scores.json field types"
ANY = expect("returned", "error")


def _row(video: Any, sa: int, suite: str | None = None, laws: dict | None = None) -> dict:
    row: dict[str, Any] = {
        "video": video,
        "SA": sa,
        "PTV": 3,
        "persistence": 3,
        "physical": {"laws": laws if laws is not None else {"gravity": {"score": sa}}},
    }
    if suite is not None:
        row["suite"] = suite
    return row


BASE = [_row("b", 4), _row("c", 2), _row("d", 3)]

#: name -> (rows of the hostile file, indexes of the pair that must not silently merge, id)
CASES: dict[str, tuple[list[dict], tuple[int, int], str]] = {
    "same_id": ([_row("a", 1), _row("a", 5), *BASE], (0, 1), "a"),
    "int_and_string_id": ([_row(1, 1), _row("1", 5), *BASE], (0, 1), "1"),
    "colon_key_collision": (
        [_row("c", 1, suite="a::b"), _row("b::c", 5, suite="a"), *BASE],
        (0, 1),
        "a::b",
    ),
    "id_with_whitespace": ([_row("a", 1), _row("a ", 5), *BASE], (0, 1), "a"),
}


def _run(command: str, folder: Path, mine: list[dict], other: list[dict]) -> str:
    a, b = folder / "A.json", folder / "B.json"
    a.write_text(json.dumps({"meta": {"video_model": "runA"}, "results": other}))
    b.write_text(json.dumps({"meta": {"video_model": "runB"}, "results": mine}))
    args = [command, str(a), str(b), "--format", "json"]
    text = cli(*args)(folder)
    return text.replace(str(folder), "<folder>")


def _duplicate(command: str, where: str, case: str) -> Callable[[Path], str]:
    rows, (i, j), ident = CASES[case]

    def run(folder: Path) -> str:
        other_rows = [_row(r["video"], 3, r.get("suite")) for r in rows]
        if where == "A":
            hostile = _run(command, folder, other_rows, rows)
            variants = [
                _run(command, folder, other_rows, [r for k, r in enumerate(rows) if k != drop])
                for drop in (i, j)
            ]
        else:
            hostile = _run(command, folder, rows, other_rows)
            variants = [
                _run(command, folder, [r for k, r in enumerate(rows) if k != drop], other_rows)
                for drop in (i, j)
            ]
        refused = not hostile.startswith("exit 0")
        if refused:
            if ident not in hostile:
                raise NotClean(f"refused without naming the id {ident!r}: {kit_first(hostile)}")
            return hostile
        if hostile in variants:
            raise NotClean(f"the two rows of {ident!r} were silently merged into one")
        return hostile

    return run


def kit_first(text: str) -> str:
    return " / ".join(line for line in text.splitlines()[:3] if line.strip())[:160]


def _general_law(command: str) -> Callable[[Path], str]:
    """A general metric (SA) under physical.laws: an error, or ignored (not merged)."""

    def run(folder: Path) -> str:
        rows = [_row("a", 1, laws={"SA": {"score": 5}, "gravity": {"score": 1}}), *BASE]
        plain = [_row("a", 1), *BASE]
        other = [_row(r["video"], 3) for r in rows]
        hostile = _run(command, folder, rows, other)
        if not hostile.startswith("exit 0"):
            if "SA" not in hostile:
                raise NotClean(f"refused without naming SA: {kit_first(hostile)}")
            return hostile
        if hostile != _run(command, folder, plain, other):
            raise NotClean("a general metric under physical.laws changed the result")
        return hostile

    return run


def duplicates() -> Iterator[Probe]:
    for command in ("compare", "agree", "leaderboard"):
        for case in CASES:
            for where in ("A", "B") if command != "leaderboard" else ("B",):
                name = f"dup_{command}_{case}_in_{where}"
                yield Probe(DUP, name, _duplicate(command, where, case), ANY, None, 30.0)
        yield Probe(
            DUP, f"dup_{command}_general_metric_in_laws", _general_law(command), ANY, None, 30.0
        )


# --------------------------------------------------------------------------- field types


def _put(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        node: Any = data
        for key in path[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(path[-1])] = value
        else:
            node[path[-1]] = value

    return change


SHAPE_CHANGES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "top_list": lambda d: [d],
    "results_string": _put("results", value="abc"),
    "results_object": _put("results", value={"a": 1}),
    "row_string": _put("results", "0", value="row"),
    "row_list": _put("results", "0", value=[1, 2]),
    "meta_list": _put("meta", value=[1]),
    "meta_string": _put("meta", value="meta"),
    "judge_string": _put("meta", "judge", value="judge"),
    "judges_object": _put("meta", "judges", value={"a": 1}),
    "settings_list": _put("meta", "settings", value=[1]),
    "run_string": _put("meta", "run", value="run"),
    "checks_list": _put("results", "0", "checks", value=[1]),
    "check_string": _put("results", "0", "checks", "SA", value="SA"),
    "check_score_string": _put("results", "0", "checks", "SA", "score", value="four"),
    "check_prompt_list": _put("results", "0", "checks", "SA", "prompt", value=[1]),
    "physical_list": _put("results", "0", "physical", value=[1]),
    "laws_list": _put("results", "0", "physical", "laws", value=[1]),
    "law_string": _put("results", "0", "physical", "laws", "gravity", value="x"),
    "law_score_object": _put("results", "0", "physical", "laws", "gravity", "score", value={}),
    "video_list": _put("results", "0", "video", value=["a"]),
    "video_object": _put("results", "0", "video", value={"a": 1}),
    "prompt_object": _put("results", "0", "prompt", value={"p": 1}),
    "sheet_number": _put("results", "0", "sheet", value=7),
    "sheet_object": _put("results", "0", "sheet", value={"p": 1}),
    "video_path_number": _put("results", "0", "video_path", value=12),
    "sa_string": _put("results", "0", "SA", value="high"),
    "sa_nan": _put("results", "0", "SA", value=float("nan")),
    "physical_laws_field_object": _put("results", "0", "physical_laws", value={"a": 1}),
    "general_dimensions_string": _put("general_dimensions", value="SA"),
    "num_videos_string": _put("num_videos", value="two"),
}


def _shape(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        scores = kit.write_scores(folder, change)
        return cli("report", str(scores), "--html", str(folder / "site"))(folder)

    return run


def shapes() -> Iterator[Probe]:
    for name, change in SHAPE_CHANGES.items():
        yield Probe(SHAPES, f"report_type_{name}", _shape(change), ANY, None, 20.0)


def duplicate_probes() -> list[Probe]:
    return [*duplicates(), *shapes()]
