"""Duplicates are decided, not dropped, and every reader of scores.json checks it the same
way: two rows of one case are an error naming both, ids keep their type, case keys are
tuples, a general metric under ``physical.laws`` is an error, and a field of the wrong type
is named by its JSON path (``phyjudge report``, ``compare``, ``agree``, ``leaderboard``),
never a traceback. A long comparison ends in seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_phyjudge.cli.main import main
from pytest_phyjudge.regression.compare import read_report, scores_from_entries

COMMANDS = ("compare", "agree", "leaderboard", "report")


def row(video: Any, sa: Any = 4, **extra: Any) -> dict[str, Any]:
    return {"video": video, "SA": sa, "physical": {"laws": {"gravity": {"score": 3}}}, **extra}


def write(folder: Path, name: str, rows: list[Any], **top: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps({"results": rows, **top}), encoding="utf-8")
    return path


def good(folder: Path) -> Path:
    return write(folder, "good.json", [row("a"), row("b"), row("c")])


def run(command: str, bad: Path, folder: Path) -> list[str]:
    """The argument list of ``command`` with ``bad`` as the report it reads."""
    if command == "report":
        return ["report", str(bad), "--html", str(folder / "html")]
    if command == "leaderboard":
        return ["leaderboard", str(good(folder)), str(bad)]
    return [command, str(good(folder)), str(bad)]


def refused(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    """Run the command: it must exit 2 with a message (no traceback); return the message."""
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert "Traceback" not in err
    return err


# --------------------------------------------------------------------------- duplicates


@pytest.mark.parametrize("command", COMMANDS)
def test_two_rows_of_one_case_are_an_error_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    bad = write(tmp_path, "dup.json", [row("a", 5), row("b"), row("a", 1)])
    err = refused(capsys, run(command, bad, tmp_path))
    assert "dup.json" in err and "results[0]" in err and "results[2]" in err
    assert "'a'" in err and "same case" in err
    assert not (tmp_path / "html").exists()
    # (suite, video) is the case: one clip id in two suites is not a duplicate.
    two = write(tmp_path, "two.json", [row("a", suite="s1"), row("a", suite="s2")])
    assert len(read_report(two).cases) == 2


@pytest.mark.parametrize("command", COMMANDS)
def test_a_number_id_is_not_a_string_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """1 and "1" do not merge: an id that is not a string is refused, naming the row."""
    bad = write(tmp_path, "ids.json", [row("1"), row(1)])
    err = refused(capsys, run(command, bad, tmp_path))
    assert "results[1].video = 1" in err and "string" in err


def test_a_number_id_does_not_pair_with_a_string_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path, "a.json", [row("1", 5)])
    b = write(tmp_path, "b.json", [row(1, 1)])
    err = refused(capsys, ["compare", str(a), str(b)])
    assert "b.json" in err and "results[0].video = 1" in err


def test_case_keys_are_tuples(tmp_path: Path) -> None:
    """('a::b', 'c') and ('a', 'b::c') are two cases, in a report and in a baseline's run."""
    path = write(tmp_path, "r.json", [row("c", 5, suite="a::b"), row("b::c", 1, suite="a")])
    scores = read_report(path)
    assert len({case for case, _ in scores.values}) == 2
    assert sorted(v for (_, axis), v in scores.values.items() if axis == "SA") == [1.0, 5.0]
    entries = scores_from_entries(
        [(("a::b", "c", "SA"), 5.0), (("a", "b::c", "SA"), 1.0)], "baseline"
    )
    assert len({case for case, _ in entries.values}) == 2


