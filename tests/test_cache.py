"""The judgment cache: keys, replay, corruption, concurrency, a SIGKILL mid-write, export."""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_phyjudge import CacheError, Judgment, ScriptedJudge
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.judges.cache.judge import CachedJudge, _within_wall_time
from pytest_phyjudge.judges.cache.store import CacheWarning, JudgmentCache, cache_key

CAPTION = "A ball falls onto a table."
IDENTITY = JudgeIdentity(kind="local", adapter="a", revision="r", base="b", adapter_sha256="w")
SETTINGS = {"fps": 2.0, "max_pixels": 230400, "max_new_tokens": 64, "scoring": "greedy"}


def _cached(folder: Path, mode: str, scripted: ScriptedJudge | None) -> CachedJudge:
    rubric = (scripted or ScriptedJudge({"*": 3})).rubric
    return CachedJudge(
        identity=IDENTITY,
        rubric=rubric,
        settings=SETTINGS,
        cache=JudgmentCache(folder),
        mode=mode,
        load=(lambda: scripted) if scripted is not None else None,
    )


def test_key_changes_with_everything_a_judgment_depends_on():
    base = {"video_sha256": "v", "prompt_sha256": "p", "identity": IDENTITY, "settings": SETTINGS}
    key = cache_key(**base)
    assert key == cache_key(**dict(base))
    variants = [
        {"video_sha256": "v2"},
        {"prompt_sha256": "p2"},
        {
            "identity": JudgeIdentity(
                kind="local", adapter="a", revision="r", base="other-base", adapter_sha256="w"
            )
        },
        {
            "identity": JudgeIdentity(
                kind="local", adapter="a", revision="r", base="b", adapter_sha256="other-weights"
            )
        },
        {"settings": {**SETTINGS, "fps": 4.0}},
        {"settings": {**SETTINGS, "scoring": "distribution"}},
        {"settings": {**SETTINGS, "max_new_tokens": 32}},
    ]
    for change in variants:
        assert cache_key(**{**base, **change}) != key, change
    # Without a weights hash (a remote judge), the adapter id and revision name the judge.
    remote = JudgeIdentity(kind="remote", adapter="a", revision="r")
    remote_r2 = JudgeIdentity(kind="remote", adapter="a", revision="r2")
    assert cache_key(**{**base, "identity": remote}) != cache_key(**{**base, "identity": remote_r2})
    # The same adapter weights and base in other folders (another machine) share the key.
    moved = JudgeIdentity(
        kind="local",
        adapter="/gpu/box/adapter",
        revision="r",
        base="/gpu/box/b",
        adapter_sha256="w",
    )
    here = JudgeIdentity(
        kind="local", adapter="/ci/adapter", revision="r", base="/ci/models/b", adapter_sha256="w"
    )
    assert cache_key(**{**base, "identity": moved}) == cache_key(**{**base, "identity": here})
    # A setting that does not change a judgment does not change the key.
    assert cache_key(**{**base, "settings": {**SETTINGS, "share_prefix": False}}) == key


def test_use_then_replay_without_a_model(tmp_path: Path, synthetic_video: Path):
    scripted = ScriptedJudge({"SA": 4, "gravity": 2, "*": 3})
    first = _cached(tmp_path, "use", scripted)
    got = first.score_many(synthetic_video, CAPTION, ["SA", "gravity"])
    assert [got[a].score for a in ("SA", "gravity")] == [4, 2]
    assert first.stats.misses == 2 and first.stats.stored == 2 and len(scripted.calls) == 2
    first.close()

    replay = _cached(tmp_path, "only", None)  # nothing to load: a load would raise
    again = replay.score_many(synthetic_video, CAPTION, ["gravity", "SA", "shadow"])
    assert again["gravity"].score == 2 and again["gravity"].cached
    assert again["SA"].raw == got["SA"].raw
    miss = again["shadow"]
    assert isinstance(miss, CacheError)
    assert "'shadow'" in str(miss) and str(synthetic_video) in str(miss) and "key " in str(miss)
    assert replay.stats.hits == 2 and replay.stats.misses == 1
    with pytest.raises(CacheError):
        replay.score(synthetic_video, CAPTION, law="shadow")


def test_refresh_and_off_ask_the_judge(tmp_path: Path, synthetic_video: Path):
    _cached(tmp_path, "use", ScriptedJudge({"*": 2})).score(synthetic_video, CAPTION, metric="SA")
    refreshed = ScriptedJudge({"*": 5})
    judge = _cached(tmp_path, "refresh", refreshed)
    assert judge.score(synthetic_video, CAPTION, metric="SA").score == 5
    assert _cached(tmp_path, "only", None).score(synthetic_video, CAPTION, metric="SA").score == 5
    off = ScriptedJudge({"*": 1})
    assert _cached(tmp_path, "off", off).score(synthetic_video, CAPTION, metric="SA").score == 1
    assert _cached(tmp_path, "only", None).score(synthetic_video, CAPTION, metric="SA").score == 5


def test_unparseable_replies_are_not_cached(tmp_path: Path, synthetic_video: Path):
    judge = _cached(tmp_path, "use", ScriptedJudge({"*": "no idea"}))
    assert not isinstance(judge.score_many(synthetic_video, CAPTION, ["SA"])["SA"], Judgment)
    assert len(judge.cache) == 0


