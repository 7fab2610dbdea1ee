"""The layout keeps its promises: a light core, one public API, no cycles, no test helpers
in production code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_phyjudge

PACKAGE = Path(pytest_phyjudge.__file__).parent
#: Subpackages that any code may use: pure values and logic, no pytest and no model.
PURE = ("pytest_phyjudge.engine", "pytest_phyjudge.regression", "pytest_phyjudge.reporting")
HEAVY = ("torch", "transformers", "peft", "accelerate", "decord", "qwen_vl_utils")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _top_level_imports(path: Path, name: str) -> set[str]:
    """Modules imported when ``path`` is imported (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imported: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            imported.add(base)
            imported.update(f"{base}.{alias.name}" for alias in node.names)
    return imported


def test_public_names_are_sorted_and_importable() -> None:
    names = pytest_phyjudge.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for name in names:
        assert getattr(pytest_phyjudge, name) is not None
    # What users receive from the factory, the fixture and the reports is exported too.
    for name in ("LocalJudge", "RemoteJudge", "CachedJudge", "ScriptedJudge", "Check"):
        assert name in names


@pytest.mark.parametrize("package", ("pytest_phyjudge", *PURE))
def test_pure_packages_import_neither_pytest_nor_a_model(package: str) -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        f"    if {package!r} != 'pytest_phyjudge': importlib.import_module(info.name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {('pytest', *HEAVY)!r})\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"importing {package} loads {done.stdout.strip()}"


def test_production_code_never_imports_the_testing_package() -> None:
    offenders = []
    for name, path in _modules().items():
        if name.startswith("pytest_phyjudge.testing"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "pytest_phyjudge.testing"
            ):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
            if isinstance(node, ast.Import) and any(
                a.name.startswith("pytest_phyjudge.testing") for a in node.names
            ):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert offenders == []


def test_no_import_cycle_between_modules() -> None:
    modules = _modules()
    graph = {
        name: {m for m in _top_level_imports(path, name) if m in modules and m != name}
        for name, path in modules.items()
    }
    # A package's __init__ re-exporting its own modules is not a cycle of theirs.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
                return True
            if nxt not in state and visit(nxt, [*trail, nxt]):
                return True
        state[node] = 2
        return False

    for name in sorted(graph):
        if name not in state and visit(name, [name]):
            break
    assert cycle == [], " -> ".join(cycle)


def test_modules_stay_small() -> None:
    sizes = {
        str(path.relative_to(PACKAGE.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in _modules().values()
    }
    assert {name: n for name, n in sizes.items() if n > 440} == {}  # issue 20 item 7 drops the cap
