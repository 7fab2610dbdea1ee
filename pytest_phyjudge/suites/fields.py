"""Checks of single suite fields, each failure a SuiteError at the line of the field."""

from __future__ import annotations

import difflib
import math
import string
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from pytest_phyjudge._exceptions import InputError, SuiteError
from pytest_phyjudge.engine.axes import (
    ALL_AXES,
    GENERAL_METRICS,
    LAW_DOMAINS,
    MAX_SCORE,
    MIN_SCORE,
    check_axis,
    check_law,
    is_score,
)
from pytest_phyjudge.suites.generators import (
    ENTRY_POINT_GROUP,
    HOOK,
    HOW_TO_REGISTER,
    INI_OPTION,
    NAME_RULE,
    is_generator_name,
    is_import_target,
    registered_list,
    suggested_name,
)
from pytest_phyjudge.suites.model import is_case_id
from pytest_phyjudge.suites.yaml_lines import Node, describe_scalar

P = ParamSpec("P")
T = TypeVar("T")

#: The largest seed: room for every sample's seed below 2**63 (torch takes up to 2**64 - 1,
#: NumPy's SeedSequence any non-negative number; 2**63 keeps both and a C ``int64_t`` happy).
MAX_SEED = 2**63 - 1 - 100_000

#: ``samples`` first: the other gate keys take a value per axis.
GATE_KEYS = ("samples", "pass_rate", "min_mean", "confidence", "tolerance")
AXIS_GATE_KEYS = GATE_KEYS[1:]
THRESHOLD_RULE = f"thresholds are integers from {MIN_SCORE} to {MAX_SCORE}."
_TEMPLATE_FIELDS = ("id", "suite", "sample")
_MAX_SAMPLES = 1000
#: What the plugin passes a generator itself, so no ``params`` key may take these names.
_CALL_ARGUMENTS = ("prompt", "seed", "out_path")
#: What each gate accepts, and how a message says so.
_GATE_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "pass_rate": (lambda v: 0 < v <= 1, "a fraction in (0, 1], e.g. 0.75"),
    "min_mean": (
        lambda v: MIN_SCORE <= v <= MAX_SCORE,
        f"a mean score from {MIN_SCORE} to {MAX_SCORE}",
    ),
    "confidence": (lambda v: 0 < v < 1, "a confidence in (0, 1), e.g. 0.9"),
    "tolerance": (lambda v: 0 <= v <= MAX_SCORE - MIN_SCORE, "a score drop from 0 to 4, e.g. 1"),
}


