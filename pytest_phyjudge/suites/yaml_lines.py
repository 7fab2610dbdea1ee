"""Suite files read as YAML trees that keep each node's line, so errors can point at it."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_phyjudge._exceptions import SuiteError
from pytest_phyjudge._files import FileProblem, read_text_file

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_TAG = "tag:yaml.org,2002:int"

#: The largest suite or prompt-set file read; real ones are a few hundred kilobytes.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: The most nodes one suite may hold, each repeat of an alias counted in full: a few
#: hundred bytes of nested aliases ("billion laughs") would otherwise expand to billions.
MAX_NODES = 1_000_000
#: The deepest nesting of lists and mappings; PyYAML's composer recurses once per level.
MAX_DEPTH = 100


@dataclass(frozen=True, eq=False)
class Node:
    """A YAML node with its 1-based line: ``value`` holds child nodes, ``data`` plain Python."""

    kind: str  # "map" | "seq" | "scalar"
    line: int
    value: Any  # dict[key, Node] | list[Node] | scalar
    data: Any
    key_lines: dict[Any, int] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "map":
            return "a mapping"
        if self.kind == "seq":
            return "a list"
        return describe_scalar(self.data)


def describe_scalar(value: Any) -> str:
    """How a message names a plain value: ``the string 'x'``, ``the boolean true``, ``3``."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int) and value.bit_length() > 64:  # Python will not print past
        return f"a whole number of {value.bit_length()} bits"  # 4300 digits: say its size
    return repr(value) if isinstance(value, (int, float)) else f"a {type(value).__name__}"


