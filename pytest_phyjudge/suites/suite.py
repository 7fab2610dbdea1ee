"""YAML suite files and PhyGround prompt sets, read into frozen, validated dataclasses.

A suite file names the prompts to judge, the axes to score for each one, the minimum score
each axis must reach and where each case's video comes from::

    suite: physics-basics
    defaults:
      min_score: 3
      metrics: [SA, PTV, persistence]
    videos: videos/{id}.mp4
    cases:
      - id: ball_ramp
        prompt: A ball rolls down a ramp and knocks over a block.
        laws: [gravity, collision]
        min_score: {gravity: 4}
        marks: [slow, {xfail: known bad generator}]
      - id: drop
        prompt: A glass falls off a table.
        laws: [gravity]
        video: clips/drop-{sample}.mp4
        samples: 4            # judge 4 clips (with a generator: seeds seed..seed+3)
        pass_rate: 0.5        # at least half of them reach min_score ...
        confidence: 0.9       # ... by the one-sided 90% Wilson lower bound
        tolerance: 1          # a baseline drop of 1 is tolerated

This module is pure data: it imports neither pytest nor the judge. Every problem found is a
:class:`SuiteError` that names the file and the line of the offending node and says how to
fix it. Video files are not opened here; a missing video fails that case's items at run time.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pytest_phyjudge._exceptions import InputError, SuiteError
from pytest_phyjudge.engine.axes import (
    ALL_AXES,
    GENERAL_METRICS,
    LAW_DOMAINS,
    check_axis,
    check_law,
)

__all__ = ["Case", "Gates", "MarkSpec", "Suite", "load_prompt_set", "load_suite"]


# --------------------------------------------------------------------------- data model


@dataclass(frozen=True)
class MarkSpec:
    """A pytest mark to put on every item of a case: ``pytest.mark.<name>(*args, **kwargs)``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Gates:
    """One axis' rules beyond ``min_score``: gates over repeated samples, and the baseline
    tolerance. ``None`` means not set."""

    #: Least fraction of samples whose score reaches ``min_score``.
    pass_rate: float | None = None
    #: Least mean score over the samples.
    min_mean: float | None = None
    #: When set, the gates use a one-sided lower bound at this confidence instead of the
    #: point estimate (Wilson for the pass rate, bootstrap for the mean).
    confidence: float | None = None
    #: How far the score may fall below its baseline entry before the item fails.
    tolerance: float = 0.0

    @property
    def gated(self) -> bool:
        return self.pass_rate is not None or self.min_mean is not None


@dataclass(frozen=True)
class Case:
    """One prompt to judge, fully resolved against the suite's defaults."""

    id: str
    prompt: str
    #: Physical laws to score: validated names, in the order given, without repeats.
    laws: tuple[str, ...]
    #: General metrics to score (``defaults.metrics`` unless the case sets ``metrics``).
    metrics: tuple[str, ...]
    #: One threshold for every axis in :attr:`axes`.
    min_scores: Mapping[str, int]
    #: Absolute path of the video; ``None`` when the case's video comes from its generator.
    video: Path | None
    marks: tuple[MarkSpec, ...]
    #: Per-law criterion texts that replace the rubric's own.
    criteria: Mapping[str, str]
    #: 1-based line of the case in the suite file (of the ``prompts:`` key for a prompt set).
    line: int
    #: ``"package.module:function"`` that makes the video (the case's, else the suite's).
    generator: str | None
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Extra metadata, e.g. the PhyGround fields of a prompt-set entry (``dataset``, ...).
    source: Mapping[str, Any] = field(default_factory=dict)
    #: How many clips to judge: seeds ``seed .. seed + samples - 1``, or the video paths in
    #: :attr:`sample_videos`.
    samples: int = 1
    #: The video of each sample (the ``{sample}`` placeholder filled in); empty when the
    #: clips come from the generator.
    sample_videos: tuple[Path, ...] = ()
    #: Per axis: sample gates and baseline tolerance (every axis has an entry).
    gates: Mapping[str, Gates] = field(default_factory=dict)

    def gates_for(self, axis: str) -> Gates:
        return self.gates.get(axis) or Gates()

    @property
    def sampled(self) -> bool:
        """Judged over samples (more than one, or with a pass_rate/min_mean gate)."""
        return self.samples > 1 or any(g.gated for g in self.gates.values())

    def sample(self, index: int) -> Case:
        """The case as it is for one sample: that sample's video, or seed ``seed + index``."""
        video = self.sample_videos[index] if self.sample_videos else self.video
        return replace(self, video=video, seed=self.seed + index, samples=1, sample_videos=())

    @property
    def axes(self) -> tuple[str, ...]:
        """Every axis scored for this case: the general metrics first, then the laws."""
        return self.metrics + self.laws


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    cases: tuple[Case, ...]
    generator: str | None


