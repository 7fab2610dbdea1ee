"""The rubric constants of the reference ``infer.py``, read by walking its syntax tree: the
adapter's script is data to us, never code to run."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

CONSTANTS_FILE = "infer.py"
#: The module constants of the reference script that hold the rubric's text.
CONSTANT_NAMES = ("GENERAL_SUB_QUESTIONS", "PHYSICAL_SUB_QUESTIONS", "PHYSICAL_CRITERIA")


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


def _evaluate(node: ast.expr, names: dict[str, ast.expr], seen: frozenset[str]) -> Any:
    """Evaluate literals, references to module literals and ``+``; nothing else is run."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names or node.id in seen:
            raise _NotLiteral(f"name {node.id!r} is not a module-level literal")
        return _evaluate(names[node.id], names, seen | {node.id})
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_evaluate(item, names, seen) for item in node.elts]
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise _NotLiteral("dict unpacking (**) is not a literal")
        keys = [_evaluate(k, names, seen) for k in node.keys]  # type: ignore[arg-type]
        if any(isinstance(k, list) for k in keys):
            raise _NotLiteral("a dict key must be a string or a number")
        return dict(zip(keys, [_evaluate(v, names, seen) for v in node.values], strict=True))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _evaluate(node.left, names, seen), _evaluate(node.right, names, seen)
        if type(left) is type(right) and isinstance(left, (str, list)):
            return left + right
        raise _NotLiteral("'+' joins only two strings or two lists")
    raise _NotLiteral(f"{type(node).__name__} expressions are not literals")


def extract_constants(source: str, names: tuple[str, ...] = CONSTANT_NAMES) -> dict[str, Any]:
    """Read module-level constants from Python source without importing or executing it.

    Returns the constants that are literals (or built from literals); a missing or
    non-literal one is left out, and the caller falls back for it. A syntax error raises
    SyntaxError.
    """
    assignments = _module_assignments(ast.parse(source))
    values: dict[str, Any] = {}
    for name in names:
        if name in assignments:
            try:
                values[name] = _evaluate(assignments[name], assignments, frozenset({name}))
            except _NotLiteral:
                continue
    return values


def infer_py_source(constants: Mapping[str, Any]) -> str:
    """Python source that defines ``constants`` as plain literals (for the tiny judge)."""
    lines = ['"""Rubric constants of a PhyJudge-style adapter, written as plain literals."""', ""]
    for name in CONSTANT_NAMES:
        lines.append(f"{name} = {constants[name]!r}")
        lines.append("")
    return "\n".join(lines)
