"""The rubric constants of the reference ``infer.py``, read by walking its syntax tree: the
adapter's script is data to us, never code to run."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

CONSTANTS_FILE = "infer.py"
#: The module constants of the reference script that hold the rubric's text.
CONSTANT_NAMES = ("GENERAL_SUB_QUESTIONS", "PHYSICAL_SUB_QUESTIONS", "PHYSICAL_CRITERIA")
#: Characters of ``infer.py`` read at most: the reference script is tens of kilobytes.
MAX_SOURCE_SIZE = 2_000_000
#: Size (characters of text, plus one per list item or dict entry) one constant may reach.
MAX_VALUE_SIZE = 4_000_000
#: Levels of nesting (brackets, ``+`` chains, name references) one constant may have.
MAX_DEPTH = 100


class _NotLiteral(Exception):
    pass


#: Methods that change a list or dict in place: a module-level call of one changes a constant.
_MUTATORS = frozenset(
    {"append", "extend", "insert", "remove", "pop", "popitem", "clear", "sort", "reverse"}
    | {"update", "setdefault", "__setitem__", "__delitem__", "__iadd__"}
)


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _changed_names(statement: ast.stmt) -> set[str]:
    """Names a module-level statement other than ``NAME = value`` may rebind or mutate."""
    changed: set[str] = set()
    pending: list[ast.AST] = [statement]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            if not isinstance(node, ast.Lambda):
                changed.add(node.name)
            continue  # a body runs only when called
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            changed.add(node.id)
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(
            node.ctx, (ast.Store, ast.Del)
        ):
            changed.add(_root_name(node) or "")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _MUTATORS:
                changed.add(_root_name(node.func.value) or "")
        elif isinstance(node, ast.alias):
            changed.add((node.asname or node.name).split(".")[0])
        pending.extend(ast.iter_child_nodes(node))
    return changed


def _module_assignments(tree: ast.Module) -> dict[str, ast.expr]:
    """The module's ``NAME = value`` bindings whose value is certain when the module ends.

    A name bound twice, bound conditionally (under ``if``/``for``/``try``/...), augmented
    (``+=``) or mutated in place (``X[k] = v``, ``X.update(...)``) is left out, so that
    reading it falls back instead of silently returning a value the script never had.
    """
    found: dict[str, ast.expr] = {}
    unsure: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            bound = [(t.id, node.value) for t in node.targets]  # type: ignore[attr-defined]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.value is None:
                continue  # a bare annotation binds nothing
            bound = [(node.target.id, node.value)]
        else:
            unsure |= _changed_names(node)
            continue
        for name, value in bound:
            if name in found:
                unsure.add(name)
            found[name] = value
    return {name: value for name, value in found.items() if name not in unsure}


class _Evaluator:
    """Evaluates literals, references to module literals and ``+``; nothing else is run.

    Each name is evaluated once, and the nesting depth and the size of what is built are
    capped, so a small file cannot make the reader do unbounded work (``A1 = A0 + A0``, ...
    doubles a string forty times in forty lines). Going over a cap makes the value unreadable.
    """

    def __init__(self, names: dict[str, ast.expr]) -> None:
        self.names = names
        self.done: dict[str, tuple[Any, int]] = {}
        self.running: set[str] = set()
        self.budget = MAX_VALUE_SIZE

    def constant(self, name: str) -> Any:
        self.budget = MAX_VALUE_SIZE  # each constant gets the whole allowance
        return self.name(name, 0)[0]

    def charge(self, size: int) -> None:
        self.budget -= size
        if self.budget < 0:
            raise _NotLiteral(
                f"its value is larger than the {MAX_VALUE_SIZE:,}-character limit for rubric text"
            )

    def joined(self, node: ast.BinOp, depth: int) -> tuple[Any, int]:
        """``a + b + c ...`` as one join: a long chain costs neither depth nor quadratic copies."""
        terms: list[ast.expr] = []
        left: ast.expr = node
        while isinstance(left, ast.BinOp) and isinstance(left.op, ast.Add):
            terms.append(left.right)
            left = left.left
        terms.append(left)
        parts = [self.value(term, depth + 1) for term in reversed(terms)]
        kind = type(parts[0][0])
        if kind not in (str, list) or any(type(value) is not kind for value, _ in parts):
            raise _NotLiteral("'+' joins only strings or only lists")
        size = sum(n for _, n in parts)
        self.charge(size)  # before the join, which copies every part
        if kind is str:
            return "".join(value for value, _ in parts), size
        return [item for value, _ in parts for item in value], size

    def name(self, name: str, depth: int) -> tuple[Any, int]:
        if name in self.done:
            value, size = self.done[name]
            self.charge(size)  # each use makes another copy of the text
            return value, size
        if name not in self.names or name in self.running:
            raise _NotLiteral(f"name {name!r} is not a module-level literal")
        self.running.add(name)
        try:
            value, size = self.value(self.names[name], depth + 1)
        finally:
            self.running.discard(name)
        self.done[name] = value, size
        return value, size

    def value(self, node: ast.expr, depth: int) -> tuple[Any, int]:
        """The value of ``node`` and its size (characters of text, plus one per item)."""
        if depth > MAX_DEPTH:
            raise _NotLiteral(f"it nests more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool)):
            return node.value, len(node.value) if isinstance(node.value, str) else 1
        if isinstance(node, ast.Name):
            return self.name(node.id, depth)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.value(item, depth + 1) for item in node.elts]
            return [v for v, _ in items], 1 + sum(n for _, n in items)
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                raise _NotLiteral("dict unpacking (**) is not a literal")
            keys = [self.value(k, depth + 1) for k in node.keys]  # type: ignore[arg-type]
            if any(isinstance(k, list) for k, _ in keys):
                raise _NotLiteral("a dict key must be a string or a number")
            values = [self.value(v, depth + 1) for v in node.values]
            size = 1 + sum(n for _, n in keys) + sum(n for _, n in values)
            return dict(zip([k for k, _ in keys], [v for v, _ in values], strict=True)), size
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.joined(node, depth)
        raise _NotLiteral(f"{type(node).__name__} expressions are not literals")


def parse_source(source: str) -> ast.Module:
    """``ast.parse``, with a source too large or too deeply nested raising SyntaxError."""
    if len(source) > MAX_SOURCE_SIZE:
        raise SyntaxError(
            f"it is longer than {MAX_SOURCE_SIZE:,} characters, the most read from an "
            "adapter's script"
        )
    try:
        return ast.parse(source)
    except (RecursionError, MemoryError) as exc:
        # CPython's parser reports over-deep nesting with these rather than SyntaxError
        raise SyntaxError(
            f"its expressions nest too deeply to read ({type(exc).__name__})"
        ) from None


def extract_constants(
    source: str,
    names: tuple[str, ...] = CONSTANT_NAMES,
    problems: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Read module-level constants from Python source without importing or executing it.

    Returns the constants that are literals (or built from literals); a missing or
    non-literal one is left out, and the caller falls back for it (why goes into
    ``problems`` when given). A syntax error, or a source over MAX_SOURCE_SIZE characters,
    raises SyntaxError.
    """
    assignments = _module_assignments(parse_source(source))
    evaluator = _Evaluator(assignments)
    values: dict[str, Any] = {}
    for name in names:
        if name in assignments:
            try:
                values[name] = evaluator.constant(name)
            except _NotLiteral as exc:
                if problems is not None:
                    problems[name] = str(exc)
    return values


def infer_py_source(constants: Mapping[str, Any]) -> str:
    """Python source that defines ``constants`` as plain literals (for the tiny judge)."""
    lines = ['"""Rubric constants of a PhyJudge-style adapter, written as plain literals."""', ""]
    for name in CONSTANT_NAMES:
        lines.append(f"{name} = {constants[name]!r}")
        lines.append("")
    return "\n".join(lines)
