"""``phyjudge cache import``, record by record: each judgment checked against what can be
recomputed, written a batch at a time.

Threat model: an export comes from whoever sent it; its worst lines are a score its reply
does not say, a judgment filed under another clip's, axis' or settings' key, a claim of
another judge, a key that would replace a stored judgment, and millions of lines. Each
judgment takes the identity of a judge recorded with it (the file's judge_record lines, the
identity files beside it, the cache's judges) whose key it reproduces, never its own claim;
its reply must parse to its score and its prompt must be its axis'. A refused record or a
conflict (without ``replace``) leaves the cache as it was: the whole import is one
transaction, streamed in batches so memory stays flat.
"""

from __future__ import annotations

import json
import sqlite3
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pytest_phyjudge._exceptions import CacheError
from pytest_phyjudge._files import FileProblem, parse_json
from pytest_phyjudge.engine.judgment import Judgment
from pytest_phyjudge.judges.cache.record import JudgeRecord
from pytest_phyjudge.judges.cache.trust import (
    CacheConflict,
    CacheWarning,
    identity_dict,
    key_owner,
    prompt_hasher,
    reply_problem,
    settings_text,
)
from pytest_phyjudge.judges.settings import DEFAULT_KEYED_SETTINGS

#: Judgments an import reads, checks and writes at a time: memory stays flat.
IMPORT_BATCH = 2000
#: Problems an import lists before it only counts them.
SHOWN_PROBLEMS = 10


class _Cache(Protocol):
    """What an import needs of the cache it fills."""

    @property
    def db(self) -> sqlite3.Connection: ...

    def add_judge(self, record: JudgeRecord) -> None: ...


