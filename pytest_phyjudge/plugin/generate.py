"""The video generator under test: make a case's clip once, keep it in the pytest cache.

A clip is keyed by sha256 of (generator, prompt, seed, params), so changing any of them
makes a new clip and an unchanged case reuses its clip until ``--phyjudge-regenerate``.
A generator that fails fails that case's items only, with the generator's own error.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import pytest

from pytest_phyjudge._exceptions import PhyJudgeError, VideoError, describe_error
from pytest_phyjudge._files import LOOP, not_a_file
from pytest_phyjudge.engine.video import check_video_file
from pytest_phyjudge.judges.factory import import_object, user_frames
from pytest_phyjudge.suites import Case

CLIPS_DIR = "phyjudge-clips"


def clip_key(case: Case) -> str:
    """sha256 of what determines a generated clip: generator, prompt, seed and params."""
    text = json.dumps(
        {
            "generator": case.generator,
            "prompt": case.prompt,
            "seed": case.seed,
            "params": dict(case.params),
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def clips_dir(config: pytest.Config) -> Path:
    """``.pytest_cache/d/phyjudge-clips``; a temporary folder (with a warning) without one."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        try:
            return Path(cache.mkdir(CLIPS_DIR))
        except OSError as exc:
            warnings.warn(
                f"pytest-phyjudge: cannot use the pytest cache for generated clips ({exc}); "
                "clips go to a temporary folder and are made again next run.",
                pytest.PytestWarning,
                stacklevel=2,
            )
    folder = Path(tempfile.gettempdir()) / f"pytest-phyjudge-clips-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def call_generator(case: Case, out_path: Path) -> Path | None:
    """The default ``pytest_phyjudge_generate``: import the case's ``generator`` and call it
    as ``function(prompt, seed=..., out_path=..., **params)``."""
    if case.generator is None:
        return None
    function = import_object(case.generator, "generator")
    result = function(case.prompt, seed=case.seed, out_path=out_path, **dict(case.params))
    return Path(result) if isinstance(result, (str, os.PathLike)) else out_path


def case_video(config: pytest.Config, case: Case, *, regenerate: bool = False) -> Path:
    """The video to judge for ``case``: its file, or its generated clip (made if needed).
    Raises VideoError when there is no usable video."""
    if case.video is not None:
        if not_a_file(case.video) == LOOP:
            raise VideoError(
                f"The video of case {case.id!r} is {LOOP}: {case.video}. Point the link (or "
                "the case's `video:`, or the suite's `videos:` template) at a real clip. The "
                "other cases still run.",
                path=case.video,
            )
        if not os.path.exists(case.video):  # False, not OSError, for a name too long
            raise VideoError(
                f"The video of case {case.id!r} does not exist: {case.video}. Put the clip "
                "there, or fix the path (the case's `video:`, or the suite's `videos:` "
                "template, relative to the suite file). The other cases still run.",
                path=case.video,
            )
        return check_video_file(case.video)
    folder = clips_dir(config)
    target = folder / f"{case.id}-{clip_key(case)[:16]}.mp4"
    if not regenerate and target.is_file() and target.stat().st_size > 0:
        return target
    partial = folder / f".{target.stem}.{os.getpid()}.partial.mp4"
    partial.unlink(missing_ok=True)
    name = case.generator or "pytest_phyjudge_generate"
    try:
        written = config.hook.pytest_phyjudge_generate(case=case, out_path=partial)
    except PhyJudgeError as exc:
        raise VideoError(f"Case {case.id!r}: {exc}") from exc
    except Exception as exc:
        frames = user_frames(exc)
        raise VideoError(
            f"The generator {name!r} failed for case {case.id!r}: {describe_error(exc)}"
            + (f"\n{frames}\n" if frames else ". ")
            + "Fix the generator, or give the case a `video:`; the other cases still run."
        ) from exc
    if written is None:
        raise VideoError(
            f"No generator made a video for case {case.id!r}: no pytest_phyjudge_generate hook "
            "handled it. Give the case a `generator:` or a `video:`."
        )
    written = Path(written)
    if not written.is_file() or written.stat().st_size == 0:
        where = "the out_path it was given" if written == partial else str(written)
        partial.unlink(missing_ok=True)
        raise VideoError(
            f"The generator {name!r} returned for case {case.id!r} but wrote no video "
            f"(nothing, or an empty file, at {where}). It must write the clip to out_path, "
            "or return the path of the file it wrote.",
            path=written,
        )
    if written == partial:
        os.replace(partial, target)
    else:
        shutil.copyfile(written, partial)
        os.replace(partial, target)
    return target
