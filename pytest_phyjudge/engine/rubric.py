"""The judge's prompts: the template from the adapter's ``subq+human.yaml``, the sub-questions
and criteria from its ``infer.py`` (read with ``ast``, never run), and their rendering."""

from __future__ import annotations

import ast
import string
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pytest_phyjudge._exceptions import InputError, RubricError
from pytest_phyjudge.engine.axes import GENERAL_METRICS, PHYSICAL_LAWS, check_axis, is_law
from pytest_phyjudge.engine.judgment import RenderedPrompt

TEMPLATE_FILE = "subq+human.yaml"
CONSTANTS_FILE = "infer.py"
#: The module constants of the reference script that hold the rubric's text.
CONSTANT_NAMES = ("GENERAL_SUB_QUESTIONS", "PHYSICAL_SUB_QUESTIONS", "PHYSICAL_CRITERIA")
#: Placeholders each template must use; leaving one out silently changes what the model sees.
GENERAL_PLACEHOLDERS = frozenset({"prompt", "questions_block"})
PHYSICAL_PLACEHOLDERS = frozenset({"prompt", "questions_block", "law", "criteria"})


class RubricWarning(UserWarning):
    """Part of the rubric came from the project's bundled text: scores may be miscalibrated."""


def questions_block(questions: list[str] | tuple[str, ...]) -> str:
    """Sub-questions one per line as ``q1: ...``, ``q2: ...`` (the format the model saw)."""
    return "\n".join(f"q{i}: {q}" for i, q in enumerate(questions, start=1))


@dataclass(frozen=True)
class Rubric:
    """Everything needed to render any of the 16 axes' prompts.

    ``origins`` says where each piece came from (a file path, or ``bundled``); ``calibrated``
    is True only when every piece came from the adapter, the only text scores are calibrated on.
    """

    system_prompt: str
    general_templates: Mapping[str, str]
    physical_template: str
    physical_sub_questions_enabled: bool
    general_sub_questions: Mapping[str, tuple[str, ...]]
    physical_sub_questions: Mapping[str, tuple[str, ...]]
    physical_criteria: Mapping[str, str]
    origins: Mapping[str, str] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        return all(origin != "bundled" for origin in self.origins.values())

    def questions(self, axis: str) -> tuple[str, ...]:
        """The sub-questions the prompt for ``axis`` lists (empty when disabled for laws)."""
        axis = check_axis(axis)
        if not is_law(axis):
            return self.general_sub_questions[axis]
        return self.physical_sub_questions[axis] if self.physical_sub_questions_enabled else ()

    def render(self, axis: str, caption: str, *, criteria: str | None = None) -> RenderedPrompt:
        """Render the prompt for one axis exactly as the reference script formats it."""
        axis = check_axis(axis)
        block = questions_block(self.questions(axis))
        if is_law(axis):
            text = self.physical_template.format(
                prompt=caption,
                questions_block=block,
                law=axis,
                criteria=self.physical_criteria[axis] if criteria is None else criteria,
            )
        else:
            if criteria is not None:
                raise InputError(
                    f"criteria can only be overridden for a law, not {axis!r}: the "
                    "general metrics have no criterion text."
                )
            text = self.general_templates[axis].format(prompt=caption, questions_block=block)
        return RenderedPrompt(key=axis, system=self.system_prompt, user=text)


# -- reading the template ------------------------------------------------------------------


def _check_placeholders(text: Any, where: str, required: frozenset[str]) -> str:
    if not isinstance(text, str) or not text.strip():
        raise RubricError(f"{where} must be a non-empty string template; fix the template file.")
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise RubricError(
            f"{where} is not a valid str.format template ({exc}); literal braces must be "
            "doubled as '{{' and '}}'."
        ) from exc
    missing = sorted(required - fields)
    unknown = sorted(fields - required)
    if missing:
        raise RubricError(
            f"{where} lacks the placeholder(s) {', '.join('{' + m + '}' for m in missing)}; "
            "the judge was trained with them, so add them back to the template."
        )
    if unknown:
        raise RubricError(
            f"{where} uses unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
            f"the known ones are {', '.join(sorted(required))}. Double literal braces."
        )
    return text


def parse_template(data: Any, source: str) -> dict[str, Any]:
    """Validate the mapping read from a ``subq+human.yaml``; errors name the file and key."""
    if not isinstance(data, Mapping):
        raise RubricError(f"{source}: the template file must be a YAML mapping.")

    def need(key: str) -> Any:
        if key not in data:
            raise RubricError(f"{source}: the template has no {key!r} key; restore it.")
        return data[key]

    system = need("system_prompt")
    if not isinstance(system, str) or not system.strip():
        raise RubricError(f"{source}: 'system_prompt' must be a non-empty string.")
    prompts = need("eval_prompts")
    if not isinstance(prompts, Mapping):
        raise RubricError(f"{source}: 'eval_prompts' must map each general metric to a template.")
    general = {}
    for metric in GENERAL_METRICS:
        if metric not in prompts:
            raise RubricError(f"{source}: 'eval_prompts' has no template for {metric!r}.")
        general[metric] = _check_placeholders(
            prompts[metric], f"{source}: eval_prompts.{metric}", GENERAL_PLACEHOLDERS
        )
    physical = _check_placeholders(
        need("physical_template"), f"{source}: physical_template", PHYSICAL_PLACEHOLDERS
    )
    return {
        "system_prompt": system,
        "general_templates": general,
        "physical_template": physical,
        "physical_sub_questions_enabled": bool(data.get("physical_sub_questions", True)),
    }