def test_colliding_keys_pair_with_their_own_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path, "a.json", [row("c", 5, suite="a::b"), row("b::c", 1, suite="a")])
    b = write(tmp_path, "b.json", [row("c", 5, suite="a::b")])
    assert main(["compare", str(a), str(b), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["shared_cases"] == 1 and data["only_a"] == 1


@pytest.mark.parametrize("command", COMMANDS)
def test_a_key_twice_in_one_object_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    bad = tmp_path / "twice.json"
    bad.write_text('{"results": [{"video": "a", "SA": 1, "SA": 5}]}', encoding="utf-8")
    err = refused(capsys, run(command, bad, tmp_path))
    assert "twice.json" in err and "'SA' twice" in err


@pytest.mark.parametrize("metric", ["SA", "PTV", "persistence"])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_general_metric_under_laws_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, metric: str
) -> None:
    rows = [row("a"), {"video": "b", "physical": {"laws": {metric: {"score": 2}}}}]
    bad = write(tmp_path, "laws.json", rows)
    err = refused(capsys, run(command, bad, tmp_path))
    assert f"results[1].physical.laws.{metric}" in err and "general metric" in err


def test_an_unknown_law_is_named_with_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, "law.json", [{"video": "a", "physical": {"laws": {"gravty": {}}}}])
    err = refused(capsys, ["leaderboard", str(bad)])
    assert "results[0].physical.laws.gravty" in err and "'gravity'" in err


# --------------------------------------------------------------------------- wrong types

CHECK = {"score": 4, "raw": "{}", "passed": True, "min_score": 3}

#: (what the document holds, the JSON path the message must name)
SHAPES: list[tuple[dict[str, Any], str]] = [
    ({"meta": [1, 2], "results": [row("a")]}, "meta"),
    ({"meta": "gen-x", "results": [row("a")]}, "meta"),
    ({"meta": {"judges": "local"}, "results": [row("a")]}, "meta.judges"),
    ({"meta": {"judges": [1]}, "results": [row("a")]}, "meta.judges[0]"),
    ({"meta": {"judge": ["local"]}, "results": [row("a")]}, "meta.judge"),
    ({"meta": {"video_model": 7}, "results": [row("a")]}, "meta.video_model"),
    ({"results": [None]}, "results[0]"),
    ({"results": [row("a"), "b"]}, "results[1]"),
    ({"results": [{"video": "a", "physical": "gravity"}]}, "results[0].physical"),
    ({"results": [{"video": "a", "physical": {"laws": ["gravity"]}}]}, "results[0].physical.laws"),
    ({"results": [{"video": "a", "physical": {"laws": {"gravity": 3}}}]}, "laws.gravity"),
    (
        {"results": [{"video": "a", "physical": {"laws": {"gravity": {"score": "x"}}}}]},
        "results[0].physical.laws.gravity.score",
    ),
    ({"results": [{"video": "a", "SA": "high"}]}, "results[0].SA"),
    ({"results": [{"video": ["a"]}]}, "results[0].video"),
    ({"results": [{"video": "a", "prompt": {"text": "p"}}]}, "results[0].prompt"),
    ({"results": [{"video": "a", "video_path": 5}]}, "results[0].video_path"),
    ({"results": [{"video": "a", "sheet": ["s.png"]}]}, "results[0].sheet"),
    ({"results": [{"video": "a", "suite": {"name": "s"}}]}, "results[0].suite"),
    ({"results": [{"video": "a", "checks": "SA"}]}, "results[0].checks"),
    ({"results": [{"video": "a", "checks": {"SA": 4}}]}, "results[0].checks.SA"),
    ({"results": [{"video": "a", "checks": {"SA": {**CHECK, "score": "x"}}}]}, "checks.SA.score"),
    ({"results": [{"video": "a", "checks": {"SA": {**CHECK, "probs": 3}}}]}, "checks.SA.probs"),
    (
        {"results": [{"video": "a", "checks": {"SA": {**CHECK, "probs": ["x"]}}}]},
        "checks.SA.probs",
    ),
    (
        {"results": [{"video": "a", "checks": {"SA": {**CHECK, "min_score": "3"}}}]},
        "checks.SA.min_score",
    ),
    (
        {"results": [{"video": "a", "checks": {"SA": {**CHECK, "baseline": "drop"}}}]},
        "checks.SA.baseline",
    ),
    (
        {"results": [{"video": "a", "checks": {"SA": {**CHECK, "prompt": "hi"}}}]},
        "checks.SA.prompt",
    ),
    (
        {"results": [{"video": "a", "checks": {"SA": {**CHECK, "prompt": {"system": None}}}}]},
        "checks.SA.prompt.system",
    ),
    ({"results": [{"video": "a", "checks": {"SA": {**CHECK, "samples": 3}}}]}, "SA.samples"),
    ({"results": [{"video": "a", "checks": {"SA": {**CHECK, "samples": [1]}}}]}, "samples[0]"),
    ({"results": [{"video": "a", "checks": {"SA": {**CHECK, "raw": 5}}}]}, "checks.SA.raw"),
    ({"results": [{"video": "a", "checks": {"gravty": CHECK}}]}, "results[0].checks.gravty"),
]