def _too_deep(path: Path, line: int) -> SuiteError:
    return SuiteError(
        f"the YAML here is nested more than {MAX_DEPTH} levels deep (counting the levels "
        "that YAML aliases (*name) add); no suite needs that. Flatten the lists and mappings.",
        path=path,
        line=line,
    )


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing nesting deeper than :data:`MAX_DEPTH` before PyYAML's
    recursive composer runs out of stack."""

    def __init__(self, text: str, path: Path):
        super().__init__(text)
        self.path = path
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.depth >= MAX_DEPTH:
            raise _too_deep(self.path, self.peek_event().start_mark.line + 1)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Composer:
    """Turns a composed YAML node graph into :class:`Node` trees (aliases shared, not copied).

    Sharing keeps the conversion cheap, but whoever walks ``data`` later (the generator's clip
    key hashes ``params``) meets every repeat, so each node's expanded size and depth are
    counted here and capped."""

    def __init__(self, loader: yaml.SafeLoader, path: Path):
        self.loader = loader
        self.path = path
        self.done: dict[int, Node] = {}
        self.active: set[int] = set()
        self.sizes: dict[int, tuple[int, int]] = {}  # id(Node) -> (expanded nodes, depth)

    def fail(self, message: str, line: int) -> SuiteError:
        return SuiteError(message, path=self.path, line=line)

    def convert(self, node: yaml.Node) -> Node:
        if id(node) in self.done:
            return self.done[id(node)]
        line = node.start_mark.line + 1
        if id(node) in self.active:
            raise self.fail(
                "this node contains itself through a YAML alias; remove the recursive alias.",
                line,
            )
        self.active.add(id(node))
        try:
            result = self._convert(node, line)
        finally:
            self.active.discard(id(node))
        self.done[id(node)] = result
        return result

    def _convert(self, node: yaml.Node, line: int) -> Node:
        if isinstance(node, yaml.ScalarNode):
            data = self._scalar(node, line)
            return Node("scalar", line, data, data)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self.fail(f"unsupported YAML tag {node.tag!r}; remove the tag.", line)
            items = [self.convert(child) for child in node.value]
            return self._counted(Node("seq", line, items, [item.data for item in items]), items)
        if node.tag != _MAP_TAG:
            raise self.fail(f"unsupported YAML tag {node.tag!r}; remove the tag.", line)
        return self._mapping(node, line)

    def _counted(self, result: Node, children: list[Node]) -> Node:
        """``result``, once its expanded size and depth (its children's, plus one) are within
        the caps; a mapping's keys count as nodes too."""
        size, depth = 1 + (len(children) if result.kind == "map" else 0), 0
        for child in children:
            child_size, child_depth = self.sizes.get(id(child), (1, 0))
            size += child_size
            depth = max(depth, child_depth)
        depth += 1
        if depth > MAX_DEPTH:
            raise _too_deep(self.path, result.line)
        if size > MAX_NODES:
            raise self.fail(
                f"this {'list' if result.kind == 'seq' else 'mapping'} holds more than "
                f"{MAX_NODES:,} nodes (values, lists and mappings), counting each repeat of a "
                "YAML alias (*name) in full; no suite needs that, and an alias bomb looks like "
                "this. Write the values out once, or use fewer aliases.",
                result.line,
            )
        self.sizes[id(result)] = (size, depth)
        return result

    def _scalar(self, node: yaml.ScalarNode, line: int) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:
            if node.tag == _INT_TAG and "digits" in str(exc):
                digits = sum(char.isdigit() for char in node.value)
                reason = (
                    f"this number has {digits} digits, more than the "
                    f"{sys.get_int_max_str_digits()} Python reads; write a smaller number, or "
                    "quote it if it is meant as text."
                )
            else:
                shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
                reason = (
                    f"the value {shown!r} cannot be read ({exc}); correct it, or quote it if "
                    "it is meant as text."
                )
            raise self.fail(reason, line) from None

    def _mapping(self, node: yaml.MappingNode, line: int) -> Node:
        self._check_repeated_keys(node)
        self.loader.flatten_mapping(node)
        children: dict[Any, Node] = {}
        key_lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            children.pop(key, None)  # re-insert so an override takes the later position
            children[key] = self.convert(value_node)
            key_lines[key] = key_node.start_mark.line + 1
        data = {key: child.data for key, child in children.items()}
        return self._counted(Node("map", line, children, data, key_lines), list(children.values()))

    def _check_repeated_keys(self, node: yaml.MappingNode) -> None:
        # Keys written in this mapping itself may not repeat; keys merged in with `<<` may be
        # overridden by them, as YAML merge keys intend.
        own: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self._key(key_node)
            key_line = key_node.start_mark.line + 1
            if key in own:
                raise self.fail(
                    f"the key {key!r} appears twice in this mapping (lines {own[key]} and "
                    f"{key_line}); keep only one.",
                    key_line,
                )
            own[key] = key_line

    def _key(self, key_node: yaml.Node) -> Any:
        if not isinstance(key_node, yaml.ScalarNode):
            raise self.fail(
                "a mapping key here is itself a list or a mapping; keys must be plain names.",
                key_node.start_mark.line + 1,
            )
        return self._scalar(key_node, key_node.start_mark.line + 1)


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a suite or prompt-set file (newlines made ``\\n``, as text mode does);
    any failure, a file over :data:`MAX_FILE_BYTES` included, is a SuiteError naming it."""
    try:
        return read_text_file(path, limit=MAX_FILE_BYTES)
    except FileProblem as problem:
        raise SuiteError(
            f"the {what} path {problem.reason}; name a {what} file on disk: UTF-8 text of at "
            f"most {MAX_FILE_BYTES // 2**20} MiB that you can read.",
            path=path,
        ) from None


def parse_yaml(path: Path) -> Node | None:
    """The suite file's root node (None for an empty file), read with the safe loader only."""
    text = read_text(path, "suite")
    try:
        loader = _Loader(text, path)
    except yaml.reader.ReaderError as exc:
        # PyYAML checks the whole text before parsing and names only the character's offset.
        raise SuiteError(
            f"the suite holds the control or other non-printable character #x{exc.character:04x}"
            ", which YAML does not allow; delete it (NUL bytes mean a binary or UTF-16 file: "
            "save it as UTF-8 text).",
            path=path,
            line=text.count("\n", 0, exc.position) + 1,
        ) from None
    try:
        root = loader.get_single_node()
        return None if root is None else _Composer(loader, path).convert(root)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, path) from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"the suite is not valid YAML: {exc}. Fix the YAML.", path=path) from None
    finally:
        loader.dispose()


def _syntax_error(exc: yaml.MarkedYAMLError, path: Path) -> SuiteError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    context = ""
    if exc.context and exc.context_mark is not None and exc.problem:
        context = f" ({exc.context} at line {exc.context_mark.line + 1})"
    return SuiteError(
        f"the suite is not valid YAML: {problem}{context}. Fix the YAML at this line "
        "(indentation, a missing colon or space after it, unbalanced quotes or brackets).",
        path=path,
        line=None if mark is None else mark.line + 1,
    )
