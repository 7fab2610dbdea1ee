"""The judge's prompts: the template from the adapter's ``subq+human.yaml``, the sub-questions
and criteria from its ``infer.py`` (see infer_constants), the bundled fallbacks, and rendering."""

from __future__ import annotations

import string
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pytest_phyjudge._exceptions import InputError, RubricError
from pytest_phyjudge._files import FileProblem, read_text_file
from pytest_phyjudge.engine.axes import GENERAL_METRICS, PHYSICAL_LAWS, check_axis, is_law
from pytest_phyjudge.engine.infer_constants import (
    CONSTANTS_FILE,
    MAX_SOURCE_SIZE,
    extract_constants,
)
from pytest_phyjudge.engine.judgment import RenderedPrompt

TEMPLATE_FILE = "subq+human.yaml"
#: Placeholders each template must use; leaving one out silently changes what the model sees.
GENERAL_PLACEHOLDERS = frozenset({"prompt", "questions_block"})
PHYSICAL_PLACEHOLDERS = frozenset({"prompt", "questions_block", "law", "criteria"})


class RubricWarning(UserWarning):
    """Part of the rubric came from the project's bundled text: scores may be miscalibrated."""


def _fill(template: str, values: Mapping[str, str]) -> str:
    """``template.format(**values)`` for plain ``{name}`` placeholders only: a format spec,
    conversion, attribute or index is refused, never run (``{prompt:>900000000}``)."""
    pieces = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        pieces.append(literal)
        if name is None:
            continue
        if spec or conversion or name not in values:
            raise RubricError(
                f"the template placeholder {_shown(name, spec, conversion)} is not "
                "one of the plain placeholders the rubric fills in."
            )
        pieces.append(values[name])
    return "".join(pieces)


def _shown(name: str, spec: str | None, conversion: str | None) -> str:
    """A placeholder as it was written in the template."""
    return (
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
    )


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
            text = _fill(
                self.physical_template,
                dict(
                    prompt=caption,
                    questions_block=block,
                    law=axis,
                    criteria=self.physical_criteria[axis] if criteria is None else criteria,
                ),
            )
        else:
            if criteria is not None:
                raise InputError(
                    f"criteria can only be overridden for a law, not {axis!r}: the "
                    "general metrics have no criterion text."
                )
            text = _fill(self.general_templates[axis], dict(prompt=caption, questions_block=block))
        return RenderedPrompt(key=axis, system=self.system_prompt, user=text)


# -- reading the template ------------------------------------------------------------------


def _check_placeholders(text: Any, where: str, required: frozenset[str]) -> str:
    if not isinstance(text, str) or not text.strip():
        raise RubricError(f"{where} must be a non-empty string template; fix the template file.")
    try:
        parsed = [part for part in string.Formatter().parse(text) if part[1] is not None]
    except ValueError as exc:
        raise RubricError(
            f"{where} is not a valid str.format template ({exc}); literal braces must be "
            "doubled as '{{' and '}}'."
        ) from exc
    plain = ", ".join("{" + r + "}" for r in sorted(required))
    for _, name, spec, conversion in parsed:
        if spec or conversion or "." in name or "[" in name:
            base = name.split(".")[0].split("[")[0]
            fix = f"write it as {{{base}}}" if base in required else f"use only {plain}"
            raise RubricError(
                f"{where} has the placeholder {_shown(name, spec, conversion)}, but only plain "
                f"placeholders ({plain}) are filled in: no format spec, '!' conversion, "
                f"attribute or index. Fix the template: {fix}. Double literal braces as "
                "'{{' and '}}' where they are meant as text."
            )
    fields = {name for _, name, _, _ in parsed}
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


def _read_template(
    folder: str | Path | None, bundled: Any, origins: dict[str, str]
) -> dict[str, Any]:
    """The adapter's template when it has one (it must be valid), else the bundled one."""
    template_path = None if folder is None else Path(folder) / TEMPLATE_FILE
    if template_path is not None and template_path.is_file():
        try:
            data = yaml.safe_load(read_text_file(template_path))
        except FileProblem as problem:  # not UTF-8, or too large: the snapshot is damaged
            raise RubricError(f"{template_path} {problem.reason}; re-download it.") from None
        except yaml.YAMLError as exc:
            raise RubricError(f"{template_path}: not valid YAML ({exc}).") from exc
        origins["template"] = str(template_path)
        return parse_template(data, str(template_path))
    origins["template"] = "bundled"
    return parse_template(bundled, "bundled template")


def _read_constants(
    folder: str | Path | None, problems: dict[str, str]
) -> tuple[dict[str, Any], str]:
    """The literal constants of the adapter's ``infer.py`` and where they came from; none
    (with a warning when the file is there but unreadable) means the bundled ones. Why a
    constant that is there could not be read goes into ``problems``."""
    constants_path = None if folder is None else Path(folder) / CONSTANTS_FILE
    if constants_path is None or not constants_path.is_file():
        return {}, "bundled"
    try:
        with constants_path.open(encoding="utf-8") as file:
            source = file.read(MAX_SOURCE_SIZE + 1)  # one more shows that it is too long
        return extract_constants(source, problems=problems), str(constants_path)
    except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
        warnings.warn(
            f"{constants_path} could not be parsed ({exc}); using the bundled sub-questions "
            "and criteria instead.",
            RubricWarning,
            stacklevel=3,  # point at load_rubric's caller
        )
        return {}, "bundled"


def load_rubric(folder: str | Path | None) -> Rubric:
    """The rubric of the adapter snapshot in ``folder`` (the bundled one for ``None``).

    The template comes from ``subq+human.yaml`` and must be valid when present. Sub-questions
    and criteria come from the literal constants of ``infer.py``. Whatever is absent, or not a
    literal, comes from the bundled rubric, with a RubricWarning that names it.
    """
    bundled_template, bundled_constants_ = _bundled_data()
    origins: dict[str, str] = {}
    template = _read_template(folder, bundled_template, origins)
    problems: dict[str, str] = {}
    found, constants_origin = _read_constants(folder, problems)
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
        why = "".join(f" ({name}: {problem})" for name, problem in sorted(problems.items()))
        warnings.warn(
            f"The adapter in {folder} lacks usable {shown}{why}; the project's bundled rubric text "
            "stands in, and the judge's scores may be miscalibrated, since it was trained on "
            f"its own {TEMPLATE_FILE} and {CONSTANTS_FILE}.",
            RubricWarning,
            stacklevel=2,
        )
    return rubric
