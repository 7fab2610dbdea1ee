"""Hostile caches (issue 11, classes 3 and 4): a cache that cannot be written, a read-only
cache replayed, and records no judge could have written, imported or stored."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import pytest

from pytest_phyjudge import CacheError, JudgeSettings, ScriptedJudge
from pytest_phyjudge.cli.main import main
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.judges.cache.judge import CachedJudge
from pytest_phyjudge.judges.cache.store import CacheWarning, JudgmentCache

CAPTION = "A ball falls onto a table."
IDENTITY = JudgeIdentity(kind="local", adapter="a", revision="r", base="b", adapter_sha256="w")
SETTINGS = {"fps": 2.0, "max_pixels": 230400, "max_new_tokens": 64, "scoring": "greedy"}


def _judge(cache: JudgmentCache, mode: str = "use") -> CachedJudge:
    scripted = ScriptedJudge({"*": 4})
    return CachedJudge(
        identity=IDENTITY,
        rubric=scripted.rubric,
        settings=SETTINGS,
        cache=cache,
        mode=mode,
        load=lambda: scripted,
    )


def _record(folder: Path, video: Path, axes: list[str]) -> dict[str, str]:
    """Judge ``axes`` into a cache at ``folder``; returns each axis' key."""
    judge = _judge(JudgmentCache(folder))
    judge.score_many(video, CAPTION, axes)
    keys = {axis: judge.key_for(_sha(video), axis, CAPTION, None) for axis in axes}
    judge.close()
    return keys


def _sha(video: Path) -> str:
    from pytest_phyjudge.engine.video import sha256_file

    return sha256_file(video)