def test_a_corrupt_database_is_moved_aside(tmp_path: Path, synthetic_video: Path):
    (tmp_path / "judgments.sqlite3").write_bytes(b"this is not sqlite" * 100)
    judge = _cached(tmp_path, "use", ScriptedJudge({"*": 3}))
    with pytest.warns(CacheWarning, match="moved aside"):
        assert judge.score(synthetic_video, CAPTION, metric="PTV").score == 3
    assert list(tmp_path.glob("judgments.sqlite3.corrupt-*"))
    assert len(judge.cache) == 1


def test_export_import_round_trip(tmp_path: Path, synthetic_video: Path):
    recorder = _cached(tmp_path / "gpu", "use", ScriptedJudge({"*": 4}))
    recorder.score_many(synthetic_video, CAPTION, ["SA", "PTV", "gravity"])
    buffer = io.StringIO()
    assert recorder.cache.export_jsonl(buffer) == 3
    ci = JudgmentCache(tmp_path / "ci")
    assert ci.import_jsonl(io.StringIO(buffer.getvalue())) == (3, 3)
    # The same file again adds nothing, and says so.
    assert ci.import_jsonl(io.StringIO(buffer.getvalue())) == (0, 3)
    assert len(ci) == 3
    replay = CachedJudge(
        identity=IDENTITY, rubric=recorder.rubric, settings=SETTINGS, cache=ci, mode="only"
    )
    assert replay.score(synthetic_video, CAPTION, law="gravity").score == 4
    with pytest.raises(CacheError, match=r"judgments\.jsonl:2: not a judgment"):
        ci.import_jsonl(["", "{broken"], source="judgments.jsonl")


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pytest_phyjudge.judges.cache.store import JudgmentCache
    from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
    cache = JudgmentCache(sys.argv[1])
    ident = JudgeIdentity(kind="scripted", adapter="x")
    for i in range(100000):
        cache.put(f"key-{i}", Judgment(key="SA", score=3, raw="{}", video="v",
                  video_sha256="s", prompt_sha256="p", judge=ident, seconds=0.1))
        print(i, flush=True)
    """
)


def test_sigkill_mid_write_keeps_every_completed_judgment(tmp_path: Path):
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    done = -1
    deadline = time.monotonic() + 60
    while done < 200 and time.monotonic() < deadline:
        done = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    cache = JudgmentCache(tmp_path)
    keys = {key for key, _ in cache.items()}
    assert all(f"key-{i}" in keys for i in range(done + 1))
    assert sqlite3.connect(cache.path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


_CONCURRENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pytest_phyjudge.judges.cache.store import JudgmentCache
    from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
    Path(sys.argv[1], f"ready-{sys.argv[2]}").touch()  # imported: waiting for the signal
    go = Path(sys.argv[1], "go")
    while not go.exists():  # every writer creates the new cache at the same moment
        time.sleep(0.001)
    cache = JudgmentCache(sys.argv[1])
    ident = JudgeIdentity(kind="scripted", adapter="x")
    for i in range(200):
        cache.put(f"{sys.argv[2]}-{i}", Judgment(key="SA", score=3, raw="{}", video="v",
                  video_sha256="s", prompt_sha256="p", judge=ident, seconds=0.1))
    """
)


def test_concurrent_writers_lose_nothing(tmp_path: Path):
    """Four processes (as xdist workers do) create one new cache at once and write to it: a
    writer briefly locked out waits; it never takes the locked cache for a corrupt one."""
    procs = [
        subprocess.Popen([sys.executable, "-c", _CONCURRENT, str(tmp_path), f"w{n}"])
        for n in range(4)
    ]
    # A barrier: the signal goes once every writer is up and waiting for it.
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert len(JudgmentCache(tmp_path)) == 800
    assert not list(tmp_path.glob("*corrupt*"))


class _ConcurrentRequests(ScriptedJudge):
    """Times each axis as a remote judge does when its requests wait for one another: the
    n-th axis reports the time of all n (here an inflated 10 s each, returned at once)."""

    def _score_axes(self, video, caption, axes, criteria):  # type: ignore[override]
        done = super()._score_axes(video, caption, axes, criteria)
        return {
            axis: dataclasses.replace(j, seconds=10.0 * (i + 1))
            for i, (axis, j) in enumerate(done.items())
        }


def test_seconds_saved_count_the_batch_once(tmp_path: Path, synthetic_video: Path):
    """Hits save what judging took, not the sum of concurrent requests' waits (which counted
    4 hits as 100 s here)."""
    axes = ["SA", "PTV", "gravity", "collision"]
    first = _cached(tmp_path, "use", _ConcurrentRequests({"*": 4}))
    started = time.perf_counter()
    judged = first.score_many(synthetic_video, CAPTION, axes)
    wall = time.perf_counter() - started
    assert sum(j.seconds for j in judged.values()) <= wall
    first.close()
    replay = _cached(tmp_path, "only", None)
    replay.score_many(synthetic_video, CAPTION, axes)
    assert replay.stats.hits == 4
    assert replay.stats.seconds_saved <= wall
    # Times that fit in the batch's are kept as the judge measured them.
    plausible = {a: dataclasses.replace(j, seconds=0.5) for a, j in judged.items()}
    assert _within_wall_time(plausible, 2.0) == plausible
    assert _within_wall_time(plausible, 1.0)["SA"].seconds == pytest.approx(0.25)
