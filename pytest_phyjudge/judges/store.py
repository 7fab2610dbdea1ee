"""A persistent, content-addressed store of judgments (SQLite in WAL mode), safe to share.

A judgment is keyed by everything that could change it: the video's bytes, the rendered
prompt, the judge (adapter, revision, adapter weights, base), the sampling settings and the
parser version. Each judgment is committed on its own, so a run killed at any point keeps
every judgment it completed. A database that cannot be read is moved aside and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from pytest_phyjudge._exceptions import CacheError, PhyJudgeError
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.engine.parse import PARSER_VERSION
from pytest_phyjudge.judges.record import JudgeRecord, judge_material

DB_NAME = "judgments.sqlite3"
#: Settings that change a judgment; anything else in ``Judge.settings`` does not.
KEYED_SETTINGS = ("fps", "max_pixels", "max_new_tokens", "scoring")
#: How long to wait for other processes to release a locked cache before giving up.
LOCKED_WAIT_SECONDS = 60.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgments (
    key TEXT PRIMARY KEY,
    axis TEXT NOT NULL,
    video_sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    judgment TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS judges (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL
)
"""


class CacheWarning(UserWarning):
    """The cache had a problem it recovered from (a corrupt file moved aside, a bad record
    skipped, a write that failed)."""


def cache_key(
    *,
    video_sha256: str,
    prompt_sha256: str,
    identity: JudgeIdentity,
    settings: Mapping[str, Any],
) -> str:
    """sha256 of the canonical JSON of everything a judgment depends on."""
    material = {
        "video": video_sha256,
        "prompt": prompt_sha256,
        "judge": judge_material(identity),
        "settings": {name: settings.get(name) for name in KEYED_SETTINGS},
        "parser": PARSER_VERSION,
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class JudgmentCache:
    """Judgments by key in ``folder/judgments.sqlite3``; opened on first use. One object may
    be used from several threads (its calls take turns on one connection).

    ``read_only`` (replay) opens the database as it is: nothing created, switched or written,
    so a cache on a read-only disk or shared by another user can be replayed; a missing
    database reads as an empty one."""

    def __init__(self, folder: str | Path, *, read_only: bool = False) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self.read_only = read_only
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    # -- connection ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 60000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(_SCHEMA)
        row = db.execute("PRAGMA quick_check").fetchone()
        if row is None or row[0] != "ok":
            db.close()
            raise sqlite3.DatabaseError(f"quick_check says {row[0] if row else 'nothing'}")
        return db

    def _connect_when_free(self) -> sqlite3.Connection:
        """``_connect``, retried while another process holds a lock: several xdist workers
        creating the cache at once briefly lock each other out (switching to WAL takes an
        exclusive lock). A locked cache is busy, not corrupt: it is never moved aside."""
        deadline = time.monotonic() + LOCKED_WAIT_SECONDS
        while True:
            try:
                return self._connect()
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _move_aside(self, exc: Exception) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(self.path) + suffix)
            if part.exists():
                part.replace(Path(f"{self.path}.corrupt-{stamp}{suffix}"))
        warnings.warn(
            f"The judgment cache {self.path} could not be read ({exc}); it was moved aside to "
            f"{self.path}.corrupt-{stamp} and a new, empty cache was started. Judgments will "
            "be recomputed.",
            CacheWarning,
            stacklevel=3,
        )

    @property
    def db(self) -> sqlite3.Connection:
        with self._lock:
            if self._db is None:
                self._db = self._open()
            return self._db

    def _open_read_only(self) -> sqlite3.Connection:
        if not self.path.is_file():
            return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        uri = self.path.resolve().as_uri()
        try:
            return self._connect_read_only(f"{uri}?mode=ro")
        except sqlite3.OperationalError:
            # A WAL database in a folder nobody may write (no -shm file can be made): read
            # the file as it stands.
            try:
                return self._connect_read_only(f"{uri}?mode=ro&immutable=1")
            except sqlite3.Error as exc:
                raise CacheError(
                    f"Cannot read the judgment cache {self.path} ({exc}). Check that the file "
                    "is a judgment cache you may read, or point --phyjudge-cache elsewhere."
                ) from exc

    @staticmethod
    def _connect_read_only(uri: str) -> sqlite3.Connection:
        db = sqlite3.connect(
            uri, uri=True, timeout=60.0, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _open(self) -> sqlite3.Connection:
        if self.read_only:
            return self._open_read_only()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"Cannot create the judgment cache folder {self.folder} ({exc}). Point "
                "--phyjudge-cache at a writable folder, or use --phyjudge-cache-mode off."
            ) from exc
        try:
            return self._connect_when_free()
        except sqlite3.OperationalError as exc:  # locked or unopenable: not corrupt
            raise CacheError(
                f"Cannot open the judgment cache {self.path} ({exc}). Another process may hold "
                "it for over a minute; point --phyjudge-cache elsewhere, or use "
                "--phyjudge-cache-mode off."
            ) from exc
        except sqlite3.DatabaseError as exc:
            self._move_aside(exc)
            try:
                return self._connect()
            except sqlite3.Error as again:
                raise CacheError(
                    f"Cannot open the judgment cache {self.path} ({again})."
                ) from again
        except sqlite3.Error as exc:
            raise CacheError(f"Cannot open the judgment cache {self.path} ({exc}).") from exc

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- judgments -------------------------------------------------------------------------

    def _rows(self, query: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """``query``'s rows; none where a read-only cache lacks the table (an old or empty
        cache never got it, and replay may not create it)."""
        with self._lock:
            try:
                return self.db.execute(query, args).fetchall()
            except sqlite3.OperationalError as exc:
                if self.read_only and "no such table" in str(exc):
                    return []
                raise

    def get(self, key: str) -> Judgment | None:
        rows = self._rows("SELECT judgment FROM judgments WHERE key = ?", (key,))
        if not rows:
            return None
        try:
            return Judgment.from_dict(json.loads(rows[0][0]))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            warnings.warn(
                f"The judgment cache {self.path} holds a judgment under key {key} that cannot "
                f"be used ({exc}); it is treated as missing, so it will be judged again (or, "
                "in replay, reported as missing). Re-record it, or delete the cache if many "
                "are affected.",
                CacheWarning,
                stacklevel=2,
            )
            return None

    def put(self, key: str, judgment: Judgment) -> None:
        data = judgment.to_dict()
        data["cached"] = False
        with self._lock:
            self.db.execute(
                "INSERT OR REPLACE INTO judgments (key, axis, video_sha256, created, judgment) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, judgment.key, judgment.video_sha256, time.time(), json.dumps(data)),
            )

    def __len__(self) -> int:
        rows = self._rows("SELECT COUNT(*) FROM judgments")
        return int(rows[0][0]) if rows else 0

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, text in self._rows("SELECT key, judgment FROM judgments ORDER BY created"):
            yield key, json.loads(text)

    # -- the judges that made them ---------------------------------------------------------

    def add_judge(self, record: JudgeRecord) -> None:
        """Remember ``record`` (once), so that a replay elsewhere knows who judged."""
        text = json.dumps(record.to_dict(), sort_keys=True)
        with self._lock:
            self.db.execute(
                "INSERT OR IGNORE INTO judges (id, record) VALUES (?, ?)", (record.id, text)
            )

    def judges(self) -> list[JudgeRecord]:
        """The judges whose judgments this cache holds, as recorded with them."""
        rows = self._rows("SELECT id, record FROM judges ORDER BY id")
        records = []
        for judge_id, text in rows:
            try:
                records.append(JudgeRecord.from_dict(json.loads(text), f"{self.path} [{judge_id}]"))
            except (ValueError, PhyJudgeError):
                continue  # a record from an incompatible version: not offered for replay
        return records

    # -- moving judgments between machines -------------------------------------------------

    def export_jsonl(self, out: IO[str]) -> int:
        """Write the judges (``{"judge_record": ...}`` lines), then one ``{"key",
        "judgment"}`` object per line; returns the number of judgments."""
        for record in self.judges():
            out.write(json.dumps({"judge_record": record.to_dict()}, sort_keys=True) + "\n")
        count = 0
        for key, judgment in self.items():
            out.write(json.dumps({"key": key, "judgment": judgment}, sort_keys=True) + "\n")
            count += 1
        return count

    def import_jsonl(self, lines: Iterable[str], *, source: str = "<input>") -> tuple[int, int]:
        """Read what ``export_jsonl`` wrote: (judgments new to this cache, judgments read). A
        line that is not an exported record is an error naming it, and then nothing of the
        file is imported; a record whose judgment no judge could have written (a score of 7,
        an unknown axis, ...) is skipped with a warning naming its line."""
        records: list[tuple[str, Judgment]] = []
        judges: list[JudgeRecord] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{source}:{number}"
            try:
                record = json.loads(line)
                if isinstance(record, dict) and "judge_record" in record:
                    judges.append(JudgeRecord.from_dict(record["judge_record"], where))
                    continue
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
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                warnings.warn(
                    f"{where}: skipped a judgment no judge could have written ({exc}); the "
                    "other records are imported. Export it again from the cache that made it.",
                    CacheWarning,
                    stacklevel=2,
                )
                continue
            records.append((key, judgment))
        with self._lock:
            self.db.execute("BEGIN")
            try:
                for judge in judges:
                    self.add_judge(judge)
                before = len(self)
                for key, judgment in records:
                    self.put(key, judgment)
                added = len(self) - before
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return added, len(records)
