"""One case of a suite, read and resolved against what the suite file sets for every case."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_phyjudge._files import resolve_path
from pytest_phyjudge.suites.fields import AXIS_GATE_KEYS, GATE_KEYS, Reader
from pytest_phyjudge.suites.marks import read_marks
from pytest_phyjudge.suites.model import Case, Gates, PipelineSpec
from pytest_phyjudge.suites.pipeline import (
    PipelineFields,
    merge_pipeline,
    read_image,
    read_pipeline,
)
from pytest_phyjudge.suites.settings import FileSettings
from pytest_phyjudge.suites.yaml_lines import Node

CASE_KEYS = (
    "id",
    "prompt",
    "laws",
    "metrics",
    "min_score",
    "video",
    "generator",
    "pipeline",
    "image",
    "criteria",
    "seed",
    "params",
    "marks",
    "source",
    *GATE_KEYS,
)

#: Case fields that depend on no other field, with how each is read.
_PLAIN_FIELDS: dict[str, Callable[[Reader, Node], Any]] = {
    "laws": Reader.laws,
    "metrics": Reader.metrics,
    "generator": Reader.generator,
    "samples": Reader.samples,
    "seed": Reader.seed,
    "params": Reader.params,
    "marks": read_marks,
    "source": Reader.source,
    "pipeline": lambda reader, node: read_pipeline(reader, node, reader.path.parent),
}


@dataclass(frozen=True)
class _Scoring:
    """What a case scores against: thresholds, gates and criteria."""

    min_scores: dict[str, int]
    gates: dict[str, Gates]
    criteria: dict[str, str]


@dataclass(frozen=True)
class _Sources:
    """Where a case's clips come from."""

    video: Path | None
    sample_videos: tuple[Path, ...]
    generator: str | None
    pipeline: PipelineSpec | None = None
    image: Path | None = None


def read_case(
    reader: Reader, node: Node, settings: FileSettings, seen: dict[str, str]
) -> Case | None:
    """The case written at ``node``, or None when it has problems (all recorded on
    ``reader``). ``seen`` maps each id read so far to where it was defined."""
    before = len(reader.errors)
    fields = reader.attempt(reader.mapping, node, "this case")
    # An unknown key is most likely a misspelt known one: reading on would only add noise.
    if fields is None or not reader.check_keys(node, CASE_KEYS, "a case"):
        return None
    cid = _case_id(reader, node, fields, seen)
    if cid is None:
        return None
    values, failed = _plain_fields(reader, node, fields, cid)
    laws = values.get("laws", settings.laws)
    metrics = values.get("metrics", settings.metrics)
    samples = values.get("samples", settings.samples)
    scoring = sources = None
    if not failed & {"laws", "metrics"}:
        scoring = _scoring(reader, node, cid, laws, metrics, settings)
    if not failed & {"samples", "generator", "pipeline"}:
        sources = reader.attempt(
            _sources,
            reader,
            node,
            cid,
            samples,
            (values.get("generator"), values.get("pipeline")),
            settings,
        )
    if len(reader.errors) > before or scoring is None or sources is None:
        return None
    return Case(
        id=cid,
        prompt=values["prompt"],
        laws=laws,
        metrics=metrics,
        min_scores=scoring.min_scores,
        video=sources.video,
        marks=values.get("marks", ()),
        criteria=scoring.criteria,
        line=node.line,
        generator=sources.generator,
        seed=values.get("seed", settings.seed),
        params={**settings.params, **values.get("params", {})},
        source=values.get("source", {}),
        samples=samples,
        sample_videos=sources.sample_videos if samples > 1 else (),
        gates=scoring.gates,
        pipeline=sources.pipeline,
        image=sources.image,
    )


def _case_id(
    reader: Reader, node: Node, fields: dict[Any, Node], seen: dict[str, str]
) -> str | None:
    """The case's id; a repeated id is recorded but still returned, so the rest is checked."""
    if "id" not in fields:
        reader.record(
            "this case has no `id`; give it a unique id made of letters, digits, '_', '.' and '-'.",
            node.line,
        )
        return None
    cid = reader.attempt(reader.case_id, fields["id"])
    if cid is None:
        return None
    if cid in seen:
        reader.record(
            f"duplicate case id {cid!r}: it is also defined at {seen[cid]}. Give every case "
            "its own id.",
            node.line,
        )
    else:
        seen[cid] = f"line {node.line}"
    return cid


def _plain_fields(
    reader: Reader, node: Node, fields: dict[Any, Node], cid: str
) -> tuple[dict[str, Any], set[str]]:
    """The fields that depend on no other, read; and the names of those that failed."""
    values: dict[str, Any] = {}
    failed: set[str] = set()
    if "prompt" not in fields:
        reader.record(
            f"case {cid!r} has no `prompt`; add the text prompt the video was made from.",
            node.line,
        )
    for key, read in _PLAIN_FIELDS.items():
        if key in fields:
            value = reader.attempt(read, reader, fields[key])
            if value is None:
                failed.add(key)
            else:
                values[key] = value
    if "prompt" in fields:
        prompt = reader.attempt(reader.text, fields["prompt"], f"the prompt of case {cid!r}")
        if prompt is not None:
            values["prompt"] = prompt.strip()
    return values, failed


