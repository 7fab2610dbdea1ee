"""The layout keeps its promises: a light core, one public API, no circles between modules
(counting every import, those inside functions too), no test helpers in production code.

There is no cap on a module's length: a module holds one job, however long.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Container, Iterable, Iterator, Mapping
from pathlib import Path

import pytest

import pytest_phyjudge

PACKAGE = Path(pytest_phyjudge.__file__).parent
#: Subpackages that any code may use: pure values and logic, no pytest and no model.
PURE = (
    "pytest_phyjudge.engine",
    "pytest_phyjudge.regression",
    "pytest_phyjudge.reporting",
    "pytest_phyjudge.scores",
)
HEAVY = ("torch", "transformers", "peft", "accelerate", "decord", "qwen_vl_utils", "diffusers")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


#: A string naming a module to load, ``pkg.mod`` or ``pkg.mod:attr``.
_LOADABLE = re.compile(r"([A-Za-z_]\w*(?:\.\w+)+|[A-Za-z_]\w*(?=:))(?::[\w.]+)?")


def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``: imports only a type checker runs."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that may run: the whole tree, inside functions and classes too, less the
    bodies of ``if TYPE_CHECKING:`` (their ``else:`` runs, so it is kept)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imports(path: Path, name: str, modules: Container[str]) -> dict[str, int]:
    """The package's modules that running ``path`` may import, each with its first line.

    Every import counts, those inside functions too (a circle is a circle whenever it
    closes); relative imports are resolved. ``from pkg import mod`` counts as an import of
    ``pkg.mod``, not of ``pkg`` (the package's ``__init__`` is imported on the way, as for
    any submodule), and ``from pkg import name`` of anything else as an import of ``pkg``.
    A string that names a module to load (``"pkg.mod"``, ``"pkg.mod:attr"``, for importlib
    or an entry point) counts as an import of it.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(module: str, line: int) -> None:
        if module in modules and module != name:
            found.setdefault(module, line)

    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    add(f"{base}.{alias.name}", node.lineno)
                else:
                    add(base, node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            named = _LOADABLE.fullmatch(node.value)
            if named is not None:
                add(named.group(1), node.lineno)
    return found


def module_graph() -> dict[str, dict[str, int]]:
    """Each module of the package -> the package's modules it imports (and on which line).

    An import of a submodule is not counted as one of its packages' ``__init__`` (Python
    runs them on the way in; a package re-exporting its modules is no circle of theirs),
    but ``from pkg import name`` of a name the ``__init__`` defines is.
    """
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[tuple[str, ...]]:
    """The graph's circles as paths ``a -> b -> a``: for every import that closes one, the
    shortest circle through it, each circle once (starting at its first module by name).
    Every import that is part of any circle is in one of them, so a new import that closes
    a circle is always told, even beside an old circle."""
    circles = set()
    for group in _strongly_connected(graph):
        members = set(group)
        for start in group:
            for nxt in graph.get(start, ()):
                if nxt in members:
                    ring = (start, *_shortest_path(graph, nxt, start, members)[:-1])
                    first = ring.index(min(ring))
                    circles.add((*ring[first:], *ring[:first], ring[first]))
    return sorted(circles)


def _strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The groups of more than one module that reach each other (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def _shortest_path(
    graph: Mapping[str, Iterable[str]], start: str, end: str, members: set[str]
) -> tuple[str, ...]:
    """The shortest path ``start ... end`` inside ``members`` (breadth first, by name)."""
    came: dict[str, str] = {start: start}
    frontier = [start]
    while end not in came:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt in members and nxt not in came:
                    came[nxt] = node
                    following.append(nxt)
        frontier = following
    path = [end]
    while path[-1] != start:
        path.append(came[path[-1]])
    return tuple(reversed(path))


def describe_graph() -> str:
    """The module graph per subpackage and its circles, for a reader (``python
    benchmarks/module_graph.py`` prints it)."""
    graph = module_graph()
    short = {name: name.removeprefix("pytest_phyjudge.") for name in graph}
    by_package: dict[str, list[str]] = {}
    for name in graph:
        parts = short[name].split(".")
        by_package.setdefault(parts[0] if len(parts) > 1 else "(top)", []).append(name)
    lines = []
    for package, names in sorted(by_package.items()):
        edges = sum(len(graph[n]) for n in names)
        lines.append(f"{package}: {len(names)} modules, {edges} imports of the package's modules")
        for name in sorted(names):
            targets = ", ".join(short[m] for m in sorted(graph[name])) or "-"
            lines.append(f"  {short[name]} -> {targets}")
    cycles = find_cycles(graph)
    lines.append(f"circles: {len(cycles)}")
    lines += [f"  {' -> '.join(short[m] for m in cycle)}" for cycle in cycles]
    return "\n".join(lines)


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


#: A string that names the testing package as code to load (``module`` or ``module:attr``).
_TESTING_REFERENCE = re.compile(r"pytest_phyjudge\.testing(\.[\w.]+)?(:[\w.]+)?")


def test_production_code_never_imports_the_testing_package() -> None:
    """Not by an import (anywhere in a module), nor by a string naming it to be loaded
    (``"pytest_phyjudge.testing:..."`` for importlib or an entry point)."""
    offenders = []
    for name, path in _modules().items():
        if name.startswith("pytest_phyjudge.testing"):
            continue
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "pytest_phyjudge.testing"
            ):
                offenders.append(f"{where}:{node.lineno}")
            if isinstance(node, ast.Import) and any(
                a.name.startswith("pytest_phyjudge.testing") for a in node.names
            ):
                offenders.append(f"{where}:{node.lineno}")
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _TESTING_REFERENCE.fullmatch(node.value)
            ):
                offenders.append(f"{where}: {node.value!r}")
    assert sorted(offenders) == sorted(KNOWN_TESTING_REFERENCES)