def suggest(name: object, choices: tuple[str, ...]) -> str:
    """`` Did you mean 'x'?`` for the closest choice, or nothing when none is close."""
    text = str(name)
    close = [c for c in choices if c.lower() == text.lower()]
    close = close or difflib.get_close_matches(text, choices, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


class Reader:
    """Validates nodes of one suite file. A check raises a SuiteError at the node's line;
    :meth:`attempt` records it instead, so independent problems are all reported at once.

    ``generators``: the names registered in trusted configuration; a ``generator:`` naming
    another is an error at its line. None (reading a suite outside pytest) checks only that
    each is a name."""

    def __init__(self, path: Path, generators: Collection[str] | None = None):
        self.path = path
        self.generators = None if generators is None else frozenset(generators)
        self.errors: list[SuiteError] = []

    def fail(self, message: str, line: int | None) -> SuiteError:
        return SuiteError(message, path=self.path, line=line)

    # ------------------------------------------------------------------ gathering errors

    def record(self, message: str, line: int | None) -> None:
        """Note a problem and read on: the ones that follow may be independent of it."""
        self.errors.append(self.fail(message, line))

    def attempt(self, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """``read(...)``, or None after recording its SuiteError."""
        try:
            return read(*args, **kwargs)
        except SuiteError as exc:
            self.errors.append(exc)
            return None

    def raise_errors(self) -> None:
        """Raise what was recorded: the one error as it is, several as one listing each."""
        if not self.errors:
            return
        if len(self.errors) == 1:
            raise self.errors[0]
        # File order reads best; a prompt set's own errors (another file) come last.
        errors = sorted(self.errors, key=lambda e: (e.path != self.path, e.line or 0))
        listing = "\n".join(f"  {error}" for error in errors)
        raise SuiteError(
            f"the suite has {len(errors)} problems; fix each at its line:\n{listing}",
            path=self.path,
            errors=tuple(errors),
        )

    # ------------------------------------------------------------------ shapes

    def check_keys(self, node: Node, allowed: tuple[str, ...], where: str) -> bool:
        """Record every unknown key of a mapping; True when there is none."""
        clean = True
        for key, key_line in node.key_lines.items():
            if isinstance(key, str) and key in allowed:
                continue
            clean = False
            self.record(
                f"unknown key {str(key)!r} in {where}.{suggest(key, allowed)} "
                f"The keys of {where} are: {', '.join(allowed)}.",
                key_line,
            )
        return clean

    def mapping(self, node: Node, what: str) -> dict[Any, Node]:
        if node.kind != "map":
            raise self.fail(f"{what} is {node.describe()}; write it as a mapping.", node.line)
        return node.value

    def text(self, node: Node, what: str) -> str:
        if not isinstance(node.data, str) or not node.data.strip():
            raise self.fail(f"{what} is {node.describe()}; write it as non-empty text.", node.line)
        return node.data

    def integer(self, node: Node, what: str) -> int:
        if isinstance(node.data, bool) or not isinstance(node.data, int):
            raise self.fail(f"{what} is {node.describe()}; write a whole number.", node.line)
        return node.data

    def names(self, node: Node, what: str) -> list[Node]:
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

    # ------------------------------------------------------------------ axes

    def laws(self, node: Node) -> tuple[str, ...]:
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

    def metrics(self, node: Node) -> tuple[str, ...]:
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
                    f"unknown general metric {name!r}.{suggest(name, GENERAL_METRICS)} "
                    f"The general metrics are: {', '.join(GENERAL_METRICS)}.",
                    item.line,
                )
            if name not in out:
                out.append(name)
        return tuple(out)

    def per_axis(
        self,
        key: str,
        node: Node,
        scored: tuple[str, ...] | None,
        case: str | None,
        value: Callable[[Node, str], Any],
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

    def threshold(self, node: Node, label: str) -> int:
        value = node.data
        if is_score(value):
            return value
        hint = ""
        if isinstance(value, str) and value.strip().isdigit():
            hint = " Write the number without quotes."
        raise self.fail(f"{label} is {node.describe()}; {THRESHOLD_RULE}{hint}", node.line)

    def min_score(
        self, node: Node, scored: tuple[str, ...] | None, case: str | None
    ) -> int | dict[str, int]:
        """An int, or {axis: int}."""
        return self.per_axis("min_score", node, scored, case, self.threshold)

    def gate(
        self, key: str, node: Node, scored: tuple[str, ...] | None, case: str | None
    ) -> float | dict[str, float]:
        """A number for every axis, or ``{axis: number}``; checked against the key's range."""
        return self.per_axis(
            key, node, scored, case, lambda child, label: self._gate_value(key, child, label)
        )

    def _gate_value(self, key: str, node: Node, label: str) -> float:
        value = node.data
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        accept, rule = _GATE_RULES[key]
        if number and math.isfinite(value) and accept(value):
            return float(value)
        raise self.fail(
            f"{label} is {node.describe()}; write {rule} (or a mapping {{axis: value}}).",
            node.line,
        )

    def criteria(self, node: Node, laws: tuple[str, ...], case: str) -> dict[str, str]:
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

    # ------------------------------------------------------------------ everything else

    def case_id(self, node: Node) -> str:
        value = node.data
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not is_case_id(value):
            raise self.fail(
                f"the case id is {node.describe()}; an id is made of letters, digits, '_', "
                "'.' and '-' (it becomes part of the pytest node id).",
                node.line,
            )
        return value

    def generator(self, node: Node) -> str:
        """A registered generator's name. An import path is refused: a suite never makes
        pytest import or call anything by name (see ``suites.generators``)."""
        value = node.data.strip() if isinstance(node.data, str) else node.data
        if is_import_target(value):
            name = suggested_name(value)
            raise self.fail(
                f"generator is {node.describe()}, an import path; a suite names its generator, "
                "it never imports one. Register it in trusted configuration: "
                f"`{name} = {value}` under `{INI_OPTION}` in your ini file, or "
                f"{{{name!r}: function}} returned from `{HOOK}(config)` in a conftest.py (or "
                f"an installed package's `{ENTRY_POINT_GROUP}` entry point); then write "
                f"`generator: {name}` here.",
                node.line,
            )
        if not is_generator_name(value):
            raise self.fail(
                f"generator is {node.describe()}; write the name of a registered generator "
                f"({NAME_RULE}). {HOW_TO_REGISTER}",
                node.line,
            )
        if self.generators is not None and value not in self.generators:
            raise self.fail(
                f"the generator {value!r} is not registered."
                f"{suggest(value, tuple(sorted(self.generators)))} "
                f"{registered_list(self.generators)} {HOW_TO_REGISTER}",
                node.line,
            )
        return value

    def params(self, node: Node) -> dict[str, Any]:
        """The generator's keyword arguments: each key a Python name, none of the three the
        plugin passes itself (a clash would fail every clip at run time)."""
        self.mapping(node, "params")
        for key, line in node.key_lines.items():
            if not isinstance(key, str) or not key.isidentifier():
                raise self.fail(
                    f"params has the key {describe_scalar(key)}; each key becomes a keyword "
                    "argument of the generator, so write a Python name such as `steps`.",
                    line,
                )
            if key in _CALL_ARGUMENTS:
                hint = " Set `seed:` on the case or in `defaults:`." if key == "seed" else ""
                raise self.fail(
                    f"params has the key {key!r}; the generator is called as "
                    "function(prompt, seed=..., out_path=..., **params), so no param is named "
                    f"{', '.join(_CALL_ARGUMENTS)}.{hint}",
                    line,
                )
        return dict(node.data)

    def source(self, node: Node) -> dict[Any, Any]:
        """Free metadata (a prompt set's other fields), kept for the report."""
        self.mapping(node, "source")
        return dict(node.data)

    def seed(self, node: Node) -> int:
        """A seed every generator takes: samples use ``seed .. seed + samples - 1``, and
        torch's and NumPy's generators refuse what is negative or past 64 bits."""
        value = self.integer(node, "seed")
        if not 0 <= value <= MAX_SEED:
            raise self.fail(
                f"seed is {node.describe()}; write a whole number from 0 to {MAX_SEED} (seed "
                "+ samples must stay within 64 bits, the range random generators take).",
                node.line,
            )
        return value

    def samples(self, node: Node) -> int:
        value = node.data
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_SAMPLES:
            return value
        raise self.fail(
            f"samples is {node.describe()}; write a positive whole number (at most "
            f"{_MAX_SAMPLES}): how many clips to judge for the case.",
            node.line,
        )

    def template(self, node: Node) -> str:
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
