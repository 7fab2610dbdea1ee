"""The frozen values a suite file is read into, so the plugin never sees raw YAML."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeGuard

# An id becomes part of a pytest node id and of video file names, hence the narrow alphabet.
_CASE_ID_RE = re.compile(r"[A-Za-z0-9_.-]+")


def is_case_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` can name a case: letters, digits, '_', '.' and '-', not only dots."""
    return isinstance(value, str) and bool(_CASE_ID_RE.fullmatch(value)) and set(value) != {"."}


@dataclass(frozen=True)
class MarkSpec:
    """A pytest mark to put on every item of a case: ``pytest.mark.<name>(*args, **kwargs)``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: 1-based line of the mark in the suite file, so warnings about it point there; not part
    #: of the mark's identity.
    line: int | None = field(default=None, compare=False)


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
class PipelineSpec:
    """A diffusers pipeline that makes a case's clips: DATA naming a model (a hub id or a
    folder), never code; the suite's ``pipeline:`` merged with the case's own."""

    #: A hub id (``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``), or the absolute path of a folder.
    id: str
    folder: bool
    #: The hub revision (branch, tag or commit); None for a folder, or the default branch.
    revision: str | None = None
    #: ``float32``, ``float16`` or ``bfloat16``; None: float32 on a CPU, bfloat16 elsewhere.
    dtype: str | None = None
    #: ``auto`` (CUDA when there is one), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    device: str = "auto"
    #: ``enable_model_cpu_offload()``: each component moves to the device only while it runs.
    cpu_offload: bool = False
    #: The frame rate the clip is written at; None: the pipeline family's own.
    fps: float | None = None
    #: Keyword arguments of the pipeline's call (``num_frames``, ``height``, ...).
    params: Mapping[str, Any] = field(default_factory=dict)
    #: 1-based line of the case's ``pipeline:`` (or the suite's), for messages.
    line: int = field(default=0, compare=False)

    def __hash__(self) -> int:  # params is a dict of plain values: hashed as canonical JSON
        params = json.dumps(dict(self.params), sort_keys=True, default=str)
        return hash((self.id, self.folder, self.revision, self.dtype, self.device, params))


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
    #: The registered name of the generator that makes the video (the case's, else the
    #: suite's); a name, never an import path.
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
    #: The diffusers pipeline that makes the clips (instead of a registered generator).
    pipeline: PipelineSpec | None = None
    #: The first frame for an image-to-video pipeline (absolute path), or None.
    image: Path | None = None

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
    """A validated suite file: its name, where it lives, its cases in file order."""

    name: str
    path: Path
    cases: tuple[Case, ...]
    generator: str | None
    pipeline: PipelineSpec | None = None