def _scoring(
    reader: Reader,
    node: Node,
    cid: str,
    laws: tuple[str, ...],
    metrics: tuple[str, ...],
    settings: FileSettings,
) -> _Scoring | None:
    """Thresholds, gates and criteria for the axes the case scores; None after problems."""
    fields: dict[Any, Node] = node.value
    axes = metrics + laws
    if not axes:
        reader.record(
            f"case {cid!r} scores nothing: it has no laws and no metrics. Add `laws:` (e.g. "
            "[gravity]) or `metrics:` (e.g. [SA]).",
            node.line,
        )
        return None
    before = len(reader.errors)
    case_min = None
    if "min_score" in fields:
        case_min = reader.attempt(reader.min_score, fields["min_score"], axes, cid)
    case_gates: dict[str, float | dict[str, float]] = {}
    for key in AXIS_GATE_KEYS:
        if key in fields:
            gate = reader.attempt(reader.gate, key, fields[key], axes, cid)
            if gate is not None:
                case_gates[key] = gate
    criteria: dict[str, str] | None = {}
    if "criteria" in fields:
        criteria = reader.attempt(reader.criteria, fields["criteria"], laws, cid)
    if len(reader.errors) > before or criteria is None:
        return None
    gates = settings.resolve_gates(axes, case_gates)
    reader.attempt(check_confidence_gates, reader, cid, gates, node.line)
    if len(reader.errors) > before:
        return None
    return _Scoring(settings.thresholds(axes, case_min), gates, criteria)


def _sources(
    reader: Reader,
    node: Node,
    cid: str,
    samples: int,
    own: tuple[str | None, PipelineFields | None],
    settings: FileSettings,
) -> _Sources:
    """The case's own video, else its own generator or pipeline, else the suite's template,
    else the suite's generator or pipeline: the most specific source wins."""
    fields: dict[Any, Node] = node.value
    generator, pipeline_fields = own
    if generator is not None and pipeline_fields is not None:
        raise reader.fail(
            f"case {cid!r} sets both `generator:` and `pipeline:`; its clips come from one of "
            "them. Keep one.",
            node.key_lines["pipeline"],
        )
    samples_line = node.key_lines.get("samples", node.line)
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
            resolve_path(settings.base / Path(rel.replace("{sample}", str(i))).expanduser())
            for i in range(samples)
        )
        video = sample_videos[0]
    elif generator is None and pipeline_fields is None:
        sample_videos = template_samples(reader, settings, cid, samples, samples_line)
        video = sample_videos[0] if sample_videos else None
    pipeline = None
    if (
        video is None
        and generator is None
        and (pipeline_fields is not None or (not settings.generator and settings.pipeline))
    ):
        pipeline = merge_pipeline(reader, settings.pipeline, pipeline_fields, node.line)
    elif pipeline_fields is None:
        generator = generator or settings.generator
    if video is None and generator is None and pipeline is None:
        raise reader.fail(
            f"case {cid!r} has no video source: give it `video: path/to/clip.mp4`, or add a "
            "`videos:` template such as videos/{id}.mp4 (or a `generator:` or a `pipeline:`) "
            "to the suite.",
            node.line,
        )
    image = None
    if "image" in fields:
        if pipeline is None:
            raise reader.fail(
                f"case {cid!r} has an `image:`, which is the first frame for an "
                "image-to-video `pipeline:`, but its clips do not come from a pipeline. "
                "Remove `image:`, or give the case (or the suite) a `pipeline:`.",
                node.key_lines["image"],
            )
        image = read_image(reader, fields["image"], settings.base, cid)
    return _Sources(video, sample_videos, generator, pipeline, image)


def template_samples(
    reader: Reader, settings: FileSettings, case_id: str, samples: int, line: int
) -> tuple[Path, ...]:
    """Each sample's video from the suite's ``videos:`` template (none without one)."""
    template = settings.template
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
    return tuple(settings.template_video(case_id, i) for i in range(samples))  # type: ignore[misc]


def check_confidence_gates(reader: Reader, cid: str, gates: dict[str, Gates], line: int) -> None:
    """A confidence says how sure a gate must be, so it needs a gate on the same axis."""
    for axis, gate in gates.items():
        if gate.confidence is not None and not gate.gated:
            raise reader.fail(
                f"case {cid!r} sets confidence for {axis!r} but no pass_rate or min_mean for "
                "it; confidence says how sure a pass_rate or min_mean gate must be. Add one "
                "of them (e.g. pass_rate: 0.75), or remove confidence.",
                line,
            )


def prompt_set_cases(
    reader: Reader,
    entries: list[dict],
    settings: FileSettings,
    line: int,
    seen: dict[str, str],
    label: str,
) -> list[Case]:
    """A case per prompt-set entry, written at ``line`` (the ``prompts:`` key). Raises at the
    first problem: every entry takes the same settings, so it would repeat for each."""
    cases: list[Case] = []
    pipeline = None
    if settings.template is None and settings.generator is None and settings.pipeline is not None:
        pipeline = merge_pipeline(reader, settings.pipeline, None, line)
    for entry in entries:
        cid = entry["id"]
        seen[cid] = label
        laws = tuple(entry["laws"])
        metrics = settings.metrics
        sample_videos = template_samples(reader, settings, cid, settings.samples, line)
        gates = settings.resolve_gates(metrics + laws, {})
        check_confidence_gates(reader, cid, gates, line)
        cases.append(
            Case(
                id=cid,
                prompt=entry["prompt"],
                laws=laws,
                metrics=metrics,
                min_scores=settings.thresholds(metrics + laws, None),
                video=sample_videos[0] if sample_videos else None,
                marks=(),
                criteria={},
                line=line,
                generator=settings.generator,
                pipeline=pipeline,
                seed=settings.seed,
                params=dict(settings.params),
                source=entry["source"],
                samples=settings.samples,
                sample_videos=sample_videos if settings.samples > 1 else (),
                gates=gates,
            )
        )
    return cases
