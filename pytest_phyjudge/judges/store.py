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

import functools
import hashlib
import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_phyjudge._exceptions import CacheError, JudgeOutputError, PhyJudgeError
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.engine.parse import PARSER_VERSION, answer_prefix, parse_score
from pytest_phyjudge.engine.video import DEFAULT_FPS, DEFAULT_MAX_PIXELS
from pytest_phyjudge.judges.record import JudgeRecord, judge_material

DB_NAME = "judgments.sqlite3"
#: The database's own files: an export must never be written over one of them.
DB_SUFFIXES = ("", "-wal", "-shm", "-journal")
#: Settings that change a judgment; anything else in ``Judge.settings`` does not.
KEYED_SETTINGS = ("fps", "max_pixels", "max_new_tokens", "scoring")
#: The keyed settings of a run that sets none: what an export line without its settings (an
#: export of an older version) is checked against.
DEFAULT_KEYED_SETTINGS: dict[str, Any] = {
    "fps": DEFAULT_FPS,
    "max_pixels": DEFAULT_MAX_PIXELS,
    "max_new_tokens": 64,
    "scoring": "greedy",
}
#: How long to wait for other processes to release a locked cache before giving up.
LOCKED_WAIT_SECONDS = 60.0
#: Judgments an import reads, checks and writes at a time: memory stays flat.
IMPORT_BATCH = 2000
#: Problems an import lists before it only counts them.
SHOWN_PROBLEMS = 10
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


class CacheWarning(UserWarning):
    """The cache had a problem it recovered from (a corrupt file moved aside, a bad record
    skipped, a write that failed)."""


class CacheConflict(CacheError):
    """An import would replace stored judgments with different ones."""