# --------------------------------------------------------------------------- schema

_TOP_KEYS = ("suite", "defaults", "videos", "generator", "prompts", "cases")
_GATE_KEYS = ("samples", "pass_rate", "min_mean", "confidence", "tolerance")
_DEFAULT_KEYS = ("min_score", "metrics", "laws", "seed", "params", *_GATE_KEYS)
_CASE_KEYS = (
    "id",
    "prompt",
    "laws",
    "metrics",
    "min_score",
    "video",
    "generator",
    "criteria",
    "seed",
    "params",
    "marks",
    "source",
    *_GATE_KEYS,
)
_TEMPLATE_FIELDS = ("id", "suite", "sample")
_MAX_SAMPLES = 1000
_ID_RE = re.compile(r"[A-Za-z0-9_.-]+")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_GENERATOR_RE = re.compile(rf"{_IDENT}(?:\.{_IDENT})*:{_IDENT}(?:\.{_IDENT})*")
_MARK_NAME_RE = re.compile(_IDENT)
_REASON_MARKS = ("xfail", "skip")
_MIN, _MAX = 1, 5
_THRESHOLD_RULE = f"thresholds are integers from {_MIN} to {_MAX}."


def _suggest(name: object, choices: tuple[str, ...]) -> str:
    text = str(name)
    close = [c for c in choices if c.lower() == text.lower()]
    close = close or difflib.get_close_matches(text, choices, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


# --------------------------------------------------------------------------- YAML with lines

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


@dataclass(eq=False)
class _Node:
    """A YAML node with its 1-based line: ``value`` holds child nodes, ``data`` plain Python."""

    kind: str  # "map" | "seq" | "scalar"
    line: int
    value: Any  # dict[key, _Node] | list[_Node] | scalar
    data: Any
    key_lines: dict[Any, int] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "map":
            return "a mapping"
        if self.kind == "seq":
            return "a list"
        return _describe_scalar(self.data)


def _describe_scalar(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return repr(value) if isinstance(value, (int, float)) else f"a {type(value).__name__}"


class _Composer:
    """Turns a composed YAML node graph into :class:`_Node` trees (aliases shared, not copied)."""

    def __init__(self, loader: yaml.SafeLoader, path: Path):
        self.loader = loader
        self.path = path
        self.done: dict[int, _Node] = {}
        self.active: set[int] = set()

    def fail(self, message: str, line: int) -> SuiteError:
        return SuiteError(message, path=self.path, line=line)

    def convert(self, node: yaml.Node) -> _Node:
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

    def _convert(self, node: yaml.Node, line: int) -> _Node:
        if isinstance(node, yaml.ScalarNode):
            data = self.loader.construct_object(node, deep=True)
            return _Node("scalar", line, data, data)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self.fail(f"unsupported YAML tag {node.tag!r}; remove the tag.", line)
            items = [self.convert(child) for child in node.value]
            return _Node("seq", line, items, [item.data for item in items])
        if node.tag != _MAP_TAG:
            raise self.fail(f"unsupported YAML tag {node.tag!r}; remove the tag.", line)
        # Keys written in this mapping itself may not repeat; keys merged in with `<<` may be
        # overridden by them, as YAML merge keys intend.
        own: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
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
        self.loader.flatten_mapping(node)
        children: dict[Any, _Node] = {}
        key_lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            children.pop(key, None)  # re-insert so an override takes the later position
            children[key] = self.convert(value_node)
            key_lines[key] = key_node.start_mark.line + 1
        data = {key: child.data for key, child in children.items()}
        return _Node("map", line, children, data, key_lines)

    def _key(self, key_node: yaml.Node) -> Any:
        if not isinstance(key_node, yaml.ScalarNode):
            raise self.fail(
                "a mapping key here is itself a list or a mapping; keys must be plain names.",
                key_node.start_mark.line + 1,
            )
        return self.loader.construct_object(key_node, deep=True)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(f"the {what} file does not exist; check the path.", path=path) from None
    except IsADirectoryError:
        raise SuiteError(f"this {what} path is a folder; name a file.", path=path) from None
    except UnicodeDecodeError as exc:
        raise SuiteError(
            f"the {what} file is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as "
            "UTF-8.",
            path=path,
        ) from None
    except OSError as exc:
        raise SuiteError(
            f"the {what} file cannot be read ({exc.strerror}); check its permissions.", path=path
        ) from None


def _parse_yaml(path: Path) -> _Node | None:
    text = _read_text(path, "suite")
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        return None if root is None else _Composer(loader, path).convert(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        context = ""
        if exc.context and exc.context_mark is not None and exc.problem:
            context = f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise SuiteError(
            f"the suite is not valid YAML: {problem}{context}. Fix the YAML at this line "
            "(indentation, a missing colon or space after it, unbalanced quotes or brackets).",
            path=path,
            line=None if mark is None else mark.line + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"the suite is not valid YAML: {exc}. Fix the YAML.", path=path) from None
    finally:
        loader.dispose()


# --------------------------------------------------------------------------- validation


class _Reader:
    """Validates nodes of one suite file; every failure is a SuiteError at the node's line."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, message: str, line: int | None) -> SuiteError:
        return SuiteError(message, path=self.path, line=line)

    def check_keys(self, node: _Node, allowed: tuple[str, ...], where: str) -> None:
        for key, key_line in node.key_lines.items():
            if isinstance(key, str) and key in allowed:
                continue
            raise self.fail(
                f"unknown key {str(key)!r} in {where}.{_suggest(key, allowed)} "
                f"The keys of {where} are: {', '.join(allowed)}.",
                key_line,
            )

    def mapping(self, node: _Node, what: str) -> dict[Any, _Node]:
        if node.kind != "map":
            raise self.fail(f"{what} is {node.describe()}; write it as a mapping.", node.line)
        return node.value

    def text(self, node: _Node, what: str) -> str:
        if not isinstance(node.data, str) or not node.data.strip():
            raise self.fail(f"{what} is {node.describe()}; write it as non-empty text.", node.line)
        return node.data

    def integer(self, node: _Node, what: str) -> int:
        if isinstance(node.data, bool) or not isinstance(node.data, int):
            raise self.fail(f"{what} is {node.describe()}; write a whole number.", node.line)
        return node.data

    def names(self, node: _Node, what: str) -> list[_Node]:
        """A list of name nodes; one bare name is taken as a list of one."""
        if node.kind == "scalar" and isinstance(node.data, str):
            return [node]
        if node.kind != "seq":
            raise self.fail(f"{what} is {node.describe()}; write a list of names.", node.line)
        for item in node.value:
            if not isinstance(item.data, str):
                raise self.fail(
                    f"an entry of {what} is {item.describe()}; each entry is a name.", item.line
                )
        return node.value

    def laws(self, node: _Node) -> tuple[str, ...]:
        out: list[str] = []
        for item in self.names(node, "laws"):
            name = item.data
            if name in GENERAL_METRICS:
                raise self.fail(
                    f"{name!r} is a general metric, not a physical law; list it under "
                    "`metrics:` instead of `laws:`.",
                    item.line,
                )
            try:
                check_law(name)
            except InputError as exc:
                raise self.fail(str(exc), item.line) from None
            if name not in out:
                out.append(name)
        return tuple(out)

    def metrics(self, node: _Node) -> tuple[str, ...]:
        out: list[str] = []
        for item in self.names(node, "metrics"):
            name = item.data
            if name in LAW_DOMAINS:
                raise self.fail(
                    f"{name!r} is a physical law, not a general metric; list it under `laws:` "
                    "instead of `metrics:`.",
                    item.line,
                )
            if name not in GENERAL_METRICS:
                raise self.fail(
                    f"unknown general metric {name!r}.{_suggest(name, GENERAL_METRICS)} "
                    f"The general metrics are: {', '.join(GENERAL_METRICS)}.",
                    item.line,
                )
            if name not in out:
                out.append(name)
        return tuple(out)

    def threshold(self, node: _Node, label: str) -> int:
        value = node.data
        if isinstance(value, int) and not isinstance(value, bool) and _MIN <= value <= _MAX:
            return value
        hint = ""
        if isinstance(value, str) and value.strip().isdigit():
            hint = " Write the number without quotes."
        raise self.fail(f"{label} is {node.describe()}; {_THRESHOLD_RULE}{hint}", node.line)

    def per_axis(
        self,
        key: str,
        node: _Node,
        scored: tuple[str, ...] | None,
        case: str | None,
        value: Callable[[_Node, str], Any],
    ) -> Any:
        """``value(node, label)`` for every axis, or ``{axis: value}`` from a mapping of
        axes. ``scored``: the axes a case scores (None for defaults)."""
        if node.kind != "map":
            return value(node, key)
        out: dict[str, Any] = {}
        for axis, child in node.value.items():
            key_line = node.key_lines[axis]
            if not isinstance(axis, str) or axis not in ALL_AXES:
                try:
                    check_axis(str(axis))
                except InputError as exc:
                    raise self.fail(f"in {key}: {exc}", key_line) from None
            if scored is not None and axis not in scored:
                raise self.fail(
                    f"{key} sets a value for {axis!r}, which case {case!r} does not score (it "
                    f"scores {', '.join(scored) or 'nothing'}); add {axis!r} to the case's "
                    "laws or metrics, or remove it.",
                    key_line,
                )
            out[axis] = value(child, f"{key} for {axis!r}")
        return out

    def min_score(
        self, node: _Node, scored: tuple[str, ...] | None, case: str | None
    ) -> int | dict[str, int]:
        """An int, or {axis: int}."""
        return self.per_axis("min_score", node, scored, case, self.threshold)

    def generator(self, node: _Node) -> str:
        value = node.data
        if not isinstance(value, str) or not _GENERATOR_RE.fullmatch(value.strip()):
            raise self.fail(
                f"generator is {node.describe()}; write it as 'package.module:function', the "
                "import path of the module, a colon and the function that makes the video.",
                node.line,
            )
        return value.strip()

    def params(self, node: _Node, what: str = "params") -> dict[Any, Any]:
        self.mapping(node, what)
        return dict(node.data)

    def seed(self, node: _Node) -> int:
        return self.integer(node, "seed")

    def template(self, node: _Node) -> str:
        value = self.text(node, "videos")
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise self.fail(
                f"the videos template {value!r} is malformed ({exc}); write placeholders as "
                "{id} or {suite}, and a literal brace as {{ or }}.",
                node.line,
            ) from None
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            if name not in _TEMPLATE_FIELDS or spec or conversion:
                shown = "{" + name + (f"!{conversion}" if conversion else "")
                shown += (f":{spec}" if spec else "") + "}"
                raise self.fail(
                    f"the videos template {value!r} uses the placeholder {shown}; the only "
                    "placeholders are {id} (the case id), {suite} (the suite name) and {sample} "
                    "(the sample number). Write a literal brace as {{ or }}.",
                    node.line,
                )
        return value

    def samples(self, node: _Node) -> int:
        value = node.data
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_SAMPLES:
            return value
        raise self.fail(
            f"samples is {node.describe()}; write a positive whole number (at most "
            f"{_MAX_SAMPLES}): how many clips to judge for the case.",
            node.line,
        )

    def gate(
        self, key: str, node: _Node, scored: tuple[str, ...] | None, case: str | None
    ) -> float | dict[str, float]:
        """A number for every axis, or ``{axis: number}``; checked against the key's range."""
        return self.per_axis(
            key, node, scored, case, lambda child, label: self._gate_value(key, child, label)
        )

    def _gate_value(self, key: str, node: _Node, label: str) -> float:
        value = node.data
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        rules = {
            "pass_rate": (lambda v: 0 < v <= 1, "a fraction in (0, 1], e.g. 0.75"),
            "min_mean": (lambda v: _MIN <= v <= _MAX, f"a mean score from {_MIN} to {_MAX}"),
            "confidence": (lambda v: 0 < v < 1, "a confidence in (0, 1), e.g. 0.9"),
            "tolerance": (lambda v: 0 <= v <= _MAX - _MIN, "a score drop from 0 to 4, e.g. 1"),
        }
        accept, rule = rules[key]
        if number and math.isfinite(value) and accept(value):
            return float(value)
        raise self.fail(
            f"{label} is {node.describe()}; write {rule} (or a mapping {{axis: value}}).",
            node.line,
        )

    def marks(self, node: _Node) -> tuple[MarkSpec, ...]:
        items = [node] if node.kind != "seq" else node.value
        return tuple(self.mark(item) for item in items)

    def mark(self, node: _Node) -> MarkSpec:
        how = (
            "a mark is a name (`slow`) or a mapping with one key, the mark's name, whose value "
            "is a reason, a list of arguments or a mapping of keyword arguments "
            "(`{xfail: known bad generator}`)."
        )
        if node.kind == "scalar":
            return MarkSpec(self._mark_name(node.data, node.line, how))
        if node.kind != "map" or len(node.value) != 1:
            shown = node.describe()
            if node.kind == "map":
                shown += f" with {len(node.value)} keys ({', '.join(map(str, node.value))})"
            raise self.fail(f"this mark is {shown}; {how}", node.line)
        ((key, value),) = node.value.items()
        name = self._mark_name(key, node.key_lines[key], how)
        if value.kind == "seq":
            return MarkSpec(name, tuple(value.data))
        if value.kind == "map":
            for kw, kw_line in value.key_lines.items():
                if not isinstance(kw, str) or not kw.isidentifier():
                    raise self.fail(
                        f"mark {name!r} has the keyword {str(kw)!r}, which is not a Python "
                        "identifier; keyword arguments are names such as `reason` or `strict`.",
                        kw_line,
                    )
            return MarkSpec(name, (), dict(value.data))
        if value.data is None:
            return MarkSpec(name)
        if isinstance(value.data, str) and name in _REASON_MARKS:
            return MarkSpec(name, (), {"reason": value.data})
        return MarkSpec(name, (value.data,))

    def _mark_name(self, name: Any, line: int, how: str) -> str:
        if not isinstance(name, str) or not _MARK_NAME_RE.fullmatch(name):
            raise self.fail(f"{_describe_scalar(name)} is not a mark name; {how}", line)
        return name

    def criteria(self, node: _Node, laws: tuple[str, ...], case: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for law, child in self.mapping(node, "criteria").items():
            key_line = node.key_lines[law]
            if not isinstance(law, str) or law not in LAW_DOMAINS:
                try:
                    check_law(str(law))
                except InputError as exc:
                    raise self.fail(f"in criteria: {exc}", key_line) from None
            if law not in laws:
                raise self.fail(
                    f"criteria gives a criterion for {law!r}, which case {case!r} does not "
                    f"score; add {law!r} to the case's laws or remove the criterion.",
                    key_line,
                )
            out[law] = self.text(child, f"the criterion for {law!r}").strip()
        return out

    def case_id(self, node: _Node) -> str:
        value = node.data
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not _ID_RE.fullmatch(value) or set(value) == {"."}:
            raise self.fail(
                f"the case id is {node.describe()}; an id is made of letters, digits, '_', "
                "'.' and '-' (it becomes part of the pytest node id).",
                node.line,
            )
        return value


# --------------------------------------------------------------------------- prompt sets


def load_prompt_set(path: str | Path) -> list[dict]:
    """Read a PhyGround prompt set into ``[{"id", "prompt", "laws", "source"}]``.

    Accepted: PhyGround's ``{"prompts": [{"video", "prompt", "physical_laws", ...}]}``, or a
    bare JSON list of entries that carry ``id_stem``. The id is the entry's ``id_stem``, else
    its ``video``; the laws are its ``physical_laws`` (validated, order kept, repeats
    dropped); every other field goes into ``source``. Anything else is a SuiteError that
    names the file and the entry.
    """
    path = Path(path)
    text = _read_text(path, "prompt set")

    def fail(message: str, line: int | None = None) -> SuiteError:
        return SuiteError(message, path=path, line=line)

    fmt = (
        'A PhyGround prompt set is {"prompts": [{"video": ..., "prompt": ..., '
        '"physical_laws": [...]}, ...]}, or a list of such entries that carry "id_stem".'
    )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(
            f"the prompt set is not valid JSON: {exc.msg} (column {exc.colno}). Fix the JSON "
            "at this line.",
            exc.lineno,
        ) from None
    if isinstance(data, dict):
        if "prompts" not in data:
            keys = ", ".join(map(repr, list(data)[:8])) or "none"
            raise fail(f"the prompt set has no 'prompts' key (its keys: {keys}). {fmt}")
        entries = data["prompts"]
        if not isinstance(entries, list):
            raise fail(f"'prompts' is a {_json_type(entries)}, not a list of entries. {fmt}")
        where, bare = "prompts[{}]", False
    elif isinstance(data, list):
        entries, where, bare = data, "entry [{}]", True
    else:
        raise fail(f"the prompt set is a {_json_type(data)}. {fmt}")

    out: list[dict] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries):
        at = where.format(index)
        if not isinstance(entry, dict):
            raise fail(f"{at} is a {_json_type(entry)}, not an object. {fmt}")
        if bare and "id_stem" not in entry:
            raise fail(
                f"{at} has no 'id_stem'; every entry of a bare-list prompt set names "
                f"its video's id stem in 'id_stem'. {fmt}"
            )
        id_key = "id_stem" if "id_stem" in entry else "video"
        if id_key not in entry:
            raise fail(f"{at} has no 'video' (the id stem that names its video file). {fmt}")
        case_id = entry[id_key]
        if not isinstance(case_id, str) or not _ID_RE.fullmatch(case_id) or set(case_id) == {"."}:
            raise fail(
                f"{at} has {id_key} {case_id!r}; an id is made of letters, digits, '_', '.' and "
                "'-'. Fix that entry."
            )
        if case_id in first_index:
            raise fail(
                f"{at} repeats the id {case_id!r} of {where.format(first_index[case_id])}; "
                "ids must be unique. Remove or rename one of them."
            )
        first_index[case_id] = index
        prompt = entry.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise fail(f"{at} ({case_id!r}) has no 'prompt' text. {fmt}")
        raw_laws = entry.get("physical_laws")
        if not isinstance(raw_laws, list) or not all(isinstance(x, str) for x in raw_laws):
            shown = "no 'physical_laws'" if raw_laws is None else f"physical_laws {raw_laws!r}"
            raise fail(f"{at} ({case_id!r}) has {shown}; it must be a list of law names. {fmt}")
        laws: list[str] = []
        for law in raw_laws:
            if law in GENERAL_METRICS:
                raise fail(
                    f"{at} ({case_id!r}) lists the general metric {law!r} in physical_laws; "
                    "physical_laws holds only physical laws. Remove it from that entry."
                )
            try:
                check_law(law)
            except InputError as exc:
                raise fail(f"{at} ({case_id!r}): {exc}") from None
            if law not in laws:
                laws.append(law)
        source = {k: v for k, v in entry.items() if k not in (id_key, "prompt", "physical_laws")}
        out.append({"id": case_id, "prompt": prompt, "laws": laws, "source": source})
    return out


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


# --------------------------------------------------------------------------- suites


def _suite_name_from(path: Path) -> str:
    name = path.name
    for suffix in (".yaml", ".yml"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.removesuffix(".phyjudge") or path.stem


def load_suite(path: str | Path, *, default_min_score: int = 3) -> Suite:
    """Read and validate a YAML suite file.

    Thresholds resolve per axis: the case's ``{axis: n}``, else the case's ``n``, else the
    defaults' ``{axis: n}``, else the defaults' ``n``, else ``default_min_score``.
    """
    if (
        isinstance(default_min_score, bool)
        or not isinstance(default_min_score, int)
        or not _MIN <= default_min_score <= _MAX
    ):
        raise InputError(
            f"default_min_score is {default_min_score!r}; {_THRESHOLD_RULE} Pass one of 1-5."
        )
    path = Path(path).absolute()
    reader = _Reader(path)
    root = _parse_yaml(path)
    if root is None:
        raise reader.fail(
            "the suite file is empty; a suite is a mapping with a `cases:` list (or a "
            "`prompts:` prompt set).",
            None,
        )
    top = reader.mapping(root, "the top level of the suite")
    reader.check_keys(root, _TOP_KEYS, "the suite")

    def key_line(node: _Node, key: str) -> int:
        return node.key_lines[key]

    name = _suite_name_from(path)
    if "suite" in top:
        name = reader.text(top["suite"], "suite (the suite's name)").strip()

    # defaults
    d_min: int | dict[str, int] = default_min_score
    d_metrics: tuple[str, ...] = GENERAL_METRICS
    d_laws: tuple[str, ...] = ()
    d_seed = 0
    d_params: dict[Any, Any] = {}
    d_samples = 1
    d_gates: dict[str, float | dict[str, float]] = {}
    if "defaults" in top and top["defaults"].data is not None:
        defaults = top["defaults"]
        reader.mapping(defaults, "defaults")
        reader.check_keys(defaults, _DEFAULT_KEYS, "defaults")
        dv = defaults.value
        if "min_score" in dv:
            d_min = reader.min_score(dv["min_score"], None, None)
        if "metrics" in dv:
            d_metrics = reader.metrics(dv["metrics"])
        if "laws" in dv:
            d_laws = reader.laws(dv["laws"])
        if "seed" in dv:
            d_seed = reader.seed(dv["seed"])
        if "params" in dv:
            d_params = reader.params(dv["params"])
        if "samples" in dv:
            d_samples = reader.samples(dv["samples"])
        for key in _GATE_KEYS[1:]:
            if key in dv:
                d_gates[key] = reader.gate(key, dv[key], None, None)

    template = reader.template(top["videos"]) if "videos" in top else None
    suite_generator = reader.generator(top["generator"]) if "generator" in top else None
    base = path.parent

    def resolve_thresholds(
        axes: tuple[str, ...], case_min: int | dict[str, int] | None
    ) -> dict[str, int]:
        out: dict[str, int] = {}
        for axis in axes:
            if isinstance(case_min, dict) and axis in case_min:
                out[axis] = case_min[axis]
            elif isinstance(case_min, int):
                out[axis] = case_min
            elif isinstance(d_min, dict) and axis in d_min:
                out[axis] = d_min[axis]
            elif isinstance(d_min, int):
                out[axis] = d_min
            else:
                out[axis] = default_min_score
        return out

    def resolve_gates(
        axes: tuple[str, ...], case_gates: dict[str, float | dict[str, float]]
    ) -> dict[str, Gates]:
        out: dict[str, Gates] = {}
        for axis in axes:
            values: dict[str, float | None] = {}
            for key in _GATE_KEYS[1:]:
                value: float | None = None
                for level in (case_gates.get(key), d_gates.get(key)):
                    if isinstance(level, dict) and axis in level:
                        value = level[axis]
                        break
                    if isinstance(level, float):
                        value = level
                        break
                values[key] = value
            tolerance = values.pop("tolerance")
            out[axis] = Gates(**values, tolerance=tolerance or 0.0)  # type: ignore[arg-type]
        return out

    def template_video(case_id: str, sample: int = 0) -> Path | None:
        if template is None:
            return None
        rel = template.format(id=case_id, suite=name, sample=sample)
        return (base / Path(rel).expanduser()).resolve()

    def template_samples(case_id: str, samples: int, line: int) -> tuple[Path, ...]:
        if template is None:
            return ()
        if samples > 1 and "{sample}" not in template.replace("{{", ""):
            raise reader.fail(
                f"case {case_id!r} has samples: {samples}, but the videos template "
                f"{template!r} has no {{sample}} placeholder, so every sample would be the same "
                "file. Add {sample} to the template (e.g. videos/{id}-{sample}.mp4), or give "
                "the case a `generator:`.",
                line,
            )
        return tuple(template_video(case_id, i) for i in range(samples))  # type: ignore[misc]

    cases: list[Case] = []
    seen: dict[str, str] = {}  # id -> where it was first defined, for duplicate messages

    # cases from a prompt set come first
    if "prompts" in top:
        pnode = top["prompts"]
        p_line = key_line(root, "prompts")
        rel = reader.text(pnode, "prompts (the path of a PhyGround prompt set)").strip()
        ppath = (base / Path(rel).expanduser()).resolve()
        if not ppath.is_file():
            raise reader.fail(
                f"the prompt set {rel!r} does not exist (looked for {ppath}); the path is "
                "relative to this suite file.",
                pnode.line,
            )
        if template is None and suite_generator is None:
            raise reader.fail(
                "the prompt set's cases have no video source; add a `videos:` template such as "
                "videos/{id}.mp4, or a `generator:`.",
                p_line,
            )
        for entry in load_prompt_set(ppath):
            cid = entry["id"]
            seen[cid] = f"prompt set {ppath.name} (line {p_line})"
            laws = tuple(entry["laws"])
            metrics = d_metrics
            sample_videos = template_samples(cid, d_samples, p_line)
            video = sample_videos[0] if sample_videos else None
            gates = resolve_gates(metrics + laws, {})
            _check_confidence_gates(reader, cid, gates, p_line)
            cases.append(
                Case(
                    id=cid,
                    prompt=entry["prompt"],
                    laws=laws,
                    metrics=metrics,
                    min_scores=resolve_thresholds(metrics + laws, None),
                    video=video,
                    marks=(),
                    criteria={},
                    line=p_line,
                    generator=suite_generator,
                    seed=d_seed,
                    params=dict(d_params),
                    source=entry["source"],
                    samples=d_samples,
                    sample_videos=sample_videos if d_samples > 1 else (),
                    gates=gates,
                )
            )

    case_nodes: list[_Node] = []
    if "cases" in top and top["cases"].data is not None:
        cnode = top["cases"]
        if cnode.kind != "seq":
            raise reader.fail(
                f"cases is {cnode.describe()}; write it as a list, each entry starting with "
                "`- id:`.",
                cnode.line,
            )
        case_nodes = cnode.value

    for node in case_nodes:
        cases.append(
            _read_case(
                reader,
                node,
                seen=seen,
                d_metrics=d_metrics,
                d_laws=d_laws,
                d_seed=d_seed,
                d_params=d_params,
                suite_generator=suite_generator,
                template_samples=template_samples,
                resolve_thresholds=resolve_thresholds,
                resolve_gates=resolve_gates,
                d_samples=d_samples,
                base=base,
            )
        )

    if not cases:
        where = "cases" if "cases" in top else "prompts" if "prompts" in top else None
        raise reader.fail(
            "the suite has empty cases: it defines no case. Add at least one entry under "
            "`cases:` (with `id:` and `prompt:`), or a `prompts:` prompt set that has entries.",
            key_line(root, where) if where else root.line,
        )
    return Suite(name=name, path=path, cases=tuple(cases), generator=suite_generator)


def _read_case(
    reader: _Reader,
    node: _Node,
    *,
    seen: dict[str, str],
    d_metrics: tuple[str, ...],
    d_laws: tuple[str, ...],
    d_seed: int,
    d_params: dict[Any, Any],
    suite_generator: str | None,
    template_samples: Callable[[str, int, int], tuple[Path, ...]],
    resolve_thresholds: Callable[..., dict[str, int]],
    resolve_gates: Callable[..., dict[str, Gates]],
    d_samples: int,
    base: Path,
) -> Case:
    fields = reader.mapping(node, "this case")
    reader.check_keys(node, _CASE_KEYS, "a case")
    if "id" not in fields:
        raise reader.fail(
            "this case has no `id`; give it a unique id made of letters, digits, '_', '.' and '-'.",
            node.line,
        )
    cid = reader.case_id(fields["id"])
    if cid in seen:
        raise reader.fail(
            f"duplicate case id {cid!r}: it is also defined at {seen[cid]}. Give every case "
            "its own id.",
            node.line,
        )
    seen[cid] = f"line {node.line}"
    if "prompt" not in fields:
        raise reader.fail(
            f"case {cid!r} has no `prompt`; add the text prompt the video was made from.",
            node.line,
        )
    prompt = reader.text(fields["prompt"], f"the prompt of case {cid!r}").strip()
    laws = reader.laws(fields["laws"]) if "laws" in fields else d_laws
    metrics = reader.metrics(fields["metrics"]) if "metrics" in fields else d_metrics
    axes = metrics + laws
    if not axes:
        raise reader.fail(
            f"case {cid!r} scores nothing: it has no laws and no metrics. Add `laws:` (e.g. "
            "[gravity]) or `metrics:` (e.g. [SA]).",
            node.line,
        )
    case_min = None
    if "min_score" in fields:
        case_min = reader.min_score(fields["min_score"], axes, cid)
    generator = reader.generator(fields["generator"]) if "generator" in fields else None
    samples = reader.samples(fields["samples"]) if "samples" in fields else d_samples
    samples_line = node.key_lines.get("samples", node.line)
    case_gates = {
        key: reader.gate(key, fields[key], axes, cid) for key in _GATE_KEYS[1:] if key in fields
    }
    gates = resolve_gates(axes, case_gates)
    _check_confidence_gates(reader, cid, gates, node.line)

    # Video: the case's own video, else its own generator, else the suite's template, else
    # the suite's generator (the most specific source wins).
    video: Path | None = None
    sample_videos: tuple[Path, ...] = ()
    if "video" in fields:
        rel = reader.text(fields["video"], f"the video of case {cid!r}").strip()
        if samples > 1 and "{sample}" not in rel:
            raise reader.fail(
                f"case {cid!r} has samples: {samples} and one `video:` ({rel!r}), so every "
                "sample would be the same file. Put {sample} in the path (e.g. "
                "clips/drop-{sample}.mp4), or give the case a `generator:`.",
                samples_line,
            )
        sample_videos = tuple(
            (base / Path(rel.replace("{sample}", str(i))).expanduser()).resolve()
            for i in range(samples)
        )
        video = sample_videos[0]
    elif generator is None:
        sample_videos = template_samples(cid, samples, samples_line)
        video = sample_videos[0] if sample_videos else None
    generator = generator or suite_generator
    if video is None and generator is None:
        raise reader.fail(
            f"case {cid!r} has no video source: give it `video: path/to/clip.mp4`, or add a "
            "`videos:` template such as videos/{id}.mp4 (or a `generator:`) to the suite.",
            node.line,
        )

    criteria = reader.criteria(fields["criteria"], laws, cid) if "criteria" in fields else {}
    seed = reader.seed(fields["seed"]) if "seed" in fields else d_seed
    params = dict(d_params)
    if "params" in fields:
        params.update(reader.params(fields["params"]))
    marks = reader.marks(fields["marks"]) if "marks" in fields else ()
    source = reader.params(fields["source"], "source") if "source" in fields else {}
    return Case(
        id=cid,
        prompt=prompt,
        laws=laws,
        metrics=metrics,
        min_scores=resolve_thresholds(axes, case_min),
        video=video,
        marks=marks,
        criteria=criteria,
        line=node.line,
        generator=generator,
        seed=seed,
        params=params,
        source=source,
        samples=samples,
        sample_videos=sample_videos if samples > 1 else (),
        gates=gates,
    )


def _check_confidence_gates(reader: _Reader, cid: str, gates: dict[str, Gates], line: int) -> None:
    for axis, gate in gates.items():
        if gate.confidence is not None and not gate.gated:
            raise reader.fail(
                f"case {cid!r} sets confidence for {axis!r} but no pass_rate or min_mean for "
                "it; confidence says how sure a pass_rate or min_mean gate must be. Add one "
                "of them (e.g. pass_rate: 0.75), or remove confidence.",
                line,
            )
