"""YAML suite files read into a validated Suite, every problem reported at its line.

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

A clip can also come from the video generator under test: ``generator: NAME`` (for the
suite, or one case) names a generator registered in trusted configuration (the ini file, a
conftest.py, an installed package; see ``suites.generators``), never an import path.

This is pure data: it imports neither pytest nor the judge, and nothing by name. Every
problem found is a :class:`SuiteError` that names the file and the line of the offending
node and says how to fix it; the independent problems of one file come in one SuiteError
that lists each. Video files are not opened here; a missing video fails that case's items at
run time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge._files import not_a_file, resolve_path
from pytest_phyjudge.engine.axes import is_score
from pytest_phyjudge.suites.cases import prompt_set_cases, read_case
from pytest_phyjudge.suites.fields import (
    AXIS_GATE_KEYS,
    GATE_KEYS,
    THRESHOLD_RULE,
    Reader,
)
from pytest_phyjudge.suites.model import Case, Suite
from pytest_phyjudge.suites.pipeline import merge_pipeline, read_pipeline
from pytest_phyjudge.suites.prompts import load_prompt_set
from pytest_phyjudge.suites.settings import FileSettings
from pytest_phyjudge.suites.yaml_lines import Node, parse_yaml

_TOP_KEYS = ("suite", "defaults", "videos", "generator", "pipeline", "prompts", "cases")
_DEFAULT_KEYS = ("min_score", "metrics", "laws", "seed", "params", *GATE_KEYS)


def load_suite(
    path: str | Path, *, default_min_score: int = 3, generators: Collection[str] | None = None
) -> Suite:
    """Read and validate a YAML suite file.

    Thresholds resolve per axis: the case's ``{axis: n}``, else the case's ``n``, else the
    defaults' ``{axis: n}``, else the defaults' ``n``, else ``default_min_score``.
    ``generators``: the registered generator names (the plugin passes them); a
    ``generator:`` naming another is an error at its line. With None only the form of each
    name is checked. Nothing is imported either way.
    """
    _check_default_min_score(default_min_score)
    path = Path(path).absolute()
    reader = Reader(path, generators)
    root = parse_yaml(path)
    if root is None:
        raise reader.fail(
            "the suite file is empty; a suite is a mapping with a `cases:` list (or a "
            "`prompts:` prompt set).",
            None,
        )
    reader.mapping(root, "the top level of the suite")
    settings = _file_settings(reader, root, default_min_score)
    # The cases are read against these settings: with any of them wrong, the cases' own
    # problems could be mere echoes of it.
    reader.raise_errors()
    seen: dict[str, str] = {}  # id -> where it was first defined, for duplicate messages
    cases = _prompt_set_cases(reader, root, settings, seen) + _listed_cases(
        reader, root, settings, seen
    )
    reader.raise_errors()
    if not cases:
        where = next((key for key in ("cases", "prompts") if key in root.value), None)
        raise reader.fail(
            "the suite has empty cases: it defines no case. Add at least one entry under "
            "`cases:` (with `id:` and `prompt:`), or a `prompts:` prompt set that has entries.",
            root.key_lines[where] if where else root.line,
        )
    pipeline = None
    if settings.pipeline is not None and "id" in settings.pipeline.values:
        pipeline = merge_pipeline(reader, settings.pipeline, None, settings.pipeline.line)
    return Suite(
        name=settings.name,
        path=path,
        cases=tuple(cases),
        generator=settings.generator,
        pipeline=pipeline,
    )


def _check_default_min_score(value: int) -> None:
    if not is_score(value):
        raise InputError(f"default_min_score is {value!r}; {THRESHOLD_RULE} Pass one of 1-5.")


def _suite_name_from(path: Path) -> str:
    name = path.name
    for suffix in (".yaml", ".yml"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.removesuffix(".phyjudge") or path.stem


def _file_settings(reader: Reader, root: Node, fallback_min_score: int) -> FileSettings:
    """The file-level keys; each problem is recorded, and its key left at its default."""
    top: dict[Any, Node] = root.value
    reader.check_keys(root, _TOP_KEYS, "the suite")
    name = _suite_name_from(reader.path)
    if "suite" in top:
        given = reader.attempt(reader.text, top["suite"], "suite (the suite's name)")
        name = name if given is None else given.strip()
    defaults = _defaults(reader, top.get("defaults"))
    template = reader.attempt(reader.template, top["videos"]) if "videos" in top else None
    generator = reader.attempt(reader.generator, top["generator"]) if "generator" in top else None
    pipeline = None
    if "pipeline" in top:
        pipeline = reader.attempt(read_pipeline, reader, top["pipeline"], reader.path.parent)
        if "generator" in top:
            reader.record(
                "the suite sets both `generator:` and `pipeline:`; its clips come from one of "
                "them. Keep one (a case may still set the other for itself).",
                root.key_lines["pipeline"],
            )
    return FileSettings(
        name=name,
        base=reader.path.parent,
        fallback_min_score=fallback_min_score,
        template=template,
        generator=generator,
        pipeline=pipeline,
        **defaults,
    )


def _defaults(reader: Reader, node: Node | None) -> dict[str, Any]:
    """The ``defaults:`` block as FileSettings fields; a key with a problem is left out."""
    if node is None or node.data is None:
        return {}
    if reader.attempt(reader.mapping, node, "defaults") is None:
        return {}
    reader.check_keys(node, _DEFAULT_KEYS, "defaults")
    readers: dict[str, Callable[[Node], Any]] = {
        "min_score": lambda child: reader.min_score(child, None, None),
        "metrics": reader.metrics,
        "laws": reader.laws,
        "seed": reader.seed,
        "params": reader.params,
        "samples": reader.samples,
    }
    out: dict[str, Any] = {}
    gates: dict[str, Any] = {}
    for key, child in node.value.items():
        if key in readers:
            value = reader.attempt(readers[key], child)
            if value is not None:
                out[key] = value
        elif key in AXIS_GATE_KEYS:
            gate = reader.attempt(reader.gate, key, child, None, None)
            if gate is not None:
                gates[key] = gate
    return {**out, "gates": gates}


def _prompt_set_cases(
    reader: Reader, root: Node, settings: FileSettings, seen: dict[str, str]
) -> list[Case]:
    """The cases of the ``prompts:`` prompt set (they come first); none after a problem."""
    if "prompts" not in root.value:
        return []
    line = root.key_lines["prompts"]
    path = reader.attempt(_prompt_set_path, reader, root.value["prompts"], settings, line)
    if path is None:
        return []
    entries = reader.attempt(load_prompt_set, path)
    if entries is None:
        return []
    label = f"prompt set {path.name} (line {line})"
    cases = reader.attempt(prompt_set_cases, reader, entries, settings, line, seen, label)
    return cases or []


def _prompt_set_path(reader: Reader, node: Node, settings: FileSettings, line: int) -> Path:
    rel = reader.text(node, "prompts (the path of a PhyGround prompt set)").strip()
    path = resolve_path(settings.base / Path(rel).expanduser())
    kind = not_a_file(path)
    if kind is not None:
        raise reader.fail(
            f"the prompt set {rel!r} ({path}) is {kind}; `prompts:` names a PhyGround prompt "
            "set, a JSON file, by a path relative to this suite file.",
            node.line,
        )
    if not path.is_file():
        raise reader.fail(
            f"the prompt set {rel!r} does not exist (looked for {path}); the path is "
            "relative to this suite file.",
            node.line,
        )
    if settings.template is None and settings.generator is None and settings.pipeline is None:
        raise reader.fail(
            "the prompt set's cases have no video source; add a `videos:` template such as "
            "videos/{id}.mp4, a `generator:` or a `pipeline:`.",
            line,
        )
    return path


def _listed_cases(
    reader: Reader, root: Node, settings: FileSettings, seen: dict[str, str]
) -> list[Case]:
    """The cases under ``cases:``; each one's problems are recorded and it is left out."""
    node = root.value.get("cases")
    if node is None or node.data is None:
        return []
    if node.kind != "seq":
        reader.record(
            f"cases is {node.describe()}; write it as a list, each entry starting with `- id:`.",
            node.line,
        )
        return []
    cases = [read_case(reader, child, settings, seen) for child in node.value]
    return [case for case in cases if case is not None]
