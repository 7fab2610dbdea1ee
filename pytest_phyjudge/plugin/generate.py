"""The video generator under test: make a case's clip once, keep it in the pytest cache.

A suite names its generator; what a name means comes only from trusted configuration, read
here into :class:`Generators`: a conftest's ``pytest_phyjudge_generators`` hook (nearest the
suite wins), then the ``phyjudge_generators`` ini lines, then the installed packages'
``pytest_phyjudge.generators`` entry points. Threat model: the suite file is untrusted and
gives only a name, checked against these at collection (see ``suites.generators``); the
configuration is the repository owner's, trusted as pytest trusts a conftest.py. An ini or
entry-point target is imported only when a clip of that generator must actually be made (not
at collection, not when its clip is cached, also under ``--phyjudge-cache-mode only``, which
replays judgments but still needs the clips). Clips are written only under the pytest cache
dir (``phyjudge-clips``), each through a partial file of this process.

A clip is keyed by sha256 of (generator, what its name is registered as, prompt, seed,
params), so changing any of them makes a new clip and an unchanged case reuses its clip until
``--phyjudge-regenerate``; like a pipeline's, its file name ends in the sha256 of its bytes, so
a clip changed since it was made is never reused, and no file is overwritten (see
``generation.clips.find_clip``). A generator that fails fails that case's items only, with the
generator's own error.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from pytest_phyjudge._exceptions import InputError, PhyJudgeError, VideoError, describe_error
from pytest_phyjudge._files import LOOP, not_a_file
from pytest_phyjudge.engine.video import check_video_file, similar_video
from pytest_phyjudge.generation.clips import (
    clip_not_written,
    find_clip,
    partial_path,
    store_clip,
)
from pytest_phyjudge.judges.factory import import_object, user_frames
from pytest_phyjudge.suites import Case
from pytest_phyjudge.suites.generators import (
    ENTRY_POINT_GROUP,
    HOOK,
    NAME_RULE,
    GeneratorSpec,
    is_generator_name,
    is_import_target,
)

CLIPS_DIR = "phyjudge-clips"


@dataclass(frozen=True)
class Registered:
    """One registered generator: an import target (ini, entry point), imported on first use,
    or a function a conftest.py returned."""

    name: str
    #: Where it was registered, for messages.
    origin: str
    target: str | None = None
    function: Callable[..., Any] | None = None

    @property
    def identity(self) -> str:
        """What the name stands for, part of the clip key: re-registering a name makes new
        clips."""
        if self.target is not None:
            return self.target
        function = self.function
        module = getattr(function, "__module__", None) or "?"
        return f"{module}:{getattr(function, '__qualname__', type(function).__name__)}"

    def load(self) -> Callable[..., Any]:
        """The generator function; an ini or entry-point target is imported here, and only
        here."""
        function = self.function
        if function is None:
            what = f"generator {self.name!r} ({self.origin}), registered as"
            function = import_object(str(self.target), what)
        if not callable(function):
            raise PhyJudgeError(
                f"The generator {self.name!r} ({self.origin}) is {self.target!r}, which is "
                f"not callable but {type(function).__name__}. Point it at the function that "
                "makes the video."
            )
        return function

    def make(self, case: Case, out_path: Path) -> Path:
        """``function(prompt, seed=..., out_path=..., **params)``; the file it wrote."""
        result = self.load()(case.prompt, seed=case.seed, out_path=out_path, **dict(case.params))
        return Path(result) if isinstance(result, (str, os.PathLike)) else out_path


class Generators:
    """The generators the suites under one folder may name: nothing here imports a module
    until :meth:`Registered.load` is called for a clip that must be made."""

    def __init__(self, entries: Mapping[str, Registered]) -> None:
        self._entries = dict(entries)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._entries)

    def get(self, name: str | None) -> Registered | None:
        return None if name is None else self._entries.get(name)


_INSTALLED = pytest.StashKey[dict[str, Registered]]()


def generators_for(node: pytest.Collector, ini: tuple[GeneratorSpec, ...]) -> Generators:
    """The generators the suite at ``node`` may name: its conftests' hook results (the
    nearest conftest first), over the ini lines ``ini``, over the installed entry points.
    Raises InputError for a hook result that is not ``{name: callable}``."""
    config = node.config
    entries = dict(_installed(config))
    entries.update({spec.name: Registered(spec.name, spec.origin, spec.target) for spec in ini})
    found: dict[str, Registered] = {}
    # pluggy calls the nearest conftest first; its name wins over those further up.
    for result in node.ihook.pytest_phyjudge_generators(config=config):
        for name, function in _hook_result(result).items():
            found.setdefault(name, Registered(name, f"{HOOK} in a conftest.py", None, function))
    entries.update(found)
    return Generators(entries)


def _hook_result(result: object) -> dict[str, Callable[..., Any]]:
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise InputError(
            f"{HOOK} returned {type(result).__name__}; return a dict {{name: function}} "
            "(e.g. {'wan': make_video}), or None."
        )
    out: dict[str, Callable[..., Any]] = {}
    for name, function in result.items():
        if not is_generator_name(name):
            raise InputError(
                f"{HOOK} returned the name {name!r}; {NAME_RULE}, so a suite can write it."
            )
        if not callable(function):
            raise InputError(
                f"{HOOK} returned {type(function).__name__} for {name!r}; give the function "
                "that makes the video, called as function(prompt, seed=..., out_path=..., "
                "**params)."
            )
        out[name] = function
    return out


def _installed(config: pytest.Config) -> dict[str, Registered]:
    """The ``pytest_phyjudge.generators`` entry points, read from package metadata once a
    session (nothing is imported)."""
    found = config.stash.get(_INSTALLED, None)
    if found is not None:
        return found
    found = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        package = point.dist.name if point.dist is not None else "an installed package"
        origin = f"entry point {point.name!r} of {package}"
        if not is_generator_name(point.name) or not is_import_target(point.value):
            warnings.warn(
                f"pytest-phyjudge: ignoring the {origin} ({point.value!r}): {NAME_RULE}, and "
                "its value is package.module:function.",
                pytest.PytestConfigWarning,
                stacklevel=2,
            )
            continue
        found.setdefault(point.name, Registered(point.name, origin, point.value))
    config.stash[_INSTALLED] = found
    return found


def clip_key(case: Case, registered: Registered | None = None) -> str:
    """sha256 of what determines a generated clip: generator (its name and what the name
    is registered as), prompt, seed and params."""
    text = json.dumps(
        {
            "generator": case.generator,
            "registered": None if registered is None else registered.identity,
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
    # A folder of a predictable name in a shared /tmp may be another user's: made by us, else
    # a new one.
    folder = Path(tempfile.gettempdir()) / f"pytest-phyjudge-clips-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(folder)
    except OSError:
        return Path(tempfile.mkdtemp(prefix="pytest-phyjudge-clips-"))
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        return Path(tempfile.mkdtemp(prefix="pytest-phyjudge-clips-"))
    return folder


def case_video(
    config: pytest.Config,
    case: Case,
    *,
    regenerate: bool = False,
    generators: Generators | None = None,
) -> Path:
    """The video to judge for ``case``: its file, or its generated clip (made if needed):
    by a ``pytest_phyjudge_generate`` hook, else by the generator its name is registered as
    in ``generators``. Raises VideoError when there is no usable video."""
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
                f"The video of case {case.id!r} does not exist: {case.video}."
                f"{similar_video(case.video)} Put the clip there, or fix the path (the case's "
                "`video:`, or the suite's `videos:` template, relative to the suite file). The "
                "other cases still run.",
                path=case.video,
            )
        return check_video_file(case.video)
    registered = None if generators is None else generators.get(case.generator)
    folder = clips_dir(config)
    stem = f"{case.id}-{clip_key(case, registered)[:16]}"
    found = None if regenerate else find_clip(folder, stem)
    if found is not None:
        return found
    partial = partial_path(folder, stem)
    try:
        written = _generate(config, case, registered, partial)
        if written != partial:
            shutil.copyfile(written, partial)
        return store_clip(partial, folder, stem, replace=regenerate)
    except OSError as exc:
        raise clip_not_written(case.id, folder, exc) from None
    except VideoError:  # the generator's own, already naming the case
        raise
    except InputError as exc:  # the clip's name is taken by other bytes
        raise VideoError(f"Case {case.id!r}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)  # left by a generator that failed


def _generate(
    config: pytest.Config, case: Case, registered: Registered | None, partial: Path
) -> Path:
    """The file the hook or the registered generator wrote for ``case`` (``partial``, or the
    path it returned); VideoError when it failed or wrote nothing."""
    name = case.generator or "pytest_phyjudge_generate"
    try:
        written = config.hook.pytest_phyjudge_generate(case=case, out_path=partial)
        if written is None and registered is not None:
            written = registered.make(case, partial)
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
            f"No generator made a video for case {case.id!r}: its generator "
            f"{case.generator!r} is not registered and no pytest_phyjudge_generate hook "
            "handled it. Register the generator, or give the case a `video:`."
        )
    written = Path(written)
    if not written.is_file() or written.stat().st_size == 0:
        where = "the out_path it was given" if written == partial else str(written)
        raise VideoError(
            f"The generator {name!r} returned for case {case.id!r} but wrote no video "
            f"(nothing, or an empty file, at {where}). It must write the clip to out_path, "
            "or return the path of the file it wrote.",
            path=written,
        )
    return written
