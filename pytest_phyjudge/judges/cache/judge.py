"""A judge in front of the judgment cache: hits are read back, misses go to the real judge.

Modes: ``use`` (read, and store what is new), ``refresh`` (judge again and overwrite),
``off`` (no cache at all) and ``only`` (replay: never load a model; a miss is an error that
names the video, axis and key, and the setting that differs where the clip was recorded
under others).

Threat model: a hit is read from a database anyone with the folder may have edited, so it is
believed only as far as it can be checked against the clip in hand: its video hash, axis
and prompt hash must be this clip's, its key must be the one recomputed from them, this
judge's identity and its recorded settings, and its reply must parse to its score. A row
that fails is a miss with a warning naming it; a hit reports this judge's identity (the
one the key was made from), never the judge the row claims. A cache that cannot be opened
or written warns once and the run judges without it; in replay (``only``) it is an error,
as nothing could be replayed.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import CacheError, InputError, PhyJudgeError
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.engine.rubric import Rubric
from pytest_phyjudge.engine.video import sha256_file
from pytest_phyjudge.judges.base import ClipOutcomes, ClipRequest, Judge
from pytest_phyjudge.judges.cache.record import JudgeRecord
from pytest_phyjudge.judges.cache.store import JudgmentCache, Stored
from pytest_phyjudge.judges.cache.trust import CacheWarning, cache_key, keyed, reply_problem
from pytest_phyjudge.judges.settings import CACHE_MODES, PYTEST_SURFACE, CacheMode, Surface

#: What a cache that cannot be written raises: sqlite errors (read-only, locked, broken),
#: the disk (full, gone) and the cache's own errors (a folder that cannot be made).
_WRITE_FAILURES = (sqlite3.Error, OSError, CacheError)


@dataclasses.dataclass
class CacheStats:
    """What the cache did this run (shown in the terminal summary)."""

    hits: int = 0
    misses: int = 0
    stored: int = 0
    seconds_saved: float = 0.0


def _within_wall_time(
    outcomes: dict[str, Judgment | PhyJudgeError], wall: float
) -> dict[str, Judgment | PhyJudgeError]:
    """The outcomes with their judgments' seconds scaled down to add up to no more than
    ``wall``, the time the whole batch took: what a cache hit later saves.

    The remote judge times each axis' request on its own while the requests run at once and
    wait for one another (a server answering one at a time makes the fourth wait for the
    first three), so their seconds add up to several times the real time; stored as they
    are, every later hit would count that inflated sum as "judge-seconds saved"."""
    judged = {axis: o for axis, o in outcomes.items() if isinstance(o, Judgment)}
    total = sum(j.seconds for j in judged.values())
    if total <= wall:
        return outcomes
    factor = wall / total
    scaled = {a: dataclasses.replace(j, seconds=j.seconds * factor) for a, j in judged.items()}
    return {**outcomes, **scaled}


@dataclasses.dataclass(frozen=True)
class _Lookup:
    """A clip as the cache saw it: its keys per axis, the outcomes known so far (hits, and
    replay misses), and the axes the real judge must still judge."""

    clip: ClipRequest
    keys: dict[str, str]
    results: dict[str, Judgment | PhyJudgeError]
    missing: tuple[str, ...]


class CachedJudge(Judge):
    """Answers from ``cache`` where it can, and from ``load()``'s judge (loaded on the first
    miss, never in ``only`` mode) for the rest."""

    def __init__(
        self,
        *,
        identity: JudgeIdentity,
        rubric: Rubric,
        settings: Mapping[str, Any],
        cache: JudgmentCache,
        mode: CacheMode = "use",
        load: Callable[[], Judge] | None = None,
        surface: Surface = PYTEST_SURFACE,
    ) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode must be one of {', '.join(CACHE_MODES)}, not {mode!r}")
        self.identity = identity
        self.rubric = rubric
        self.settings = dict(settings)
        self.cache = cache
        self.mode = mode
        #: Whose flags the messages name (pytest's, or the ``phyjudge`` command's).
        self.surface = surface
        self._load = load
        self._inner: Judge | None = None
        self._recorded = False
        self._unwritable = False
        #: The cache could not be opened or read: the run judges without it (not in ``only``).
        self._unreadable = False
        self.stats = CacheStats()
        # Several threads may judge through one cached judge (score-dir against servers).
        self._lock = threading.Lock()

    @property
    def inner(self) -> Judge:
        """The real judge, loaded on first use."""
        with self._lock:
            if self._inner is None:
                if self._load is None:
                    raise CacheError("This cached judge has no judge to ask on a miss.")
                self._inner = self._load()
            return self._inner

    @property
    def loaded(self) -> Judge | None:
        """The real judge when it has been loaded (never loads it)."""
        return self._inner

    def key_for(self, video_sha256: str, axis: str, caption: str, criteria: str | None) -> str:
        prompt = self.rubric.render(axis, caption, criteria=criteria)
        return self._key(video_sha256, prompt.sha256)

    def _score_axes(
        self,
        video: Path,
        caption: str,
        axes: list[str],
        criteria: Mapping[str, str] | None,
    ) -> dict[str, Judgment | PhyJudgeError]:
        if self.mode == "off" or self._unreadable:
            return self.inner._score_axes(video, caption, axes, criteria)
        lookup = self._lookup(ClipRequest(video, caption, axes, criteria))
        if lookup.missing:
            inner = self.inner  # loaded first: a model's loading time is no judging time
            started = time.perf_counter()
            fresh = inner._score_axes(video, caption, list(lookup.missing), criteria)
            self._keep(lookup, _within_wall_time(fresh, time.perf_counter() - started))
        return {axis: lookup.results[axis] for axis in axes}

    def _score_clips(self, clips: list[ClipRequest]) -> list[ClipOutcomes]:
        """The clips' cached judgments, and the rest from the real judge in one batch."""
        if self.mode == "off" or self._unreadable:
            return self.inner._score_clips(clips)
        lookups: list[_Lookup | InputError] = []
        for clip in clips:
            try:
                lookups.append(self._lookup(clip))
            except InputError as exc:  # e.g. a missing video: only that clip fails
                lookups.append(exc)
        asked = [one for one in lookups if isinstance(one, _Lookup) and one.missing]
        if asked:
            inner = self.inner
            started = time.perf_counter()
            fresh = inner._score_clips(
                [dataclasses.replace(one.clip, axes=one.missing) for one in asked]
            )
            wall = (time.perf_counter() - started) / len(asked)
            for one, outcomes in zip(asked, fresh, strict=True):
                self._keep(one, _within_wall_time(outcomes, wall))
        return [
            dict.fromkeys(clip.axes, one)
            if isinstance(one, InputError)
            else {axis: one.results[axis] for axis in clip.axes}
            for clip, one in zip(clips, lookups, strict=True)
        ]

    def _lookup(self, clip: ClipRequest) -> _Lookup:
        """The clip's keys and cache hits; in replay mode a miss becomes its CacheError."""
        video = Path(clip.video)
        video_sha = sha256_file(video)
        criteria = clip.criteria or {}
        prompts = {
            a: self.rubric.render(a, clip.caption, criteria=criteria.get(a)).sha256
            for a in clip.axes
        }
        keys = {a: self._key(video_sha, prompt) for a, prompt in prompts.items()}
        hits: dict[str, Judgment] = {}
        refused: dict[str, str] = {}
        unreadable: str | None = None
        if self.mode in ("use", "only") and not self._unreadable:
            for axis, key in keys.items():
                try:
                    stored = self.cache.get_stored(key)
                except _WRITE_FAILURES as exc:
                    unreadable = self._cannot_open(exc)
                    break
                if stored is None:
                    continue
                problem = self._doubt(stored, key, axis, video_sha, prompts[axis])
                if problem is not None:
                    refused[axis] = problem
                    warnings.warn(
                        f"The judgment cache {self.cache.path} holds a judgment under key {key} "
                        f"(video {str(video)!r}, axis {axis!r}) that is not believed: {problem}. "
                        "It is treated as missing. Record it again, or delete the cache if "
                        "many are affected.",
                        CacheWarning,
                        stacklevel=2,
                    )
                    continue
                hits[axis] = dataclasses.replace(
                    stored.judgment, video=str(video), cached=True, judge=self.identity
                )
        missing = tuple(a for a in clip.axes if a not in hits)
        with self._lock:
            self.stats.hits += len(hits)
            self.stats.seconds_saved += sum(hit.seconds for hit in hits.values())
            self.stats.misses += len(missing)
        results: dict[str, Judgment | PhyJudgeError] = dict(hits)
        if missing and self.mode == "only":
            for axis in missing:
                results[axis] = CacheError(
                    unreadable
                    or self._replay_miss(str(video), video_sha, axis, keys[axis], refused)
                )
            missing = ()
        return _Lookup(clip, keys, results, missing)

    def _key(self, video_sha256: str, prompt_sha256: str) -> str:
        return cache_key(
            video_sha256=video_sha256,
            prompt_sha256=prompt_sha256,
            identity=self.identity,
            settings=self.settings,
        )

    def _doubt(
        self, stored: Stored, key: str, axis: str, video_sha: str, prompt_sha: str
    ) -> str | None:
        """Why a stored judgment cannot be this clip's judgment on ``axis``, or None.

        The key is recomputed from the row's own video and prompt hashes and the settings it
        was recorded with; the judge is this one (the row's claim of a judge is not used)."""
        judgment = stored.judgment
        if judgment.key != axis:
            return f"it is a judgment of {judgment.key!r}, not of {axis!r}"
        if judgment.video_sha256 != video_sha:
            return f"it is a judgment of another video (sha256 {judgment.video_sha256[:12]}...)"
        if judgment.prompt_sha256 != prompt_sha:
            return "it answers another prompt than this clip's prompt for the axis"
        recomputed = cache_key(
            video_sha256=judgment.video_sha256,
            prompt_sha256=judgment.prompt_sha256,
            identity=self.identity,
            settings=self.settings if stored.settings is None else stored.settings,
        )
        if recomputed != key:
            return "its key is not the one its content and recorded settings give"
        return reply_problem(judgment)

    def _flag(self, setting: str, value: object = None) -> str:
        return self.surface.flag(setting, value)

    def _replay_miss(
        self, video: str, video_sha: str, axis: str, key: str, refused: Mapping[str, str]
    ) -> str:
        """The message of a replay miss: what is missing, and why where the cache knows."""
        message = (
            f"Replay mode ({self._flag('cache-mode', 'only')}) has no judgment of {axis!r} for "
            f"video {video!r} (sha256 {video_sha[:12]}..., key {key})"
        )
        if axis in refused:
            return f"{message}: the one stored under its key is not believed ({refused[axis]})."
        hint = self._other_settings(video_sha, axis)
        if hint:
            return f"{message}. {hint}"
        return (
            f"{message}. Record it on a machine with the judge and import it with 'phyjudge "
            f"cache import', or run with {self._flag('cache-mode', 'use')}."
        )

    def _other_settings(self, video_sha: str, axis: str) -> str | None:
        """Where the cache holds this clip and axis under other settings: which differ, and
        the values to pass."""
        try:
            recorded = self.cache.recorded_settings(video_sha, axis)
        except _WRITE_FAILURES:
            return None
        if not recorded:
            return None
        ours = keyed(self.settings)
        for settings in recorded:
            if settings is None or settings == ours:
                continue
            differ = [name for name in ours if settings.get(name) != ours[name]]
            named = "; ".join(
                f"{name} was {settings.get(name)!r} there, {ours[name]!r} here (pass "
                f"{self._flag(name.replace('_', '-'), settings.get(name))})"
                for name in differ
            )
            return (
                f"The cache holds a judgment of this clip and axis recorded with other "
                f"settings: {named}. Replay with the recording's settings, or record these."
            )
        return (
            "The cache holds a judgment of this clip and axis under another key (another "
            "judge, prompt or settings): replay with the judge and settings that recorded it "
            f"({self._flag('identity', 'FILE')}), or record these."
        )

    def _cannot_open(self, exc: BaseException) -> str:
        """A cache that cannot be opened or read: in replay the message each item fails
        with; otherwise one warning, and the rest of the run judges without the cache."""
        if self.mode == "only":
            return (
                f"Replay mode ({self._flag('cache-mode', 'only')}) cannot read the judgment "
                f"cache {self.cache.path} ({exc}), so there is nothing to replay. Point "
                f"{self._flag('cache')} at the folder you imported the judgments into (phyjudge "
                f"cache import FILE --cache DIR), or judge with {self._flag('cache-mode', 'use')}."
            )
        with self._lock:
            first, self._unreadable = not self._unreadable, True
        if first:
            warnings.warn(
                f"The judgment cache {self.cache.path} cannot be opened ({exc}). This run "
                "judges without it: its judgments count and are reported, but nothing is "
                "read from or recorded in the cache. Free disk space or make the folder "
                f"writable, point {self._flag('cache')} elsewhere, or use "
                f"{self._flag('cache-mode', 'off')}.",
                CacheWarning,
                stacklevel=3,
            )
        return ""

    def _keep(self, lookup: _Lookup, fresh: Mapping[str, Judgment | PhyJudgeError]) -> None:
        """Record the fresh judgments of a clip's missing axes, and add them to its results."""
        for axis in lookup.missing:
            outcome = fresh[axis]
            if isinstance(outcome, Judgment):
                self._store(lookup.keys[axis], outcome)
            lookup.results[axis] = outcome

    def _store(self, key: str, judgment: Judgment) -> None:
        """Record ``judgment``; a cache that cannot be written warns once, and is then left
        alone for the rest of the run (the judgment is still returned)."""
        if self._unwritable or self._unreadable:
            return
        try:
            self._record_judge()
            self.cache.put(key, judgment, self.settings)
        except _WRITE_FAILURES as exc:
            with self._lock:
                first, self._unwritable = not self._unwritable, True
            if first:
                warnings.warn(
                    f"The judgment cache {self.cache.path} cannot be written ({exc}). The "
                    "judgments of this run are kept and reported, but not recorded: a later "
                    "run will judge them again. Free disk space or make the cache writable, "
                    f"point {self._flag('cache')} elsewhere, or use "
                    f"{self._flag('cache-mode', 'off')}.",
                    CacheWarning,
                    stacklevel=2,
                )
            return
        with self._lock:
            self.stats.stored += 1

    def _record_judge(self) -> None:
        """Write down who judges (once), so that a replay elsewhere needs no model."""
        if not self._recorded:
            self.cache.add_judge(JudgeRecord(self.identity, self.rubric))
            self._recorded = True

    def summary(self) -> str | None:
        return None if self._inner is None else self._inner.summary()

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None
        self.cache.close()