# -- reading the constants, by walking the syntax tree ------------------------------------


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


# -- assembling a rubric ------------------------------------------------------------------


def _bundled_data() -> tuple[dict[str, Any], dict[str, Any]]:
    folder = resources.files("pytest_phyjudge") / "bundled"
    template = yaml.safe_load((folder / TEMPLATE_FILE).read_text(encoding="utf-8"))
    constants = yaml.safe_load((folder / "sub_questions.yaml").read_text(encoding="utf-8"))
    return template, constants


def bundled_template_data() -> dict[str, Any]:
    """The project's own template, in the structure of ``subq+human.yaml``."""
    return _bundled_data()[0]


def bundled_constants() -> dict[str, Any]:
    """The project's own sub-questions and criteria, under the reference constant names."""
    return _bundled_data()[1]


def _string_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, (list, tuple)) and value and all(isinstance(q, str) for q in value):
        return tuple(value)
    return None


def _pick_per_axis(
    constant: str,
    axes: tuple[str, ...],
    found: Mapping[str, Any],
    bundled: Mapping[str, Any],
    origin: str,
    origins: dict[str, str],
    convert: Any,
) -> dict[str, Any]:
    from_adapter = found.get(constant)
    table = from_adapter if isinstance(from_adapter, Mapping) else {}
    picked = {}
    for axis in axes:
        value = convert(table.get(axis))
        if value is None:
            value = convert(bundled[constant][axis])
            origins[f"{constant}.{axis}"] = "bundled"
        else:
            origins[f"{constant}.{axis}"] = origin
        picked[axis] = value
    return picked


def load_rubric(folder: str | Path | None) -> Rubric:
    """The rubric of the adapter snapshot in ``folder`` (the bundled one for ``None``).

    The template comes from ``subq+human.yaml`` and must be valid when present. Sub-questions
    and criteria come from the literal constants of ``infer.py``. Whatever is absent, or not a
    literal, comes from the bundled rubric, with a RubricWarning that names it.
    """
    bundled_template, bundled_constants_ = _bundled_data()
    origins: dict[str, str] = {}
    template_path = None if folder is None else Path(folder) / TEMPLATE_FILE
    if template_path is not None and template_path.is_file():
        try:
            data = yaml.safe_load(template_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise RubricError(f"{template_path}: not valid YAML ({exc}).") from exc
        template = parse_template(data, str(template_path))
        origins["template"] = str(template_path)
    else:
        template = parse_template(bundled_template, "bundled template")
        origins["template"] = "bundled"

    found: dict[str, Any] = {}
    constants_path = None if folder is None else Path(folder) / CONSTANTS_FILE
    constants_origin = "bundled"
    if constants_path is not None and constants_path.is_file():
        try:
            found = extract_constants(constants_path.read_text(encoding="utf-8"))
            constants_origin = str(constants_path)
        except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
            warnings.warn(
                f"{constants_path} could not be parsed ({exc}); using the bundled sub-questions "
                "and criteria instead.",
                RubricWarning,
                stacklevel=2,
            )

    general = _pick_per_axis(
        "GENERAL_SUB_QUESTIONS",
        GENERAL_METRICS,
        found,
        bundled_constants_,
        constants_origin,
        origins,
        _string_list,
    )
    physical = _pick_per_axis(
        "PHYSICAL_SUB_QUESTIONS",
        PHYSICAL_LAWS,
        found,
        bundled_constants_,
        constants_origin,
        origins,
        _string_list,
    )
    criteria = _pick_per_axis(
        "PHYSICAL_CRITERIA",
        PHYSICAL_LAWS,
        found,
        bundled_constants_,
        constants_origin,
        origins,
        lambda v: v if isinstance(v, str) and v.strip() else None,
    )
    rubric = Rubric(
        general_sub_questions=general,
        physical_sub_questions=physical,
        physical_criteria=criteria,
        origins=origins,
        **template,
    )
    if folder is not None and not rubric.calibrated:
        fallen = sorted(k for k, v in origins.items() if v == "bundled")
        shown = ", ".join(fallen[:6]) + (f" and {len(fallen) - 6} more" if len(fallen) > 6 else "")
        warnings.warn(
            f"The adapter in {folder} lacks usable {shown}; the project's bundled rubric text "
            "stands in, and the judge's scores may be miscalibrated, since it was trained on "
            f"its own {TEMPLATE_FILE} and {CONSTANTS_FILE}.",
            RubricWarning,
            stacklevel=2,
        )
    return rubric


def infer_py_source(constants: Mapping[str, Any]) -> str:
    """Python source that defines ``constants`` as plain literals (for the tiny judge)."""
    lines = ['"""Rubric constants of a PhyJudge-style adapter, written as plain literals."""', ""]
    for name in CONSTANT_NAMES:
        lines.append(f"{name} = {constants[name]!r}")
        lines.append("")
    return "\n".join(lines)