@pytest.mark.parametrize(
    ("document", "path"), SHAPES, ids=[f"{i}-{p}" for i, (_, p) in enumerate(SHAPES)]
)
def test_report_names_the_wrong_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: dict[str, Any], path: str
) -> None:
    bad = tmp_path / "scores.json"
    bad.write_text(json.dumps(document), encoding="utf-8")
    err = refused(capsys, ["report", str(bad), "--html", str(tmp_path / "html")])
    assert "scores.json" in err and path in err
    assert "Fix that field" in err or "expected" in err or "twice" in err
    assert not (tmp_path / "html").exists()


@pytest.mark.parametrize("command", ["compare", "agree", "leaderboard"])
@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"meta": [1], "results": [row("a")]}, "meta"),
        ({"meta": {"judge": "j"}, "results": [row("a")]}, "meta.judge"),
        ({"results": [{"video": "a", "checks": {"SA": {"score": 9}}}]}, "checks.SA.score"),
        ({"results": [{"video": "a", "SA": 4, "suite": ["s"]}]}, "results[0].suite"),
    ],
)
def test_every_reader_checks_the_same_fields(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    document: dict[str, Any],
    path: str,
) -> None:
    bad = tmp_path / "scores.json"
    bad.write_text(json.dumps(document), encoding="utf-8")
    err = refused(capsys, run(command, bad, tmp_path))
    assert "scores.json" in err and path in err


def test_a_hostile_string_in_the_message_is_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The value shown is short and its control characters escaped (it goes to a terminal)."""
    bad = write(tmp_path, "esc.json", [{"video": "a", "SA": "\x1b[31m" + "x" * 10_000}])
    err = refused(capsys, ["compare", str(good(tmp_path)), str(bad)])
    assert "\x1b" not in err and "\\x1b[31m" in err and len(err) < 1000


# --------------------------------------------------------------------------- long inputs

LONG = """
import json, sys
from pathlib import Path
folder = Path(sys.argv[1])
for name, shift in (("a", 0), ("b", 1)):
    rows = [
        {"video": f"v{i}", **{m: 1 + (i * k + shift * (i % 3)) % 5 for k, m in ((7, "SA"),
        (3, "PTV"), (2, "persistence"))}}
        for i in range(200_000)
    ]
    (folder / f"{name}.json").write_text(json.dumps({"results": rows}))
from pytest_phyjudge.cli.main import main
sys.exit(main(["compare", str(folder / "a.json"), str(folder / "b.json"), "--format", "json"]))
"""


def test_a_comparison_of_200_000_cases_ends_in_seconds(tmp_path: Path) -> None:
    """200,000 cases of 3 axes: resampling by counts of distinct values, not element by
    element (which took minutes), in a child process so that a slow one is cut off."""
    done = subprocess.run(
        [sys.executable, "-c", LONG, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["shared_cases"] == 200_000 and data["axes"][0]["n"] == 200_000