def keyed(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that are part of a judgment's key, and only those."""
    return {name: settings.get(name) for name in KEYED_SETTINGS}


def cache_key(
    *,
    video_sha256: str,
    prompt_sha256: str,
    identity: JudgeIdentity,
    settings: Mapping[str, Any],
) -> str:
    """sha256 of the canonical JSON of everything a judgment depends on."""
    return key_maker(identity, settings)(video_sha256, prompt_sha256)


def key_maker(identity: JudgeIdentity, settings: Mapping[str, Any]) -> Callable[[str, str], str]:
    """``cache_key`` for one judge and settings, as a function of (video, prompt) hashes:
    the canonical JSON of the rest is made once (an import keys a million lines)."""
    material = {
        "video": "\0video",
        "prompt": "\0prompt",
        "judge": judge_material(identity),
        "settings": keyed(settings),
        "parser": PARSER_VERSION,
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    head, rest = canonical.split('"\\u0000prompt"')
    middle, tail = rest.split('"\\u0000video"')

    def make(video_sha256: str, prompt_sha256: str) -> str:
        text = head + _json_string(prompt_sha256) + middle + _json_string(video_sha256) + tail
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    return make


def _json_string(text: str) -> str:
    """``json.dumps(text)``, without the encoder for the usual hex digest."""
    return f'"{text}"' if text.isascii() and text.isalnum() else json.dumps(text)


def reply_problem(judgment: Judgment) -> str | None:
    """Why ``judgment``'s raw reply does not say its score on its axis, or None when it does.

    A greedy reply is parsed as the judge's reply was; a distribution judgment's reply is
    the answer prefix and the likeliest digit of its probabilities."""
    axis = judgment.key
    try:
        said = parse_score(judgment.raw, axis)
    except JudgeOutputError:
        said = None
    if said is None and judgment.probs is not None:
        likeliest = max(range(5), key=lambda i: judgment.probs[i]) + 1  # type: ignore[index]
        if judgment.raw != f"{answer_prefix(axis)}{judgment.score}":
            return f"its reply {judgment.raw[:80]!r} is not the answer {axis!r} to its score"
        if likeliest != judgment.score:
            return (
                f"its score {judgment.score} is not the likeliest digit of its probabilities "
                f"({likeliest})"
            )
        return None
    if said is None:
        return f"its reply {judgment.raw[:80]!r} gives no score for {axis!r}"
    if said != judgment.score:
        return f"its reply {judgment.raw[:80]!r} says {said}, its score says {judgment.score}"
    return None


def _comparable(data: Mapping[str, Any]) -> tuple[Any, ...]:
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


@dataclass(frozen=True)
class Stored:
    """A judgment as the cache holds it, with the keyed settings it was recorded under
    (None for a judgment recorded before the cache kept them)."""

    judgment: Judgment
    settings: dict[str, Any] | None


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
            "--phyjudge-cache elsewhere."
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
            settings = _settings_of(rows[0][1])
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
                found.append(_settings_of(text))
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
                (last[0], last[0], last[1], IMPORT_BATCH),
            )
            if not page:
                return
            for key, text, settings, _created in page:
                try:
                    yield key, json.loads(text), _settings_of(settings)
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
            owner = _owner(key, judgment, settings or DEFAULT_KEYED_SETTINGS, judges)
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
        importer = _Importer(self, source, [*identities, *self.judges()], replace)
        with self._lock:
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
        return Imported(importer.added, importer.read, importer.replaced)


def _has_settings(db: sqlite3.Connection) -> bool:
    columns = db.execute("PRAGMA table_info(judgments)").fetchall()
    return any(column[1] == "settings" for column in columns)


def _settings_of(text: Any) -> dict[str, Any] | None:
    """Stored settings (JSON text, or NULL) as the keyed settings; a ValueError for others."""
    if text is None:
        return None
    data = json.loads(text) if isinstance(text, str) else text
    if not isinstance(data, dict):
        raise ValueError(f"settings are {type(data).__name__}, not an object")
    return keyed(data)


def _owner(
    key: str,
    judgment: Mapping[str, Any],
    settings: Mapping[str, Any] | str,
    judges: Sequence[JudgeRecord],
    first: str | None = None,
) -> JudgeRecord | None:
    """The judge among ``judges`` (``first``'s id tried first) whose identity, with the
    judgment's own video and prompt hashes and ``settings`` (or their ``_settings_text``),
    reproduces ``key``."""
    video, prompt = judgment.get("video_sha256"), judgment.get("prompt_sha256")
    if not isinstance(video, str) or not isinstance(prompt, str):
        return None
    ordered = judges
    if first is not None and len(judges) > 1:
        ordered = sorted(judges, key=lambda record: record.id != first)
    used = settings if isinstance(settings, str) else _settings_text(settings)
    for record in ordered:
        if _maker(record.identity, used)(video, prompt) == key:
            return record
    return None


def _settings_text(settings: Mapping[str, Any]) -> str:
    """The keyed settings as canonical JSON (what the store keeps, and ``_maker``'s key)."""
    try:
        values = tuple(settings.get(name) for name in KEYED_SETTINGS)
        return _settings_text_of(values, tuple(type(value) for value in values))
    except TypeError:  # a value JSON may hold but a tuple cannot hash (a list)
        return json.dumps(keyed(settings), sort_keys=True)


@functools.lru_cache(maxsize=64)
def _settings_text_of(values: tuple[Any, ...], types: tuple[type, ...]) -> str:
    """(``types`` keeps 2 and 2.0, and 1 and True, apart: their JSON differs.)"""
    return json.dumps(dict(zip(KEYED_SETTINGS, values, strict=True)), sort_keys=True)


@functools.lru_cache(maxsize=64)
def _identity_dict(identity: JudgeIdentity) -> dict[str, Any]:
    return identity.to_dict()


@functools.lru_cache(maxsize=64)
def _maker(identity: JudgeIdentity, settings: str) -> Callable[[str, str], str]:
    return key_maker(identity, json.loads(settings))


#: Stands for the caption while a prompt is rendered once per judge and axis.
_CAPTION = "\0caption\0"


def prompt_hasher(record: JudgeRecord, axis: str) -> Callable[[str], str | None]:
    """``lambda caption: record.rubric.render(axis, caption).sha256``, rendering the
    template once: the caption is escaped into the JSON text the hash is taken of (the
    same text, character for character). None for an axis the rubric cannot render."""
    try:
        rendered = record.rubric.render(axis, _CAPTION)
    except (PhyJudgeError, KeyError, ValueError, TypeError):
        return lambda caption: None
    text = json.dumps([rendered.key, rendered.system, rendered.user], ensure_ascii=False)
    parts = text.split(json.dumps(_CAPTION, ensure_ascii=False)[1:-1])
    if _CAPTION in rendered.system or len(parts) != rendered.user.count(_CAPTION) + 1:
        return lambda caption: record.rubric.render(axis, caption).sha256  # a rubric of its own

    def sha(caption: str) -> str:
        escaped = json.dumps(caption, ensure_ascii=False)[1:-1]
        return hashlib.sha256(escaped.join(parts).encode("utf-8")).hexdigest()

    return sha


class _Importer:
    """One import, line by line: checks each record, and writes them a batch at a time
    inside the caller's transaction (memory stays flat whatever the file's length)."""

    def __init__(
        self, cache: JudgmentCache, source: str, identities: list[JudgeRecord], replace: bool
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
            record = json.loads(line)
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
            settings = record.get("settings")
            settings = None if settings is None else _settings_of(settings)
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
        used = _settings_text(DEFAULT_KEYED_SETTINGS if settings is None else settings)
        owner = _owner(key, data, used, self.judges, first)
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
        kept["judge"] = _identity_dict(owner.identity)
        kept["cached"] = False
        earlier = self.batch.get(key)
        if earlier is not None:
            if _comparable(earlier[3]) != _comparable(kept):
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
                if _comparable(before) == _comparable(kept):
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
