"""A persistent, content-addressed store of judgments (SQLite in WAL mode), safe to share.

A judgment is keyed by everything that could change it: the video's bytes, the rendered
prompt, the judge (adapter, revision, adapter weights, base), the sampling settings and the
parser version. Each judgment is committed on its own, so a run killed at any point keeps
every judgment it completed. A database that cannot be read is moved aside and rebuilt.

Threat model: the store reads a SQLite file anyone with the folder may have edited, and
``phyjudge cache import`` reads JSON lines from whoever sent the export; their worst content
is a score its reply does not say, a judgment filed under another clip's, axis' or
settings' key, a judge that claims to be another, a key that replaces a stored judgment, or
a file of millions of lines. So nothing in a record is believed that can be checked: its key
is recomputed from its own video and prompt hashes, its settings and the identity it came
with (never the judge it claims), its raw reply must parse to its score and axis, and an
import never replaces a judgment that differs from the stored one unless told to
(``--replace``). Imports stream in batches inside one transaction: nothing of a refused file
is kept. The store writes only its own database (and its -wal/-shm files) in its folder.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_phyjudge._exceptions import CacheError, PhyJudgeError
from pytest_phyjudge.engine.judgment import Judgment
from pytest_phyjudge.judges.cache.record import JudgeRecord
from pytest_phyjudge.judges.cache.transfer import Imported, Importer
from pytest_phyjudge.judges.cache.trust import (
    CacheWarning,
    cache_key,
    key_owner,
    keyed,
    settings_of,
)
from pytest_phyjudge.judges.settings import DEFAULT_KEYED_SETTINGS, PYTEST_SURFACE, Surface

#: Names used from here; the checks themselves live in ``trust``.
__all__ = ["CacheWarning", "Imported", "JudgmentCache", "Stored", "cache_key"]

DB_NAME = "judgments.sqlite3"
#: The database's own files: an export must never be written over one of them.
DB_SUFFIXES = ("", "-wal", "-shm", "-journal")
#: The page cache (KiB) of an import.
IMPORT_CACHE_KIB = 65536
#: Rows an export reads at a time.
PAGE_ROWS = 2000
#: How long to wait for other processes to release a locked cache before giving up.
LOCKED_WAIT_SECONDS = 60.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgments (
    key TEXT PRIMARY KEY,
    axis TEXT NOT NULL,
    video_sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    judgment TEXT NOT NULL,
    settings TEXT
);
CREATE TABLE IF NOT EXISTS judges (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Stored:
    """A judgment as the cache holds it, with the keyed settings it was recorded under
    (None for a judgment recorded before the cache kept them)."""

    judgment: Judgment
    settings: dict[str, Any] | None


class JudgmentCache:
    """Judgments by key in ``folder/judgments.sqlite3``; opened on first use. One object may
    be used from several threads (its calls take turns on one connection).

    ``read_only`` (replay) opens the database as it is: nothing created, switched or written,
    so a cache on a read-only disk or shared by another user can be replayed; a missing
    database reads as an empty one."""

    def __init__(
        self, folder: str | Path, *, read_only: bool = False, surface: Surface = PYTEST_SURFACE
    ) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self.read_only = read_only
        #: Whose flags the messages name (pytest's, or the ``phyjudge`` command's).
        self.surface = surface
        self._db: sqlite3.Connection | None = None
        self._column: str | None = None
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
        if not _has_settings(db):  # a cache of an older version: keep its rows, add the column
            try:
                db.execute("ALTER TABLE judgments ADD COLUMN settings TEXT")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # another worker added it first
                    raise
        # A replay miss looks for the clip's judgments under other settings.
        db.execute("CREATE INDEX IF NOT EXISTS judgments_clip ON judgments (video_sha256, axis)")
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
                raise self._unreadable(exc) from exc
        except sqlite3.Error as exc:  # not a database at all, or a damaged one
            raise self._unreadable(exc) from exc

    def _unreadable(self, exc: Exception) -> CacheError:
        return CacheError(
            f"Cannot read the judgment cache {self.path} ({exc}), so nothing can be replayed "
            "from it. Check that the file is a judgment cache you may read (import an export "
            "into a fresh folder with 'phyjudge cache import FILE --cache DIR'), or point "
            f"{self.surface.flag('cache')} elsewhere."
        )

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
                f"{self.surface.flag('cache')} at a writable folder, or use "
                f"{self.surface.flag('cache-mode', 'off')}."
            ) from exc
        try:
            return self._connect_when_free()
        except sqlite3.OperationalError as exc:  # locked or unopenable: not corrupt
            raise CacheError(
                f"Cannot open the judgment cache {self.path} ({exc}). Another process may hold "
                f"it for over a minute; point {self.surface.flag('cache')} elsewhere, or use "
                f"{self.surface.flag('cache-mode', 'off')}."
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
            self._column = None

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

    def _settings_column(self) -> str:
        """The settings column, or NULL where a read-only cache of an older version has none."""
        with self._lock:
            if self._column is None:
                self._column = "settings" if _has_settings(self.db) else "NULL"
            return self._column

    def get(self, key: str) -> Judgment | None:
        stored = self.get_stored(key)
        return None if stored is None else stored.judgment

    def get_stored(self, key: str) -> Stored | None:
        """The judgment under ``key`` and the settings it was recorded with; None when there
        is none, or none that can be used (with a warning naming the key)."""
        rows = self._rows(
            f"SELECT judgment, {self._settings_column()} FROM judgments WHERE key = ?", (key,)
        )
        if not rows:
            return None
        try:
            judgment = Judgment.from_dict(json.loads(rows[0][0]))
            settings = settings_of(rows[0][1])
            return Stored(judgment, settings)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            warnings.warn(
                f"The judgment cache {self.path} holds a judgment under key {key} that cannot "
                f"be used ({exc}); it is treated as missing, so it will be judged again (or, "
                "in replay, reported as missing). Re-record it, or delete the cache if many "
                "are affected.",
                CacheWarning,
                stacklevel=2,
            )
            return None

    def put(self, key: str, judgment: Judgment, settings: Mapping[str, Any] | None = None) -> None:
        """Store ``judgment`` under ``key``, with the ``settings`` it was made with (what a
        later read or import recomputes the key from)."""
        data = judgment.to_dict()
        data["cached"] = False
        kept = None if settings is None else json.dumps(keyed(settings), sort_keys=True)
        with self._lock:
            self.db.execute(
                "INSERT OR REPLACE INTO judgments "
                "(key, axis, video_sha256, created, judgment, settings) VALUES (?, ?, ?, ?, ?, ?)",
                (key, judgment.key, judgment.video_sha256, time.time(), json.dumps(data), kept),
            )

    def recorded_settings(self, video_sha256: str, axis: str) -> list[dict[str, Any] | None]:
        """The settings under which this cache holds judgments of the clip ``video_sha256``
        on ``axis`` (None for one recorded before the cache kept them): what a replay miss
        names when the run's settings differ."""
        rows = self._rows(
            f"SELECT DISTINCT {self._settings_column()} FROM judgments "
            "WHERE video_sha256 = ? AND axis = ? LIMIT 20",
            (video_sha256, axis),
        )
        found = []
        for (text,) in rows:
            try:
                found.append(settings_of(text))
            except (ValueError, TypeError):
                continue
        return found

    def __len__(self) -> int:
        rows = self._rows("SELECT COUNT(*) FROM judgments")
        return int(rows[0][0]) if rows else 0

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, judgment, _settings in self.rows():
            yield key, judgment

    def rows(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None]]:
        """(key, judgment, settings) of every stored judgment, oldest first, read in pages so
        that a cache of millions is never held in memory."""
        column = self._settings_column()
        last = (-1.0, "")
        while True:
            page = self._rows(
                f"SELECT key, judgment, {column}, created FROM judgments "
                "WHERE created > ? OR (created = ? AND key > ?) ORDER BY created, key LIMIT ?",
                (last[0], last[0], last[1], PAGE_ROWS),
            )
            if not page:
                return
            for key, text, settings, _created in page:
                try:
                    yield key, json.loads(text), settings_of(settings)
                except (ValueError, TypeError, RecursionError):
                    continue  # unreadable rows are never handed on
            last = (page[-1][3], page[-1][0])

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

    def files(self) -> tuple[Path, ...]:
        """The database's own files (whether they exist yet or not)."""
        return tuple(Path(f"{self.path}{suffix}") for suffix in DB_SUFFIXES)

    def export_jsonl(self, out: IO[str]) -> int:
        """Write the judges (``{"judge_record": ...}`` lines), then one ``{"key", "judgment",
        "settings", "judge_id"}`` object per line; returns the number of judgments."""
        judges = self.judges()
        for record in judges:
            out.write(json.dumps({"judge_record": record.to_dict()}, sort_keys=True) + "\n")
        count = 0
        for key, judgment, settings in self.rows():
            line: dict[str, Any] = {"key": key, "judgment": judgment}
            if settings is not None:
                line["settings"] = settings
            owner = key_owner(key, judgment, settings or DEFAULT_KEYED_SETTINGS, judges)
            if owner is not None:
                line["judge_id"] = owner.id
            out.write(json.dumps(line, sort_keys=True) + "\n")
            count += 1
        return count

    def import_jsonl(
        self,
        lines: Iterable[str],
        *,
        source: str = "<input>",
        identities: Sequence[JudgeRecord] = (),
        replace: bool = False,
    ) -> Imported:
        """Read what ``export_jsonl`` wrote: (judgments new to this cache, judgments read).

        Each judgment takes the identity of a judge recorded with it (the file's
        ``judge_record`` lines, then ``identities``: the identity files beside it, then the
        judges this cache recorded), the one whose key it reproduces; its own claim of a
        judge is dropped. A line that is not an exported record, a key that its content does
        not reproduce and a reply that does not say its score are errors naming the line;
        a judgment that differs from the one stored under its key is a CacheConflict unless
        ``replace``; after any of them nothing of the file is imported. A record whose
        judgment no judge could have written (a score of 7, an unknown axis, ...) is skipped
        with a warning naming its line."""
        importer = Importer(self, source, [*identities, *self.judges()], replace)
        with self._lock:
            # A page cache of its own while it writes (bounded: memory stays flat), so the
            # keys' B-tree is not read from disk again for every batch.
            self.db.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
            self.db.execute("BEGIN")
            try:
                for number, line in enumerate(lines, start=1):
                    importer.line(number, line)
                importer.flush()
                importer.verdict()
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            finally:
                self.db.execute("PRAGMA cache_size = -2000")  # SQLite's default
        return Imported(importer.added, importer.read, importer.replaced)


def _has_settings(db: sqlite3.Connection) -> bool:
    columns = db.execute("PRAGMA table_info(judgments)").fetchall()
    return any(column[1] == "settings" for column in columns)
