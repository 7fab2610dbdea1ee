"""Mutations of a full scores.json (a pytest report's row: checks, samples, baseline,
prompt, meta, judges): every field set to each of 14 wrong values (strings, lists, objects,
numbers out of range, NaN, a 31-digit integer, true, null) or deleted. Each document either
is refused by ``scores.check_scores`` with an InputError, or goes through
compare, agree, leaderboard and the HTML report without an exception. Prints the counts.

    python benchmarks/fuzz_scores_json.py

A script that prints figures, not a test (about a minute on 2 cores).
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.regression.agreement import agreement
from pytest_phyjudge.regression.compare import compare, scores_from_document
from pytest_phyjudge.regression.leaderboard import leaderboard
from pytest_phyjudge.reporting.html import write_html_report
from pytest_phyjudge.scores import check_scores

CHECK: dict[str, Any] = {
    "score": 4,
    "min_score": 3,
    "passed": True,
    "outcome": "passed",
    "nodeid": "x::a::SA",
    "raw": "{}",
    "error": None,
    "sheet": None,
    "probs": [0, 0, 0, 1, 0],
    "expected": 4.0,
    "prompt": {"system": "s", "user": "u"},
    "samples": [
        {"sample": 0, "seed": 1, "video": "v.mp4", "score": 4, "expected": 4.0, "error": None}
    ],
    "summary": {"passed": True},
    "baseline": {"status": "same", "stored": 4, "obtained": 4, "tolerance": 0, "measure": "score"},
}
DOC: dict[str, Any] = {
    "meta": {
        "tool": "pytest-phyjudge",
        "version": "1",
        "created": "2026",
        "judge": {
            "kind": "local",
            "adapter": "a",
            "revision": None,
            "base": None,
            "adapter_sha256": None,
        },
        "judges": [{"kind": "local", "adapter": "a"}],
        "scores_meaningless": False,
        "settings": {},
        "run": {},
        "generator": "g",
    },
    "num_videos": 1,
    "general_dimensions": ["SA", "PTV", "persistence"],
    "results": [
        {
            "video": "a",
            "prompt": "p",
            "physical_laws": ["gravity"],
            "SA": 4,
            "PTV": 3,
            "persistence": None,
            "general_avg": 3.5,
            "physical": {
                "laws": {"gravity": {"score": 2, "status": "scored"}},
                "missing_laws": [],
                "coverage": 1.0,
                "avg": 2.0,
            },
            "suite": "s",
            "video_path": None,
            "sheet": None,
            "passed": True,
            "samples": {"SA": [4]},
            "checks": {"SA": CHECK, "gravity": {**CHECK, "score": 2}},
        }
    ],
}
DELETE = object()
BAD_VALUES: list[Any] = [
    "x",
    "",
    [],
    [1],
    {},
    {"a": 1},
    0,
    -1,
    7,
    3.5,
    float("nan"),
    10**30,
    True,
    None,
]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every node under ``node`` (keys and list indexes)."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


def mutated(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """``DOC`` with the node at ``path`` set to ``value`` (deleted for ``DELETE``)."""
    d = copy.deepcopy(DOC)
    parent: Any = d
    for p in path[:-1]:
        parent = parent[p]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return d


def crashes(document: dict[str, Any], out: Path) -> str | None:
    """None when the document is refused with an InputError or read by every command;
    else the exception that escaped."""
    try:
        checked = check_scores(json.loads(json.dumps(document)), "f.json")
    except InputError:
        return None
    try:
        scores = scores_from_document(checked)
        try:
            compare(scores, scores)
            agreement(scores, scores)
        except InputError:
            pass
        leaderboard([scores])
        write_html_report(checked, out, base=out.parent)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:150]}"
    return None


def main() -> None:
    out = Path(tempfile.mkdtemp()) / "html"
    tried = crashed = 0
    for path in list(paths(DOC))[1:]:
        for value in [*BAD_VALUES, DELETE]:
            tried += 1
            found = crashes(mutated(path, value), out)
            if found:
                crashed += 1
                print(path, "deleted" if value is DELETE else repr(value), found)
    print(f"{tried} mutated documents, {crashed} crashed after passing the check")


if __name__ == "__main__":
    main()