@pytest.mark.parametrize(
    "failure",
    [
        sqlite3.OperationalError("attempt to write a readonly database"),
        OSError(28, "No space left on device"),
        CacheError("Cannot open the judgment cache (locked)"),
    ],
    ids=["readonly", "disk-full", "locked"],
)
def test_a_cache_write_failure_warns_once_and_keeps_the_judgments(
    tmp_path: Path, synthetic_video: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
):
    def refuse(self, *args, **kwargs):
        raise failure

    monkeypatch.setattr(JudgmentCache, "put", refuse)
    monkeypatch.setattr(JudgmentCache, "add_judge", refuse)
    judge = _judge(JudgmentCache(tmp_path / "cache"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = judge.score_many(synthetic_video, CAPTION, ["SA", "gravity"])
        second = judge.score_many(synthetic_video, CAPTION, ["PTV", "inertia"])
    judge.close()
    assert [j.score for j in [*first.values(), *second.values()]] == [4, 4, 4, 4]
    cache_warnings = [w for w in caught if issubclass(w.category, CacheWarning)]
    assert len(cache_warnings) == 1, [str(w.message) for w in caught]
    message = str(cache_warnings[0].message)
    assert str(tmp_path / "cache") in message and str(failure) in message
    assert "not recorded" in message
    assert judge.stats.stored == 0


def _old_cache(folder: Path, video: Path) -> dict[str, str]:
    """A cache as an old version left it: rollback journal, no ``judges`` table."""
    keys = _record(folder, video, ["SA"])
    db = sqlite3.connect(folder / "judgments.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("DROP TABLE judges")
    db.close()
    return keys


def test_replay_only_reads_a_read_only_cache_without_writing_it(
    tmp_path: Path, synthetic_video: Path
):
    folder = tmp_path / "old"
    _old_cache(folder, synthetic_video)
    database = folder / "judgments.sqlite3"
    before = database.read_bytes()
    cache = JudgmentCache(folder, read_only=True)
    judge = _judge(cache, mode="only")
    (hit,) = judge.score_many(synthetic_video, CAPTION, ["SA"]).values()
    assert hit.cached and hit.score == 4
    assert cache.judges() == []  # no judges table: none recorded, not an error
    judge.close()
    # Nothing was written: no WAL switch, no schema, no WAL or shared-memory files.
    assert database.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["judgments.sqlite3"]


def test_replay_only_of_a_missing_cache_creates_nothing(tmp_path: Path, synthetic_video: Path):
    folder = tmp_path / "nowhere"
    judge = _judge(JudgmentCache(folder, read_only=True), mode="only")
    (miss,) = judge.score_many(synthetic_video, CAPTION, ["SA"]).values()
    judge.close()
    assert "Replay mode" in str(miss)
    assert not folder.exists()


def test_the_factory_opens_a_replay_cache_read_only(tmp_path: Path):
    from pytest_phyjudge.judges.factory import _cached

    scripted = ScriptedJudge({"*": 4})
    settings = JudgeSettings(cache_mode="only", cache_dir=tmp_path / "c")
    judge = _cached(settings, None, scripted, lambda: scripted)
    assert judge.cache.read_only


BAD_JUDGMENTS = {
    "score 7": {"score": 7},
    "score -3": {"score": -3},
    "score 'high'": {"score": "high"},
    "score null": {"score": None},
    "score true": {"score": True},
    "probs of 4": {"probs": [0.2, 0.2, 0.2, 0.4]},
    "probs above 1": {"probs": [2.0, 0.0, 0.0, 0.0, 0.0]},
    "expected 9": {"expected": 9.0},
    "seconds NaN": {"seconds": float("nan")},
    "seconds negative": {"seconds": -1.0},
    "unknown axis": {"key": "levitation"},
    "raw not text": {"raw": 4},
}


def _export(tmp_path: Path, video: Path) -> list[dict]:
    _record(tmp_path / "source", video, ["SA"])
    out = tmp_path / "good.jsonl"
    JudgmentCache(tmp_path / "source").export_jsonl(out.open("w"))
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_import_skips_records_no_judge_could_write(tmp_path: Path, synthetic_video: Path):
    lines = _export(tmp_path, synthetic_video)
    good = lines[-1]
    records = [lines[0], good]  # the judge it came with first: a record takes its identity
    for number, change in enumerate(BAD_JUDGMENTS.values()):
        records.append({"key": f"bad{number}", "judgment": {**good["judgment"], **change}})
    text = [json.dumps(r) for r in records]
    cache = JudgmentCache(tmp_path / "target")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        added, read = cache.import_jsonl(text, source="in.jsonl")
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert (added, read) == (1, 1)
    assert len(cache) == 1
    cache.close()
    assert len(messages) == len(BAD_JUDGMENTS)
    fields = ["score"] * 5 + ["probs"] * 2 + ["expected", "seconds", "seconds", "key", "raw"]
    for number, (message, field) in enumerate(zip(messages, fields, strict=True), start=3):
        assert f"in.jsonl:{number}" in message and f"'{field}'" in message, message


def test_cli_import_of_bad_records_names_the_line_and_imports_the_rest(
    capsys, tmp_path: Path, synthetic_video: Path
):
    lines = _export(tmp_path, synthetic_video)
    good = lines[-1]
    bad = {"key": "other", "judgment": {**good["judgment"], "score": 7}}
    file = tmp_path / "mixed.jsonl"
    file.write_text(json.dumps(lines[0]) + "\n" + json.dumps(bad) + "\n" + json.dumps(good) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["cache", "import", str(file), "--cache", str(tmp_path / "target")])
    err = capsys.readouterr().err
    assert code == 0 and "imported 1 new judgment" in err, err
    assert any("mixed.jsonl:2" in str(w.message) for w in caught)
    assert "Traceback" not in err


@pytest.mark.parametrize("change", list(BAD_JUDGMENTS.values()), ids=list(BAD_JUDGMENTS))
def test_a_bad_stored_row_is_a_miss_with_one_warning(
    tmp_path: Path, synthetic_video: Path, change: dict
):
    folder = tmp_path / "cache"
    keys = _record(folder, synthetic_video, ["SA"])
    db = sqlite3.connect(folder / "judgments.sqlite3", isolation_level=None)
    (text,) = db.execute("SELECT judgment FROM judgments WHERE key = ?", (keys["SA"],)).fetchone()
    db.execute(
        "UPDATE judgments SET judgment = ? WHERE key = ?",
        (json.dumps({**json.loads(text), **change}), keys["SA"]),
    )
    db.close()
    cache = JudgmentCache(folder)
    judge = _judge(cache, mode="only")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (miss,) = judge.score_many(synthetic_video, CAPTION, ["SA"]).values()
    judge.close()
    assert isinstance(miss, CacheError)
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert messages and all(keys["SA"] in m for m in messages)
    assert len(messages) == 1, messages
