"""The run's diffusers pipelines: every selected case's clips made first, then the pipelines
released, then the judge loaded.

A case whose suite names a ``pipeline:`` (data: a model, see ``suites.pipeline``) has its
clips made by :class:`~pytest_phyjudge.generation.clips.ClipMaker` into the pytest cache
(``phyjudge-clips``, beside the registered generators' clips). Before the first test runs,
the clips of every selected case (each sample's seed) are made, each pipeline loaded once
and called ``--phyjudge-generate-batch`` prompts at a time under a progress bar; then the
pipelines are dropped (garbage-collected, the CUDA cache emptied), so a judge in this
process never shares the GPU with a generator. With judge servers (``--phyjudge-url``) there
is no judge model in this process, so the two overlap: the clips are made in a background
thread, in the same order, and each case waits only for its own clips. On a pytest-xdist
worker (which knows every item, not which it will run) a clip is made when its case is
judged instead, the pipeline kept for the worker's next case.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import pytest

from pytest_phyjudge._exceptions import PhyJudgeError, VideoError
from pytest_phyjudge._words import counted
from pytest_phyjudge.generation.clips import ClipJob, ClipMaker, GenerationStats
from pytest_phyjudge.plugin.generate import clips_dir
from pytest_phyjudge.plugin.options import Options
from pytest_phyjudge.suites import Case

_MAKER = pytest.StashKey[ClipMaker]()


def clip_job(case: Case) -> ClipJob:
    """The clip of one sample of a pipeline case (``case.sample(i)`` for sample ``i``)."""
    assert case.pipeline is not None
    return ClipJob(case.id, case.pipeline, case.prompt, case.seed, case.image)


def maker_of(config: pytest.Config, options: Options) -> ClipMaker:
    """The run's clip maker, made on first use."""
    maker = config.stash.get(_MAKER, None)
    if maker is None:
        maker = ClipMaker(
            clips_dir(config),
            batch=options.generate_batch,
            regenerate=options.regenerate,
        )
        config.stash[_MAKER] = maker
    return maker


def generation_stats(config: pytest.Config) -> GenerationStats | None:
    maker = config.stash.get(_MAKER, None)
    return None if maker is None else maker.stats


def generate_first(config: pytest.Config, options: Options, clips: Iterable[Case]) -> None:
    """Make the clips of every pipeline case among ``clips`` (one Case per sample), then
    release the pipelines: before any test runs, so before the judge loads. Not on an xdist
    worker, nor when nothing is to be run."""
    if hasattr(config, "workerinput") or config.option.collectonly:
        return
    jobs = [clip_job(case) for case in clips if case.pipeline is not None]
    if not jobs:
        return
    maker = maker_of(config, options)
    if options.judge.url:
        # No model of the judge's in this process: the servers judge each clip as soon as
        # it is made, while the next ones are generated (without a bar: the tests' output
        # runs meanwhile).
        maker.start(jobs)
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    quiet = config.get_verbosity() < 0
    try:
        if capture is not None:
            with capture.global_and_fixture_disabled():
                maker.make(jobs, progress=None if quiet else sys.stderr)
        else:
            maker.make(jobs, progress=None if quiet else sys.stderr)
    finally:
        maker.release()


def pipeline_video(config: pytest.Config, options: Options, case: Case) -> str:
    """The clip of a pipeline case (one sample): made before the run, else made now (an
    xdist worker); raises VideoError when it could not be made."""
    maker = maker_of(config, options)
    job = clip_job(case)
    found = maker.wait(job)
    if found is None:
        maker.make([job])
        found = maker.result(job)
    if isinstance(found, PhyJudgeError):
        if isinstance(found, VideoError):
            raise found
        raise VideoError(f"Case {case.id!r}: {found}") from None
    if found is None:
        raise VideoError(f"Case {case.id!r}: its clip was not made.")
    return str(found)


def release(config: pytest.Config) -> None:
    """At the session's end: stop generating in the background, drop every pipeline."""
    maker = config.stash.get(_MAKER, None)
    if maker is not None:
        maker.stop()
        maker.release()


def summary_line(stats: GenerationStats) -> str:
    """``generated clips: 4 made, 8 reused, 1 failed in 12.3 s (batch 4; 1 pipeline load)``."""
    loads = counted(stats.loads, "pipeline load")
    failed = f", {stats.failed} failed" if stats.failed else ""
    return (
        f"generated clips: {stats.made} made, {stats.reused} reused{failed}, "
        f"{stats.seconds:.1f} s generating ({loads})"
    )
