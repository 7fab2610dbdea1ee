"""The benchmark scripts print figures for users: labels that say what a figure is, never
where the project stood when the script was written."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
#: Words of a changelog, not of a measurement: "(before)", "(now)", a development "target".
HISTORY = re.compile(r"\((before|now|after)\)|\btargets?\b", re.IGNORECASE)


def _printed_strings(path: Path) -> list[tuple[int, str]]:
    """The string constants of ``path`` outside docstrings (labels, f-string parts)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_benchmarks_print_no_development_history() -> None:
    found = [
        f"{path.name}:{line}: {text!r}"
        for path in sorted(BENCHMARKS.glob("*.py"))
        for line, text in _printed_strings(path)
        if HISTORY.search(text)
    ]
    assert not found, "\n".join(found)


def test_false_alarm_figures_are_labelled_by_what_they_count(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_false_alarms", BENCHMARKS / "bench_false_alarms.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(sys, "argv", ["bench_false_alarms.py", "--runs", "1"])
    bench.main()
    labels = [line.split(":")[0].strip() for line in capsys.readouterr().out.splitlines()]
    assert labels == ["raw p", "Holm-adjusted p"]
