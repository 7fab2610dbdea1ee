"""PhyGround prompt sets (JSON) read into plain entries a suite turns into cases.

Threat model: a prompt set comes from anyone (a shared benchmark, a PR). At worst it is not
a file (a pipe, a device), too large or deep, not UTF-8, holds a key twice (a reviewer would
read one prompt, the judge another), an id that is no name (a path, a control character),
an id twice, or laws of the wrong type. Each is a SuiteError naming the file and the entry;
nothing is written, and nothing in it is run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError, SuiteError
from pytest_phyjudge._files import FileProblem, parse_json
from pytest_phyjudge.engine.axes import GENERAL_METRICS, check_law
from pytest_phyjudge.suites.model import is_case_id
from pytest_phyjudge.suites.yaml_lines import read_text

_FORMAT = (
    'A PhyGround prompt set is {"prompts": [{"video": ..., "prompt": ..., '
    '"physical_laws": [...]}, ...]}, or a list of such entries that carry "id_stem".'
)

_Fail = Callable[..., SuiteError]


def load_prompt_set(path: str | Path) -> list[dict]:
    """Read a PhyGround prompt set into ``[{"id", "prompt", "laws", "source"}]``.

    Accepted: PhyGround's ``{"prompts": [{"video", "prompt", "physical_laws", ...}]}``, or a
    bare JSON list of entries that carry ``id_stem``. The id is the entry's ``id_stem``, else
    its ``video``; the laws are its ``physical_laws`` (validated, order kept, repeats
    dropped); every other field goes into ``source``. Anything else is a SuiteError that
    names the file and the entry.
    """
    path = Path(path)
    text = read_text(path, "prompt set")

    def fail(message: str, line: int | None = None) -> SuiteError:
        return SuiteError(message, path=path, line=line)

    try:
        data = parse_json(text, unique_keys=True)
    except FileProblem as problem:
        raise fail(
            f"the prompt set {problem.reason}. A prompt set is PhyGround's JSON, a few levels "
            "deep: fix it, or check that this is the right file.",
            problem.line,
        ) from None
    entries, where, bare = _entries(data, fail)
    out: list[dict] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries):
        at = where.format(index)
        id_key, case_id = _entry_id(entry, at, bare, fail)
        if case_id in first_index:
            raise fail(
                f"{at} repeats the id {case_id!r} of {where.format(first_index[case_id])}; "
                "ids must be unique. Remove or rename one of them."
            )
        first_index[case_id] = index
        out.append(_read_entry(entry, id_key, case_id, f"{at} ({case_id!r})", fail))
    return out


def _entries(data: Any, fail: _Fail) -> tuple[list[Any], str, bool]:
    """The entries, how a message names one (``prompts[3]``), and whether the list is bare."""
    if isinstance(data, dict):
        if "prompts" not in data:
            keys = ", ".join(map(repr, list(data)[:8])) or "none"
            raise fail(f"the prompt set has no 'prompts' key (its keys: {keys}). {_FORMAT}")
        entries = data["prompts"]
        if not isinstance(entries, list):
            raise fail(f"'prompts' is a {_json_type(entries)}, not a list of entries. {_FORMAT}")
        return entries, "prompts[{}]", False
    if isinstance(data, list):
        return data, "entry [{}]", True
    raise fail(f"the prompt set is a {_json_type(data)}. {_FORMAT}")


def _entry_id(entry: Any, at: str, bare: bool, fail: _Fail) -> tuple[str, str]:
    """Which field holds the entry's id (``id_stem``, else ``video``), and the id."""
    if not isinstance(entry, dict):
        raise fail(f"{at} is a {_json_type(entry)}, not an object. {_FORMAT}")
    if bare and "id_stem" not in entry:
        raise fail(
            f"{at} has no 'id_stem'; every entry of a bare-list prompt set names "
            f"its video's id stem in 'id_stem'. {_FORMAT}"
        )
    id_key = "id_stem" if "id_stem" in entry else "video"
    if id_key not in entry:
        raise fail(f"{at} has no 'video' (the id stem that names its video file). {_FORMAT}")
    case_id = entry[id_key]
    if not is_case_id(case_id):
        raise fail(
            f"{at} has {id_key} {case_id!r}; an id is made of letters, digits, '_', '.' and "
            "'-'. Fix that entry."
        )
    return id_key, case_id


def _read_entry(
    entry: dict[str, Any], id_key: str, case_id: str, at: str, fail: _Fail
) -> dict[str, Any]:
    prompt = entry.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise fail(f"{at} has no 'prompt' text. {_FORMAT}")
    laws = _entry_laws(entry.get("physical_laws"), at, fail)
    source = {k: v for k, v in entry.items() if k not in (id_key, "prompt", "physical_laws")}
    return {"id": case_id, "prompt": prompt, "laws": laws, "source": source}


def _entry_laws(raw_laws: Any, at: str, fail: _Fail) -> list[str]:
    if not isinstance(raw_laws, list) or not all(isinstance(x, str) for x in raw_laws):
        shown = "no 'physical_laws'" if raw_laws is None else f"physical_laws {raw_laws!r}"
        raise fail(f"{at} has {shown}; it must be a list of law names. {_FORMAT}")
    laws: list[str] = []
    for law in raw_laws:
        if law in GENERAL_METRICS:
            raise fail(
                f"{at} lists the general metric {law!r} in physical_laws; "
                "physical_laws holds only physical laws. Remove it from that entry."
            )
        try:
            check_law(law)
        except InputError as exc:
            raise fail(f"{at}: {exc}") from None
        if law not in laws:
            laws.append(law)
    return laws


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