def comparable(data: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two stored judgments the same judgment (timings and paths do not)."""
    probs = data.get("probs")
    return (
        data.get("key"),
        data.get("score"),
        data.get("raw"),
        None if probs is None else tuple(probs),
        data.get("expected"),
        data.get("video_sha256"),
        data.get("prompt_sha256"),
    )


class Imported(tuple):  # type: ignore[type-arg]
    """``(new, read)`` as an import always returned, and how many stored judgments it
    replaced (``--replace``)."""

    replaced: int

    def __new__(cls, added: int, read: int, replaced: int = 0) -> Imported:
        self = super().__new__(cls, (added, read))
        self.replaced = replaced
        return self

    @property
    def added(self) -> int:
        return int(self[0])

    @property
    def read(self) -> int:
        return int(self[1])


class Importer:
    """One import, line by line: checks each record, and writes them a batch at a time
    inside the caller's transaction (memory stays flat whatever the file's length)."""

    def __init__(
        self, cache: _Cache, source: str, identities: list[JudgeRecord], replace: bool
    ) -> None:
        self.cache = cache
        self.source = source
        self.judges = identities
        self.replace = replace
        self.batch: dict[str, tuple[str, Judgment, str, dict[str, Any]]] = {}
        self.added = self.read = self.replaced = 0
        self.refused: list[str] = []
        self.refused_count = 0
        self.conflicts: list[str] = []
        self.conflict_count = 0
        self.recorded: set[str] = set()
        self.hashers: dict[tuple[str, str], Callable[[str], str | None]] = {}

    def line(self, number: int, line: str) -> None:
        if not line.strip():
            return
        where = f"{self.source}:{number}"
        try:
            # Depth-capped, and a key twice in one object refused: which of two "score"s
            # counts is not for an import to choose.
            record = parse_json(line, unique_keys=True)
        except FileProblem as problem:
            raise CacheError(
                f"{where}: not a judgment exported by 'phyjudge cache export' (the line "
                f"{problem.reason}). Nothing was imported; fix or drop the line."
            ) from None
        try:
            if isinstance(record, dict) and "judge_record" in record:
                self.judges.insert(0, JudgeRecord.from_dict(record["judge_record"], where))
                return
            key = record["key"]
            data = record["judgment"]
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            raise CacheError(
                f"{where}: not a judgment exported by 'phyjudge cache export' "
                f"({type(exc).__name__}: {exc}). Nothing was imported; fix or drop the line."
            ) from exc
        try:
            if not isinstance(key, str):
                raise ValueError(f"'key' is {key!r}; it must be the cache key (a string)")
            judgment = Judgment.from_dict(data)
            for name in ("video_sha256", "prompt_sha256", "caption"):
                if not isinstance(data.get(name), str):
                    raise ValueError(f"'{name}' is {data.get(name)!r}; it must be a string")
            settings = record.get("settings")
            if settings is not None and not isinstance(settings, dict):
                raise ValueError(f"'settings' is {settings!r}; it must be an object")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            warnings.warn(
                f"{where}: skipped a judgment no judge could have written ({exc}); the "
                "other records are imported. Export it again from the cache that made it.",
                CacheWarning,
                stacklevel=4,
            )
            return
        self.check(where, key, data, judgment, settings, record.get("judge_id"))

    def check(
        self,
        where: str,
        key: str,
        data: dict[str, Any],
        judgment: Judgment,
        settings: dict[str, Any] | None,
        judge_id: Any,
    ) -> None:
        """Refuse what its content does not bear out; queue the rest."""
        first = judge_id if isinstance(judge_id, str) else None
        used = settings_text(DEFAULT_KEYED_SETTINGS if settings is None else settings)
        owner = key_owner(key, data, used, self.judges, first)
        problem = None
        if owner is None:
            problem = (
                f"its key is not the one its own content gives (video sha256 "
                f"{judgment.video_sha256[:12]}..., its prompt, "
                f"{'the default settings' if settings is None else 'its settings'}) with "
                + (
                    "any judge recorded with it"
                    if self.judges
                    else "a judge identity: the file has no judge_record lines, no identity "
                    "file lies beside it and the cache records no judge"
                )
            )
        else:
            problem = reply_problem(judgment) or self.prompt_problem(judgment, owner)
        if problem is not None:
            self.refuse(
                f"{where}: refused the judgment of {judgment.key!r} for video sha256 "
                f"{judgment.video_sha256[:12]}... (key {key}): {problem}."
            )
            return
        assert owner is not None
        self.read += 1
        if self.refused_count:
            return  # nothing will be imported: only look for more problems
        kept = dict(data)  # the checked fields, without the judge they claim
        kept["judge"] = identity_dict(owner.identity)
        kept["cached"] = False
        earlier = self.batch.get(key)
        if earlier is not None:
            if comparable(earlier[3]) != comparable(kept):
                self.conflict(key, earlier[3], kept, where, "an earlier line of the file")
            return
        self.batch[key] = (where, judgment, used, kept)
        if owner.id not in self.recorded:
            self.cache.add_judge(owner)  # the judge of what it imports, for a replay to name
            self.recorded.add(owner.id)
        if len(self.batch) >= IMPORT_BATCH:
            self.flush()

    def prompt_problem(self, judgment: Judgment, owner: JudgeRecord) -> str | None:
        """Why ``judgment``'s prompt hash is that of another axis' prompt, or None. (A prompt
        matching no axis may be a law with criteria of its own: that is checked on read.)"""
        if self.prompt_sha(owner, judgment.key, judgment.caption) == judgment.prompt_sha256:
            return None
        rubric = owner.rubric
        for axis in (*rubric.general_templates, *rubric.physical_criteria):
            if axis != judgment.key and (
                self.prompt_sha(owner, axis, judgment.caption) == judgment.prompt_sha256
            ):
                return f"it is a judgment of {judgment.key!r} filed under {axis!r}'s prompt"
        return None

    def prompt_sha(self, owner: JudgeRecord, axis: str, caption: str) -> str | None:
        hasher = self.hashers.get((owner.id, axis))
        if hasher is None:
            hasher = self.hashers[owner.id, axis] = prompt_hasher(owner, axis)
        return hasher(caption)

    def refuse(self, message: str) -> None:
        self.refused_count += 1
        if len(self.refused) < SHOWN_PROBLEMS:
            self.refused.append(message)
        self.batch.clear()

    def conflict(
        self, key: str, stored: Mapping[str, Any], new: Mapping[str, Any], where: str, held: str
    ) -> None:
        self.conflict_count += 1
        if len(self.conflicts) < SHOWN_PROBLEMS:
            self.conflicts.append(
                f"{where}: key {key} (video sha256 {str(new.get('video_sha256'))[:12]}..., "
                f"axis {new.get('key')!r}): {held} holds score {stored.get('score')} "
                f"(reply {str(stored.get('raw'))[:60]!r}), this file says {new.get('score')} "
                f"(reply {str(new.get('raw'))[:60]!r})"
            )

    def flush(self) -> None:
        """Write the batch: new keys added, identical ones counted, differing ones replaced
        (``replace``) or reported."""
        if not self.batch or self.refused_count:
            self.batch.clear()
            return
        db = self.cache.db
        stored: dict[str, dict[str, Any]] = {}
        keys = list(self.batch)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, text in db.execute(
                f"SELECT key, judgment FROM judgments WHERE key IN ({marks})", chunk
            ):
                try:
                    stored[key] = json.loads(text)
                except (ValueError, RecursionError):
                    stored[key] = {}  # an unreadable row: any import differs from it
        rows = []
        now = time.time()
        for key, (where, judgment, settings, kept) in self.batch.items():
            before = stored.get(key)
            if before is not None:
                if comparable(before) == comparable(kept):
                    continue
                self.conflict(key, before, kept, where, "the cache")
                if not self.replace:
                    continue
                self.replaced += 1
            else:
                self.added += 1
            rows.append(
                (
                    key,
                    judgment.key,
                    judgment.video_sha256,
                    now,
                    json.dumps(kept),
                    settings,
                )
            )
        rows.sort()  # in key order: the inserts walk the keys' B-tree once
        db.executemany(
            "INSERT OR REPLACE INTO judgments "
            "(key, axis, video_sha256, created, judgment, settings) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        self.batch.clear()

    def verdict(self) -> None:
        """Raise for what was refused, or for conflicts not to be replaced."""
        if self.refused_count:
            more = self.refused_count - len(self.refused)
            raise CacheError(
                f"{self.source}: {self.refused_count} judgment(s) cannot be believed:\n  "
                + "\n  ".join(self.refused)
                + (f"\n  ... and {more} more" if more > 0 else "")
                + "\nNothing was imported. Export them again from the cache that recorded "
                "them (with its judge_record lines or its identity file beside the export), "
                "or drop those lines."
            )
        if self.conflict_count and not self.replace:
            more = self.conflict_count - len(self.conflicts)
            raise CacheConflict(
                f"{self.source}: {self.conflict_count} judgment(s) differ from the ones "
                "already stored under the same key:\n  "
                + "\n  ".join(self.conflicts)
                + (f"\n  ... and {more} more" if more > 0 else "")
                + "\nNothing was imported. Pass --replace to take the file's judgments, or "
                "drop those lines to keep the stored ones."
            )
