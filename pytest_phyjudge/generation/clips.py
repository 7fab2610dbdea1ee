"""Clips made by diffusers pipelines: keyed by everything that makes them, made in batches by
one load of each pipeline, reused while their key stands.

A clip's key is the sha256 of the model's identity (a hub commit, or the digest of a
folder's weights and configs; never a path, so a clips folder restored on another machine is
found), the dtype and device type it ran in, the call's params, the prompt, the image's
bytes, the seed and the frame rate. Changing any of them makes a new clip; an unchanged case
reuses its file. On one machine the same key makes the same bytes (same weights, seed and
batch; the encoder runs single-threaded).

Threat model for the clips folder (the pytest cache, restored from CI caches and artifacts):
a file there may have been changed, or put there under a clip's name, and a name there may
be a link, a pipe or a folder. A clip's file name ends in the sha256 of its own bytes
(``{case}-{key}-{content}.mp4``, see :func:`find_clip`), so a clip is reused only when its
bytes are the ones it was written with, and a new clip never takes the name of a file that
holds other bytes: nothing there is overwritten, and copying the ``*.mp4`` files is all a
clips folder needs. (Whoever can write the folder can still forge a clip with a matching
name; the judgment cache's replay, keyed by each clip's bytes, is the check that travels.)
A case's first frame (``image:``) is decoded with Pillow within limits and encoded again;
the key holds the sha256 of what the pipeline is given.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pytest_phyjudge._escape import terminal_text
from pytest_phyjudge._exceptions import InputError, PhyJudgeError, VideoError, describe_error
from pytest_phyjudge.engine.extras import require_generate
from pytest_phyjudge.engine.mp4 import write_mp4
from pytest_phyjudge.generation.pipeline import (
    LoadedPipeline,
    LoadKey,
    family_fps,
    load_key,
    load_pipeline,
)
from pytest_phyjudge.generation.snapshot import dump, identify
from pytest_phyjudge.reporting.html.media import MediaRefused, reencode_image
from pytest_phyjudge.suites.model import PipelineSpec

#: What loads a pipeline (``load_pipeline``; a test may wrap it to watch what it loads).
Loader = Callable[[LoadKey], LoadedPipeline]


@dataclass(frozen=True)
class ClipJob:
    """One clip to make: ``name`` (the case id) starts its file name and its messages."""

    name: str
    spec: PipelineSpec
    prompt: str
    seed: int
    image: Path | None = None


@dataclass
class GenerationStats:
    """What this run's generation came to, for the terminal summary."""

    made: int = 0
    reused: int = 0
    failed: int = 0
    loads: int = 0
    #: Seconds spent loading pipelines, generating and writing clips.
    seconds: float = 0.0
    pipelines: list[str] = field(default_factory=list)


#: Hex digits of a clip's own sha256 in its file name (64 bits: no accidental match).
CONTENT_DIGITS = 16
_CONTENT_RE = re.compile(rf"[0-9a-f]{{{CONTENT_DIGITS}}}")


