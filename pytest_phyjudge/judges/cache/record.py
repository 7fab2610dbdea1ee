"""A judge as a replay needs it: who it is and how its prompts read, written down with the
judgments it made, so that a machine without the adapter or a server can key and replay them.

The record is what the judgment cache stores beside its judgments, what ``phyjudge cache
export`` writes into its JSON lines, and what ``--phyjudge-identity FILE`` reads.

Threat model: an identity file or a ``judge_record`` line comes with an export from whoever
sent it. At worst it holds a key twice, a field of another type (a number for a template,
a string for a table), or an axis missing; each is an InputError naming the field before
any prompt is rendered from it. Its claim of a judge is believed as given (see
docs/explanation/reliability.md, "Not guaranteed"); templates are filled by plain
placeholders only, never run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._fields import BOOLEAN, OBJECT, STRING, TEXT, TEXTS, Fields, Rule
from pytest_phyjudge._files import FileProblem, read_json_file
from pytest_phyjudge.engine.axes import GENERAL_METRICS, PHYSICAL_LAWS
from pytest_phyjudge.engine.judgment import JudgeIdentity, portable_name
from pytest_phyjudge.engine.rubric import Rubric
from pytest_phyjudge.judges.settings import PYTEST_SURFACE, Surface

#: The ``format`` field of an identity file.
IDENTITY_FORMAT = "pytest-phyjudge-judge"
IDENTITY_VERSION = 1


def judge_material(identity: JudgeIdentity) -> dict[str, Any]:
    """What names a judge in a cache key: the adapter's weights by content where known (its
    folder or revision then adds nothing), else its id and revision. A local base folder
    counts by its last component, so the same model in another folder is the same judge."""
    material: dict[str, Any] = {"kind": identity.kind, "base": portable_name(identity.base)}
    if identity.adapter_sha256:
        material["adapter_sha256"] = identity.adapter_sha256
    else:
        material.update(adapter=identity.adapter, revision=identity.revision)
    return material


@dataclass(frozen=True)
class JudgeRecord:
    """The identity and rubric of one judge: enough to render its prompts and key its
    judgments without loading it."""

    identity: JudgeIdentity
    rubric: Rubric

    @cached_property
    def id(self) -> str:
        """Short content id: the same judge and rubric give the same id on every machine.
        (Computed once: an import asks it for every line.)"""
        material = {"judge": judge_material(self.identity), "rubric": _rubric_data(self.rubric)}
        text = json.dumps(material, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def describe(self) -> str:
        calibrated = "" if self.rubric.calibrated else ", bundled rubric"
        return f"{self.identity.describe()}{calibrated} [judge id {self.id}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": IDENTITY_FORMAT,
            "version": IDENTITY_VERSION,
            "judge": self.identity.to_dict(),
            "rubric": _rubric_data(self.rubric),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> JudgeRecord:
        """The inverse of ``to_dict``; anything else is an InputError naming ``where``."""
        if not isinstance(data, dict) or data.get("format") != IDENTITY_FORMAT:
            raise InputError(
                f"{where} is not a judge identity written by pytest-phyjudge (no "
                f"'format: {IDENTITY_FORMAT}'). Write one with 'phyjudge cache export FILE' on "
                "the machine that recorded the judgments."
            )
        _check_record(data, where)
        try:
            identity = JudgeIdentity(**data["judge"])
            rubric_fields = dict(data["rubric"])
            rubric = Rubric(
                system_prompt=rubric_fields["system_prompt"],
                general_templates=dict(rubric_fields["general_templates"]),
                physical_template=rubric_fields["physical_template"],
                physical_sub_questions_enabled=bool(
                    rubric_fields["physical_sub_questions_enabled"]
                ),
                general_sub_questions=_tuples(rubric_fields["general_sub_questions"]),
                physical_sub_questions=_tuples(rubric_fields["physical_sub_questions"]),
                physical_criteria=dict(rubric_fields["physical_criteria"]),
                origins=dict(rubric_fields.get("origins") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{where} is a damaged judge identity ({type(exc).__name__}: {exc}). Export it "
                "again with 'phyjudge cache export'."
            ) from exc
        return cls(identity, rubric)


#: What each table of a recorded rubric maps every one of its axes to.
_TABLES = (
    ("general_templates", GENERAL_METRICS, STRING),
    ("general_sub_questions", GENERAL_METRICS, TEXTS),
    ("physical_sub_questions", PHYSICAL_LAWS, TEXTS),
    ("physical_criteria", PHYSICAL_LAWS, STRING),
)


def _check_record(data: dict[str, Any], where: str) -> None:
    """Every field a replay renders prompts from has its writer's type, and every axis its
    entry: an identity file or a judge_record line comes from whoever sent the export, and a
    wrong one must be an InputError naming its field, not a TypeError on the first replay."""
    fields = Fields(
        f"{where} is a damaged judge identity", "Export it again with 'phyjudge cache export'."
    )
    judge = fields.exact(data.get("judge"), "judge", ("kind", "adapter"), _IDENTITY_OPTIONAL)
    fields.fields(judge, "judge", STRING, "kind", "adapter", needed=True)
    fields.fields(judge, "judge", TEXT, *_IDENTITY_OPTIONAL)
    rubric = fields.value(data.get("rubric"), "rubric", _AN_OBJECT)
    fields.fields(rubric, "rubric", STRING, "system_prompt", "physical_template", needed=True)
    fields.fields(rubric, "rubric", BOOLEAN, "physical_sub_questions_enabled", needed=True)
    for name, axes, rule in _TABLES:
        table = fields.value(rubric.get(name), f"rubric.{name}", _AN_OBJECT)
        fields.fields(table, f"rubric.{name}", rule, *axes, needed=True)
    origins = fields.obj(rubric, "origins", "rubric")
    fields.fields(origins, "rubric.origins", STRING, *origins)


_IDENTITY_OPTIONAL = ("revision", "base", "adapter_sha256")
_AN_OBJECT: Rule = (OBJECT[0], "an object")


def _rubric_data(rubric: Rubric) -> dict[str, Any]:
    data = asdict(rubric)
    for name in ("general_sub_questions", "physical_sub_questions"):
        data[name] = {axis: list(qs) for axis, qs in data[name].items()}
    return data


def _tuples(table: Any) -> dict[str, tuple[str, ...]]:
    return {str(axis): tuple(str(q) for q in questions) for axis, questions in table.items()}


def read_identity_file(path: str | Path, surface: Surface = PYTEST_SURFACE) -> JudgeRecord:
    """The judge named by an identity file; a clear InputError (naming ``surface``'s flag)
    for anything else."""
    file = Path(path)
    try:
        data = read_json_file(file, unique_keys=True)
    except FileProblem as problem:
        raise InputError(
            f"The judge identity {str(file)!r} {problem.reason}. Check the path given to "
            f"{surface.flag('identity')}, or write the file again with 'phyjudge cache export'."
        ) from None
    return JudgeRecord.from_dict(data, str(file))


def identity_text(record: JudgeRecord) -> str:
    """The text of ``record``'s identity file."""
    return json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n"


def write_identity_file(record: JudgeRecord, path: str | Path) -> Path:
    file = Path(path)
    file.write_text(identity_text(record), encoding="utf-8")
    return file