#: Circles that exist today and are being removed (issue 20); the list may only shrink.
#: A new circle fails the test, and so does a listed one that is gone (remove it here).
KNOWN_CYCLES: set[tuple[str, ...]] = set()
#: References to the testing package from production code that are being removed.
KNOWN_TESTING_REFERENCES: set[str] = set()


def test_no_import_cycle_between_modules() -> None:
    """Counting every import, those inside functions too (``TYPE_CHECKING`` aside)."""
    cycles = set(find_cycles(module_graph()))
    new = sorted(" -> ".join(c) for c in cycles - KNOWN_CYCLES)
    gone = sorted(" -> ".join(c) for c in KNOWN_CYCLES - cycles)
    assert new == [], "import circles between modules:\n" + "\n".join(new)
    assert gone == [], "these circles are gone; remove them from KNOWN_CYCLES:\n" + "\n".join(gone)


def test_the_graph_reads_imports_inside_functions_and_relative_ones(tmp_path: Path) -> None:
    """The reader itself: an import in a function counts, ``TYPE_CHECKING`` does not, a
    relative import is resolved, a string naming a module to load counts, and a circle is
    reported as a path back to its start."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "if TYPE_CHECKING:\n"
        "    from pkg import c\n"
        "def f():\n"
        "    from .sub import d\n"
        "LOADED = 'pkg.e:make'\n"
    )
    path = tmp_path / "a.py"
    path.write_text(source, encoding="utf-8")
    modules = {"pkg.a", "pkg.b", "pkg.c", "pkg.sub", "pkg.sub.d", "pkg.e"}
    assert set(_imports(path, "pkg.a", modules)) == {"pkg.b", "pkg.sub.d", "pkg.e"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d2"}, "d2": {"d"}, "e": {"a"}}
    assert find_cycles(graph) == [("a", "b", "c", "a"), ("d", "d2", "d")]
    # A second circle beside an old one is told too.
    graph["c"] = {"a", "b"}
    assert find_cycles(graph) == [("a", "b", "c", "a"), ("b", "c", "b"), ("d", "d2", "d")]