def _sha256_file(path: Path) -> str | None:
    """sha256 of the regular file at ``path`` (a link is not followed, a pipe never blocks);
    None when it is anything else or cannot be read."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_clip(folder: Path, stem: str) -> Path | None:
    """The clip ``{stem}-{content}.mp4`` in ``folder`` whose bytes hash to the ``content``
    its name ends in; None when there is none (a file changed since it was written, a link,
    a pipe or a folder under such a name is passed over, never read past its first check)."""
    prefix = f"{stem}-"
    try:
        names = sorted(n for n in os.listdir(folder) if n.startswith(prefix))
    except OSError:
        return None
    for name in names:
        content = name[len(prefix) :].removesuffix(".mp4")
        if name.endswith(".mp4") and _CONTENT_RE.fullmatch(content):
            path = folder / name
            digest = _sha256_file(path)
            if digest is not None and digest.startswith(content):
                return path
    return None


def partial_path(folder: Path, stem: str) -> Path:
    """A new name in ``folder`` for a clip being written by this process (nothing is there)."""
    return folder / f".{stem}.{os.getpid()}.{secrets.token_hex(4)}.partial.mp4"


def store_clip(partial: Path, folder: Path, stem: str, *, replace: bool = False) -> Path:
    """Rename the finished clip ``partial`` to its name ``{stem}-{content}.mp4``; with
    ``replace`` (``--phyjudge-regenerate``) the older clips of ``stem`` go (only files whose
    bytes match their names: ours). OSError when the folder cannot take it; InputError when
    that name holds other bytes (a clip changed since it was made, a link, a pipe), which
    are neither used nor overwritten."""
    digest = _sha256_file(partial)
    if digest is None:
        raise OSError(f"the clip written at {partial} is not a regular file")
    target = folder / f"{stem}-{digest[:CONTENT_DIGITS]}.mp4"
    if os.path.lexists(target):
        if _sha256_file(target) == digest:
            return target  # this very clip, made before
        raise InputError(
            f"The clips folder {terminal_text(str(folder))} holds {target.name}, the name of "
            "this clip, but not its bytes (a clip changed since it was made, or a link, a "
            "pipe or a folder put there). It is neither used nor overwritten: delete it, "
            "and the clip is made again."
        )
    while replace and (old := find_clip(folder, stem)) is not None:
        old.unlink()
    os.replace(partial, target)
    return target


def clip_not_written(name: str, folder: Path, exc: OSError) -> VideoError:
    """The error of a clip that was made but could not be written into ``folder``."""
    return VideoError(
        f"The clip of case {name!r} was made but could not be written into the clips folder "
        f"{terminal_text(str(folder))}: {terminal_text(exc.strerror or str(exc))}. Make the "
        "folder writable (it is the pytest cache's phyjudge-clips), or give the case a "
        "`video:`; the other cases still run."
    )


class ClipMaker:
    """Makes pipeline clips into ``folder``: each pipeline loaded once (and kept until
    :meth:`release`), ``batch`` prompts per call; a failure fails the clips it concerns."""

    def __init__(
        self,
        folder: Path,
        *,
        batch: int = 1,
        regenerate: bool = False,
        loader: Loader | None = None,
    ) -> None:
        self.folder = folder
        self.batch = max(1, batch)
        self.regenerate = regenerate
        self.stats = GenerationStats()
        self._loader = loader or load_pipeline
        self._identities: dict[tuple[str, str | None], str | PhyJudgeError] = {}
        self._loaded: dict[LoadKey, LoadedPipeline] = {}
        self._load_errors: dict[LoadKey, PhyJudgeError] = {}
        self._keys: dict[ClipJob, str] = {}
        self._done: dict[str, Path | PhyJudgeError] = {}
        self._frames: dict[Path, bytes] = {}
        # Making clips in the background (:meth:`start`) while the caller waits for each.
        self._changed = threading.Condition()
        self._background: threading.Thread | None = None
        self._stop = threading.Event()

    # -- keys

    def _identity(self, spec: PipelineSpec) -> str:
        memo = (spec.id, spec.revision)
        if memo not in self._identities:
            try:
                self._identities[memo] = identify(spec.id, spec.folder, spec.revision, self.folder)
            except PhyJudgeError as exc:
                self._identities[memo] = exc
        found = self._identities[memo]
        if isinstance(found, PhyJudgeError):
            raise found
        return found

    def key(self, job: ClipJob) -> str:
        """The clip's key (sha256 hex); raises InputError when the model cannot be identified."""
        if job not in self._keys:
            spec = job.spec
            lk = load_key(spec, self._identity(spec))
            self._keys[job] = hashlib.sha256(
                dump(
                    {
                        "model": lk.identity if spec.folder else [spec.id, lk.identity],
                        "dtype": lk.dtype,
                        "device": lk.device.partition(":")[0],
                        "params": dict(spec.params),
                        "prompt": job.prompt,
                        "image": None
                        if job.image is None
                        else hashlib.sha256(self.first_frame(job)).hexdigest(),
                        "seed": job.seed,
                        "fps": spec.fps,
                    }
                ).encode("utf-8")
            ).hexdigest()
        return self._keys[job]

    def first_frame(self, job: ClipJob) -> bytes:
        """The PNG the pipeline is given as the first frame of ``job``: its ``image:``
        decoded (PNG or JPEG, at most 32 MiB and 40 megapixels) and encoded again."""
        assert job.image is not None
        if job.image not in self._frames:
            try:
                self._frames[job.image] = reencode_image(job.image, job.image.parent)
            except MediaRefused as exc:
                raise InputError(
                    f"The image of case {job.name!r} ({terminal_text(str(job.image))}) {exc}; "
                    "give the case's `image:` a PNG or JPEG file."
                ) from None
        return self._frames[job.image]

    def stem(self, job: ClipJob) -> str:
        """The start of the clip's file name: ``{case}-{key}`` (its content digest follows)."""
        return f"{job.name}-{self.key(job)[:16]}"

    # -- making

    def result(self, job: ClipJob) -> Path | PhyJudgeError | None:
        """The clip made (or reused) for ``job`` by an earlier :meth:`make`, its error, or
        None when it was not asked for."""
        try:
            return self._done.get(self.key(job))
        except PhyJudgeError as exc:
            return exc

    def _record(self, key: str, outcome: Path | PhyJudgeError) -> None:
        with self._changed:
            self._done[key] = outcome
            self._changed.notify_all()

    def start(self, jobs: Sequence[ClipJob]) -> None:
        """Make ``jobs`` in a background thread, then release the pipelines; :meth:`wait`
        gives each clip as soon as it is made (a served judge judges the first clips while
        the next are generated)."""

        def run() -> None:
            try:
                self.make(jobs)
            finally:
                self.release()
                with self._changed:
                    self._background = None
                    self._changed.notify_all()

        with self._changed:
            self._background = threading.Thread(target=run, name="phyjudge-generate", daemon=True)
            self._background.start()

    def wait(self, job: ClipJob) -> Path | PhyJudgeError | None:
        """:meth:`result`, waiting while a background :meth:`start` may still make it."""
        with self._changed:
            while True:
                found = self.result(job)
                if found is not None or self._background is None:
                    return found
                self._changed.wait(timeout=1.0)

    def stop(self) -> None:
        """Stop a background :meth:`start` after its current batch, and wait for it."""
        self._stop.set()
        thread = self._background
        if thread is not None:
            thread.join()
        self._stop.clear()

    def make(self, jobs: Sequence[ClipJob], progress: IO[str] | None = None) -> None:
        """Make every clip of ``jobs`` not made yet (reusing files whose key stands), with a
        progress bar on ``progress``; :meth:`result` then gives each one's file or error."""
        todo: dict[str, ClipJob] = {}
        for job in jobs:
            try:
                key, stem = self.key(job), self.stem(job)
            except PhyJudgeError:
                self.stats.failed += 1  # result() raises it again for this job
                continue
            if key in self._done or key in todo:
                continue
            found = None if self.regenerate else find_clip(self.folder, stem)
            if found is not None:
                self._record(key, found)
                self.stats.reused += 1
            else:
                todo[key] = job
        if not todo:
            return
        try:
            require_generate("Making the clips of a suite's `pipeline:`")
        except PhyJudgeError as exc:
            for key, job in todo.items():
                self._record(key, VideoError(f"Case {job.name!r}: {exc}"))
            self.stats.failed += len(todo)
            return
        from tqdm.auto import tqdm

        groups = self._groups(todo)
        with tqdm(
            total=len(todo),
            desc="phyjudge: generating clips",
            unit="clip",
            file=progress,
            disable=progress is None,
            dynamic_ncols=True,
        ) as bar:
            for lk, batches in groups.items():
                for batch in batches:
                    if self._stop.is_set():
                        return
                    started = time.perf_counter()
                    self._make_batch(lk, batch)
                    self.stats.seconds += time.perf_counter() - started
                    bar.update(len(batch))

    def _groups(self, todo: dict[str, ClipJob]) -> dict[LoadKey, list[list[tuple[str, ClipJob]]]]:
        """Per pipeline load, the clips in batches: those sharing params and frame rate,
        ``batch`` at a time; an image-to-video clip alone."""
        by_load: dict[LoadKey, dict[str, list[tuple[str, ClipJob]]]] = {}
        for key, job in todo.items():
            lk = load_key(job.spec, self._identity(job.spec))
            share = dump([dict(job.spec.params), job.spec.fps, "t2v" if job.image is None else key])
            by_load.setdefault(lk, {}).setdefault(share, []).append((key, job))
        out: dict[LoadKey, list[list[tuple[str, ClipJob]]]] = {}
        for lk, shares in by_load.items():
            out[lk] = [
                group[start : start + self.batch]
                for group in shares.values()
                for start in range(0, len(group), self.batch)
            ]
        return out

    def _pipeline(self, lk: LoadKey) -> LoadedPipeline:
        """The loaded pipeline of ``lk``, loading it (after releasing any other) once."""
        if lk in self._load_errors:
            raise self._load_errors[lk]
        if lk not in self._loaded:
            self.release()
            try:
                self._loaded[lk] = self._loader(lk)
            except PhyJudgeError as exc:
                self._load_errors[lk] = exc
                raise
            except Exception as exc:
                where = lk.id if lk.folder else f"{lk.id!r} at {lk.identity[:12]}"
                error = InputError(
                    f"The pipeline {where} could not be loaded ({lk.dtype} on {lk.device}): "
                    f"{describe_error(exc)}. Check pipeline.id, revision, dtype and device in "
                    "the suite; the cases of other pipelines still run."
                )
                self._load_errors[lk] = error
                raise error from exc
            self.stats.loads += 1
            self.stats.pipelines.append(self._loaded[lk].where)
        return self._loaded[lk]

    def _make_batch(self, lk: LoadKey, batch: list[tuple[str, ClipJob]]) -> None:
        first = batch[0][1]
        try:
            pipe = self._pipeline(lk)
            clips = pipe.frames(
                [job.prompt for _, job in batch],
                [job.seed for _, job in batch],
                dict(first.spec.params),
                None if first.image is None else self.first_frame(first),
            )
            fps = first.spec.fps or family_fps(pipe.class_name)
            for (key, job), frames in zip(batch, clips, strict=True):
                outcome: Path | PhyJudgeError
                try:
                    outcome = self._write(job, frames, fps)
                except OSError as exc:
                    outcome = clip_not_written(job.name, self.folder, exc)
                except PhyJudgeError as exc:
                    outcome = VideoError(f"Case {job.name!r}: {exc}")
                self._record(key, outcome)
                if isinstance(outcome, Path):
                    self.stats.made += 1
                else:
                    self.stats.failed += 1
        except PhyJudgeError as exc:
            for key, job in batch:
                self._record(key, VideoError(f"Case {job.name!r}: {exc}"))
                self.stats.failed += 1
        except Exception as exc:
            names = ", ".join(repr(job.name) for _, job in batch)
            together = f"; in one call with {names}" if len(batch) > 1 else ""
            for key, job in batch:
                self._record(
                    key,
                    VideoError(
                        f"The pipeline {lk.id} failed making the clip of case {job.name!r} (seed "
                        f"{job.seed}{together}): {describe_error(exc)}. Fix the "
                        "case's pipeline.params (they are passed to the pipeline's call as they "
                        "are)"
                        + (
                            ""
                            if job.image is None
                            else " or its `image:` (a text-to-video pipeline takes no first frame)"
                        )
                        + ", or give the case a `video:`; the other cases still run."
                    ),
                )
                self.stats.failed += 1

    def _write(self, job: ClipJob, frames: Any, fps: float) -> Path:
        stem = self.stem(job)
        partial = partial_path(self.folder, stem)
        height, width = frames.shape[1:3]
        try:
            # H.264 in yuv420p needs even sides: an odd last row or column is dropped.
            write_mp4(partial, frames[:, : height - height % 2, : width - width % 2], fps=fps)
            return store_clip(partial, self.folder, stem, replace=self.regenerate)
        finally:
            partial.unlink(missing_ok=True)

    def release(self) -> None:
        """Drop every loaded pipeline (garbage-collected, the CUDA cache emptied)."""
        loaded, self._loaded = list(self._loaded.values()), {}
        for pipe in loaded:
            pipe.release()
        del loaded
