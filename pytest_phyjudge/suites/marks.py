"""A case's ``marks:`` read into MarkSpec values, so the plugin can turn them into pytest marks."""

from __future__ import annotations

import re
from typing import Any

from pytest_phyjudge.suites.fields import Reader
from pytest_phyjudge.suites.model import MarkSpec
from pytest_phyjudge.suites.yaml_lines import Node, describe_scalar

#: pytest refuses (with a traceback) a mark name that starts with '_'.
_MARK_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: Marks whose one text argument is their ``reason`` keyword, as pytest documents them.
_REASON_MARKS = ("xfail", "skip")
_HOW = (
    "a mark is a name (`slow`) or a mapping with one key, the mark's name, whose value "
    "is a reason, a list of arguments or a mapping of keyword arguments "
    "(`{xfail: known bad generator}`)."
)


#: Marks whose condition pytest evaluates as Python code when it is a string.
_CONDITION_MARKS = ("skipif", "xfail")
#: The keywords pytest's own marks take from a suite (``raises`` names classes: not data).
_BUILTIN_KEYWORDS = {
    "skip": ("reason",),
    "skipif": ("condition", "reason"),
    "xfail": ("condition", "reason", "run", "strict"),
}
_BOOLEAN_KEYWORDS = ("run", "strict")
#: Marks whose arguments make pytest import modules named in the text.
_IMPORTING_MARKS = ("filterwarnings",)


def read_marks(reader: Reader, node: Node) -> tuple[MarkSpec, ...]:
    """One mark or a list of marks."""
    items = [node] if node.kind != "seq" else node.value
    marks = tuple(_read_mark(reader, item) for item in items)
    for mark in marks:
        _refuse_code(reader, mark)
    return marks


def _refuse_code(reader: Reader, mark: MarkSpec) -> None:
    """A suite never makes pytest run code: pytest evaluates a string condition of ``skipif``
    and ``xfail`` with ``eval`` (and plugins their marks' text ``condition``), and
    ``filterwarnings`` imports the module its category names. Suites come from anywhere (a
    shared prompt set, a generated file), so all of them are refused."""
    if mark.name in _IMPORTING_MARKS:
        raise reader.fail(
            f"the mark {mark.name!r} is not allowed in a suite: pytest would import the module "
            "its warning category names. Set `filterwarnings` in your pytest configuration "
            "(ini or pyproject.toml) instead.",
            mark.line,
        )
    if mark.name not in _CONDITION_MARKS:
        condition = mark.kwargs.get("condition")
        if isinstance(condition, str):
            raise reader.fail(
                f"the mark {mark.name!r} has a text condition ({describe_scalar(condition)}); "
                "plugins evaluate a text condition as Python code (pytest-rerunfailures' "
                "`flaky` does), and a suite never runs code. Write condition: true or false, "
                "or decide in a conftest.py.",
                mark.line,
            )
        return
    conditions = [*mark.args, *([mark.kwargs["condition"]] if "condition" in mark.kwargs else [])]
    for condition in conditions:
        if not isinstance(condition, bool):
            raise reader.fail(
                f"the {mark.name} condition is {describe_scalar(condition)}, not true or "
                "false. pytest would evaluate a text condition as Python code, and a suite never "
                "runs "
                f"code: write `{{{mark.name}: {{condition: true, reason: ...}}}}`, or decide in "
                "a conftest.py (for example with pytest_collection_modifyitems).",
                mark.line,
            )


def _read_mark(reader: Reader, node: Node) -> MarkSpec:
    if node.kind == "scalar":
        return MarkSpec(_mark_name(reader, node.data, node.line), line=node.line)
    if node.kind != "map" or len(node.value) != 1:
        shown = node.describe()
        if node.kind == "map":
            shown += f" with {len(node.value)} keys ({', '.join(map(str, node.value))})"
        raise reader.fail(f"this mark is {shown}; {_HOW}", node.line)
    ((key, value),) = node.value.items()
    name = _mark_name(reader, key, node.key_lines[key])
    if value.kind == "seq":
        if name == "skip" and (
            len(value.data) > 1 or not all(isinstance(a, str) for a in value.data)
        ):
            raise reader.fail(_not_a_reason(name, value.data), node.line)
        return MarkSpec(name, tuple(value.data), line=node.line)
    if value.kind == "map":
        _check_keywords(reader, name, value)
        return MarkSpec(name, (), dict(value.data), line=node.line)
    if value.data is None:
        return MarkSpec(name, line=node.line)
    if isinstance(value.data, str) and name in _REASON_MARKS:
        return MarkSpec(name, (), {"reason": value.data}, line=node.line)
    if name == "skip":  # its one argument is the reason (xfail's and skipif's: a condition)
        raise reader.fail(_not_a_reason(name, value.data), node.line)
    return MarkSpec(name, (value.data,), line=node.line)


def _mark_name(reader: Reader, name: Any, line: int) -> str:
    if not isinstance(name, str) or not _MARK_NAME_RE.fullmatch(name):
        rule = "a mark name is letters, digits and '_', starting with a letter"
        raise reader.fail(f"{describe_scalar(name)} is not a mark name ({rule}); {_HOW}", line)
    return name


def _check_keywords(reader: Reader, name: str, value: Node) -> None:
    for keyword, line in value.key_lines.items():
        if not isinstance(keyword, str) or not keyword.isidentifier():
            raise reader.fail(
                f"mark {name!r} has the keyword {str(keyword)!r}, which is not a Python "
                "identifier; keyword arguments are names such as `reason` or `strict`.",
                line,
            )
        _check_builtin_keyword(reader, name, keyword, value.value[keyword].data, line)


def _check_builtin_keyword(reader: Reader, name: str, keyword: str, data: Any, line: int) -> None:
    """pytest's own marks take only the keywords it documents, and ``run`` and ``strict``
    are true or false: an unknown keyword fails every item at run time with a traceback,
    and the text "False" would read as true. ``raises`` names exception classes, which a
    suite (pure data) cannot give."""
    allowed = _BUILTIN_KEYWORDS.get(name)
    if allowed is None:
        return
    if keyword not in allowed:
        raise reader.fail(
            f"mark {name!r} has the keyword {keyword!r}; it takes only "
            f"{', '.join(f'`{k}`' for k in allowed)}.",
            line,
        )
    if keyword in _BOOLEAN_KEYWORDS and not isinstance(data, bool):
        raise reader.fail(
            f"mark {name!r} has {keyword}: {describe_scalar(data)}; write true or false.", line
        )
    if keyword == "reason" and not isinstance(data, str):
        raise reader.fail(_not_a_reason(name, data), line)


def _not_a_reason(name: str, data: Any) -> str:
    return (
        f"mark {name!r} has the reason {describe_scalar(data)}; a reason is text "
        f"(`{{{name}: {{reason: known bad generator}}}}`): pytest fails every item of the case "
        "on any other."
    )
