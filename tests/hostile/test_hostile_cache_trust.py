"""The cache believes only what it can check (issue 19, classes 5 and 8): forged, misfiled
and conflicting judgments, imported or edited into the database, are refused; exports never
write over the cache or a special file; a cache that cannot be opened is not fatal."""

from __future__ import annotations

import json
import os
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest
from pytester_kit import Kit

from pytest_phyjudge import CacheError, Judgment, ScriptedJudge
from pytest_phyjudge.cli.main import main
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.engine.video import sha256_file
from pytest_phyjudge.judges.cache.judge import CachedJudge
from pytest_phyjudge.judges.cache.store import CacheWarning, JudgmentCache, cache_key

pytest_plugins = "pytester"

CAPTION = "A ball falls onto a table."
#: The judge that recorded: the tiny test judge, whose scores are meaningless.
IDENTITY = JudgeIdentity(kind="tiny", adapter="tiny-judge", base="tiny-base", adapter_sha256="w")
CLAIMED = JudgeIdentity(
    kind="local", adapter="PhyGround/PhyJudge-9B", base="Qwen/Qwen3.5-9B", adapter_sha256="real"
)
SETTINGS = {"fps": 2.0, "max_pixels": 230400, "max_new_tokens": 64, "scoring": "greedy"}


def _judge(
    folder: Path, mode: str = "use", scores: Any = 4, settings: dict | None = None
) -> CachedJudge:
    scripted = ScriptedJudge(scores if isinstance(scores, dict) else {"*": scores})
    return CachedJudge(
        identity=IDENTITY,
        rubric=scripted.rubric,
        settings=settings or SETTINGS,
        cache=JudgmentCache(folder, read_only=mode == "only"),
        mode=mode,
        load=(lambda: scripted) if mode != "only" else None,
    )


def _record(folder: Path, video: Path, axes: list[str], scores: Any = 4) -> dict[str, str]:
    """Judge ``axes`` of ``video`` into a cache at ``folder``; each axis' key."""
    judge = _judge(folder, scores=scores)
    judge.score_many(video, CAPTION, axes)
    keys = {axis: judge.key_for(sha256_file(video), axis, CAPTION, None) for axis in axes}
    judge.close()
    return keys


def _replay(folder: Path, video: Path, axis: str, **kwargs: Any) -> Judgment | Exception:
    judge = _judge(folder, mode="only", **kwargs)
    try:
        return judge.score_many(video, CAPTION, [axis])[axis]
    finally:
        judge.close()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # an option this version does not know
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def _export(capsys: pytest.CaptureFixture[str], folder: Path, out: Path) -> list[dict]:
    out.parent.mkdir(parents=True, exist_ok=True)
    code, err = _cli(capsys, "cache", "export", str(out), "--cache", str(folder))
    assert code == 0, err
    return [json.loads(line) for line in out.read_text().splitlines()]


def _write(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _rows(folder: Path) -> dict[str, dict]:
    db = sqlite3.connect(folder / "judgments.sqlite3")
    try:
        return {k: json.loads(t) for k, t in db.execute("SELECT key, judgment FROM judgments")}
    finally:
        db.close()


def _set_row(folder: Path, key: str, judgment: dict) -> None:
    db = sqlite3.connect(folder / "judgments.sqlite3", isolation_level=None)
    db.execute(
        "INSERT OR REPLACE INTO judgments (key, axis, video_sha256, created, judgment) "
        "VALUES (?, ?, ?, 0, ?)",
        (key, judgment["key"], judgment["video_sha256"], json.dumps(judgment)),
    )
    db.close()


def _judgment_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if "judgment" in line]


@pytest.fixture
def other_video(tmp_path: Path, synthetic_video: Path) -> Path:
    """Another clip: the same frames, other bytes, another sha256."""
    copy = tmp_path / "other.mp4"
    copy.write_bytes(synthetic_video.read_bytes() + b"\0")
    return copy


# -- conflicts --------------------------------------------------------------------------


def test_import_never_replaces_a_differing_judgment_without_replace(
    capsys, tmp_path: Path, synthetic_video: Path
):
    keys = _record(tmp_path / "a", synthetic_video, ["SA"], scores=4)
    _record(tmp_path / "b", synthetic_video, ["SA"], scores=2)
    _export(capsys, tmp_path / "a", tmp_path / "ea" / "judgments.jsonl")
    _export(capsys, tmp_path / "b", tmp_path / "eb" / "judgments.jsonl")
    target = str(tmp_path / "target")
    for _ in range(2):  # the same file twice: nothing new, and no conflict
        code, err = _cli(
            capsys, "cache", "import", str(tmp_path / "ea/judgments.jsonl"), "--cache", target
        )
        assert code == 0, err
    assert "0 new" in err and "1 already there" in err

    code, err = _cli(
        capsys, "cache", "import", str(tmp_path / "eb/judgments.jsonl"), "--cache", target
    )
    assert code == 6, err
    assert keys["SA"] in err and "'SA'" in err and "score 4" in err and "says 2" in err, err
    assert "--replace" in err and "Traceback" not in err
    assert _replay(tmp_path / "target", synthetic_video, "SA").score == 4

    code, err = _cli(
        capsys, "cache", "import", str(tmp_path / "eb/judgments.jsonl"), "--cache", target,
        "--replace",
    )  # fmt: skip
    assert code == 0 and "1 replaced" in err, err
    assert _replay(tmp_path / "target", synthetic_video, "SA").score == 2


def test_two_lines_of_one_file_that_disagree_are_a_conflict(
    capsys, tmp_path: Path, synthetic_video: Path
):
    _record(tmp_path / "a", synthetic_video, ["SA"], scores=4)
    lines = _export(capsys, tmp_path / "a", tmp_path / "e" / "judgments.jsonl")
    (line,) = _judgment_lines(lines)
    twin = json.loads(json.dumps(line))
    twin["judgment"].update(score=1, raw='{"SA": 1}')
    file = _write(tmp_path / "e" / "judgments.jsonl", [*lines, twin])
    code, err = _cli(capsys, "cache", "import", str(file), "--cache", str(tmp_path / "t"))
    assert code == 6 and "score 4" in err and "says 1" in err, err
    assert len(JudgmentCache(tmp_path / "t")) == 0


# -- replies that do not say their score ---------------------------------------------------


def test_import_refuses_a_reply_that_does_not_say_its_score(
    capsys, tmp_path: Path, synthetic_video: Path
):
    _record(tmp_path / "a", synthetic_video, ["SA", "PTV"], scores=1)
    lines = _export(capsys, tmp_path / "a", tmp_path / "e" / "judgments.jsonl")
    forged = _judgment_lines(lines)[1]
    forged["judgment"]["score"] = 5  # the reply still reads 1
    file = _write(tmp_path / "e" / "judgments.jsonl", lines)
    code, err = _cli(capsys, "cache", "import", str(file), "--cache", str(tmp_path / "t"))
    assert code == 2, err
    assert f"{file}:3" in err and "says 1" in err and "Nothing was imported" in err, err
    assert len(JudgmentCache(tmp_path / "t")) == 0


def test_a_stored_reply_that_does_not_say_its_score_is_not_replayed(
    tmp_path: Path, synthetic_video: Path
):
    keys = _record(tmp_path / "c", synthetic_video, ["SA"], scores=1)
    row = _rows(tmp_path / "c")[keys["SA"]]
    _set_row(tmp_path / "c", keys["SA"], {**row, "score": 5})
    with pytest.warns(CacheWarning, match=keys["SA"]):
        got = _replay(tmp_path / "c", synthetic_video, "SA")
    assert isinstance(got, CacheError) and "not believed" in str(got)


# -- a judgment filed under another axis' or another clip's key ----------------------------


def test_import_refuses_a_judgment_filed_under_another_axis_key(
    capsys, tmp_path: Path, synthetic_video: Path
):
    keys = _record(tmp_path / "a", synthetic_video, ["SA", "gravity"], scores={"SA": 5, "*": 1})
    lines = _export(capsys, tmp_path / "a", tmp_path / "e" / "judgments.jsonl")
    by_axis = {line["judgment"]["key"]: line for line in _judgment_lines(lines)}
    sa, gravity = by_axis["SA"]["judgment"], by_axis["gravity"]["judgment"]
    # As it is (its own prompt hash): the key is not its own.
    whole = {**by_axis["SA"], "key": keys["gravity"]}
    # With gravity's prompt hash, so that the key reproduces: the prompt is gravity's.
    misfiled = {**whole, "judgment": {**sa, "prompt_sha256": gravity["prompt_sha256"]}}
    for number, forged in enumerate([whole, misfiled]):
        file = _write(tmp_path / "e" / f"forged{number}.jsonl", [lines[0], forged])
        code, err = _cli(capsys, "cache", "import", str(file), "--cache", str(tmp_path / "t"))
        assert code == 2 and f"{file}:2" in err and keys["gravity"] in err, err
    assert "'gravity'" in err and "prompt" in err
    assert len(JudgmentCache(tmp_path / "t")) == 0


def test_a_stored_judgment_of_another_axis_is_not_replayed(tmp_path: Path, synthetic_video: Path):
    keys = _record(tmp_path / "c", synthetic_video, ["SA", "gravity"], scores={"SA": 5, "*": 1})
    rows = _rows(tmp_path / "c")
    _set_row(tmp_path / "c", keys["gravity"], rows[keys["SA"]])
    with pytest.warns(CacheWarning, match="'SA'"):
        got = _replay(tmp_path / "c", synthetic_video, "gravity")
    assert isinstance(got, CacheError), got


def test_import_refuses_a_judgment_of_another_video(
    capsys, tmp_path: Path, synthetic_video: Path, other_video: Path
):
    keys = _record(tmp_path / "a", synthetic_video, ["SA"], scores=2)
    _record(tmp_path / "a", other_video, ["SA"], scores=5)
    lines = _export(capsys, tmp_path / "a", tmp_path / "e" / "judgments.jsonl")
    other_sha = sha256_file(other_video)
    (theirs,) = [x for x in _judgment_lines(lines) if x["judgment"]["video_sha256"] == other_sha]
    forged = {**theirs, "key": keys["SA"]}
    file = _write(tmp_path / "e" / "forged.jsonl", [lines[0], forged])
    code, err = _cli(capsys, "cache", "import", str(file), "--cache", str(tmp_path / "t"))
    assert code == 2 and f"{file}:2" in err and other_sha[:12] in err, err


def test_a_stored_judgment_of_another_video_is_not_replayed(
    tmp_path: Path, synthetic_video: Path, other_video: Path
):
    keys = _record(tmp_path / "c", synthetic_video, ["SA"], scores=2)
    theirs = _record(tmp_path / "c", other_video, ["SA"], scores=5)
    _set_row(tmp_path / "c", keys["SA"], _rows(tmp_path / "c")[theirs["SA"]])
    with pytest.warns(CacheWarning, match="another video"):
        got = _replay(tmp_path / "c", synthetic_video, "SA")
    assert isinstance(got, CacheError), got


# -- identity: the one it came with, never its own claim ----------------------------------


def test_imported_judgments_take_the_identity_of_the_judge_they_came_with(
    capsys, tmp_path: Path, synthetic_video: Path
):
    _record(tmp_path / "a", synthetic_video, ["SA"], scores=5)
    lines = _export(capsys, tmp_path / "a", tmp_path / "e" / "judgments.jsonl")
    (line,) = _judgment_lines(lines)
    line["judgment"]["judge"] = CLAIMED.to_dict()  # the record claims the real judge
    file = _write(tmp_path / "e" / "judgments.jsonl", lines)
    code, err = _cli(capsys, "cache", "import", str(file), "--cache", str(tmp_path / "t"))
    assert code == 0, err
    (stored,) = _rows(tmp_path / "t").values()
    assert stored["judge"]["kind"] == "tiny", stored["judge"]
    got = _replay(tmp_path / "t", synthetic_video, "SA")
    assert isinstance(got, Judgment) and got.judge == IDENTITY


def test_a_record_keyed_for_a_judge_it_did_not_come_with_is_refused(
    capsys, tmp_path: Path, synthetic_video: Path
):
    _record(tmp_path / "a", synthetic_video, ["SA"], scores=5)
    lines = _export(capsys, tmp_path / "a", tmp_path / "e" / "judgments.jsonl")
    (line,) = _judgment_lines(lines)
    judgment = {**line["judgment"], "judge": CLAIMED.to_dict()}
    key = cache_key(
        video_sha256=judgment["video_sha256"],
        prompt_sha256=judgment["prompt_sha256"],
        identity=CLAIMED,
        settings=SETTINGS,
    )
    file = _write(
        tmp_path / "e" / "judgments.jsonl", [lines[0], {"key": key, "judgment": judgment}]
    )
    code, err = _cli(capsys, "cache", "import", str(file), "--cache", str(tmp_path / "t"))
    assert code == 2 and f"{file}:2" in err and "judge recorded with it" in err, err


def test_a_stored_claim_of_another_judge_is_not_reported(tmp_path: Path, synthetic_video: Path):
    keys = _record(tmp_path / "c", synthetic_video, ["SA"], scores=5)
    row = _rows(tmp_path / "c")[keys["SA"]]
    _set_row(tmp_path / "c", keys["SA"], {**row, "judge": CLAIMED.to_dict()})
    got = _replay(tmp_path / "c", synthetic_video, "SA")
    assert isinstance(got, Judgment) and got.judge.kind == "tiny", got


# -- export targets ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_export_refuses_the_cache_own_files(
    capsys, tmp_path: Path, synthetic_video: Path, suffix: str
):
    _record(tmp_path / "c", synthetic_video, ["SA", "PTV"])
    target = tmp_path / "c" / f"judgments.sqlite3{suffix}"
    code, err = _cli(
        capsys, "cache", "export", str(target), "--cache", str(tmp_path / "c"), "--force"
    )
    assert code == 2 and "cache's own file" in err, err
    assert len(JudgmentCache(tmp_path / "c")) == 2
    assert not list((tmp_path / "c").glob("*.identity*.json"))


def test_export_refuses_a_pipe_and_a_device_before_opening(
    capsys, tmp_path: Path, synthetic_video: Path
):
    _record(tmp_path / "c", synthetic_video, ["SA"])
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # an old version writes, not hangs
    try:
        code, err = _cli(capsys, "cache", "export", str(fifo), "--cache", str(tmp_path / "c"))
        assert os.read(reader, 1) == b""
    except BlockingIOError:
        code, err = -1, "wrote into the pipe"
    finally:
        os.close(reader)
    assert code == 2 and "a pipe" in err, err
    assert not (tmp_path / "pipe.identity.json").exists()
    code, err = _cli(capsys, "cache", "export", os.devnull, "--cache", str(tmp_path / "c"))
    assert code == 2 and "a device" in err, err


def test_export_does_not_overwrite_without_force(capsys, tmp_path: Path, synthetic_video: Path):
    _record(tmp_path / "c", synthetic_video, ["SA"])
    out = tmp_path / "judgments.jsonl"
    out.write_text("my notes\n")
    code, err = _cli(capsys, "cache", "export", str(out), "--cache", str(tmp_path / "c"))
    assert code == 2 and "--force" in err, err
    assert out.read_text() == "my notes\n"
    assert not (tmp_path / "judgments.identity.json").exists()
    # An identity file that exists beside it is refused the same way, before anything is written.
    fresh = tmp_path / "fresh.jsonl"
    (tmp_path / "fresh.identity.json").write_text("mine")
    code, err = _cli(capsys, "cache", "export", str(fresh), "--cache", str(tmp_path / "c"))
    assert code == 2 and not fresh.exists(), err
    assert (tmp_path / "fresh.identity.json").read_text() == "mine"
    # A symlink is replaced with --force, never followed.
    victim = tmp_path / "elsewhere.txt"
    victim.write_text("precious")
    link = tmp_path / "linked.jsonl"
    link.symlink_to(victim)
    code, err = _cli(
        capsys, "cache", "export", str(link), "--cache", str(tmp_path / "c"), "--force"
    )
    assert code == 0, err
    assert victim.read_text() == "precious" and not link.is_symlink()
    assert "judgment" in link.read_text()
    code, err = _cli(capsys, "cache", "export", str(out), "--cache", str(tmp_path / "c"), "--force")
    assert code == 0 and "judge_record" in out.read_text(), err


# -- a cache that cannot be opened ---------------------------------------------------------


def test_a_cache_that_cannot_be_created_warns_once_and_the_judgments_count(
    tmp_path: Path, synthetic_video: Path, other_video: Path
):
    (tmp_path / "blocker").write_text("a file where the cache folder should go")
    judge = _judge(tmp_path / "blocker" / "cache", scores=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [
            judge.score_many(v, CAPTION, ["SA", "gravity"]) for v in (synthetic_video, other_video)
        ]
    judge.close()
    scores = [j.score if isinstance(j, Judgment) else j for one in got for j in one.values()]
    assert scores == [4, 4, 4, 4], scores
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert len(messages) == 1 and "without it" in messages[0], messages


def test_a_pytest_run_with_a_cache_that_cannot_be_created_judges_every_item(
    pytester: pytest.Pytester, kit: Kit
):
    kit.module(
        "standin",
        "from pytest_phyjudge import ScriptedJudge\n"
        "from pytest_phyjudge.engine.judgment import JudgeIdentity\n"
        "def make():\n"
        "    judge = ScriptedJudge({'SA': 4, '*': 1})\n"
        "    judge.identity = JudgeIdentity(kind='local', adapter='stand-in')\n"
        "    return judge\n",
    )
    for name in ("a", "b"):
        kit.clip(name)
    kit.suite(
        "videos: clips/{id}.mp4\n"
        "defaults: {metrics: [SA, PTV], min_score: 3}\n"
        "cases:\n  - {id: a, prompt: A ball falls.}\n  - {id: b, prompt: A cup tips.}\n"
    )
    (pytester.path / "blocker").write_text("not a folder")
    result = pytester.runpytest(
        "--phyjudge-judge", "standin:make", "--phyjudge-cache", "blocker/cache", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=2, failed=2)  # the judgments decide, not the cache
    assert "Cannot open the judgment cache" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*cannot be opened*judges without it*"])


def test_replay_of_an_unreadable_cache_is_a_clear_error(tmp_path: Path, synthetic_video: Path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "judgments.sqlite3").write_bytes(b"not a database at all " * 100)
    got = _replay(tmp_path / "c", synthetic_video, "SA")
    assert isinstance(got, CacheError) and "nothing to replay" in str(got), got


# -- a replay with other settings says which ------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"fps": 4.0}, ["fps", "2.0", "--phyjudge-fps 2.0"]),
        ({"scoring": "distribution"}, ["--phyjudge-scoring greedy"]),
    ],
)
def test_a_replay_miss_names_the_setting_that_differs(
    tmp_path: Path, synthetic_video: Path, change: dict, named: list[str]
):
    _record(tmp_path / "c", synthetic_video, ["SA"])
    got = _replay(tmp_path / "c", synthetic_video, "SA", settings={**SETTINGS, **change})
    assert isinstance(got, CacheError)
    for text in named:
        assert text in str(got), str(got)


def test_a_pytest_replay_of_an_unreadable_cache_says_so(pytester: pytest.Pytester, kit: Kit):
    kit.clip("a")
    kit.suite(
        "videos: clips/{id}.mp4\ndefaults: {metrics: [SA]}\ncases:\n  - {id: a, prompt: A ball.}\n"
    )
    (pytester.path / "c").mkdir()
    (pytester.path / "c" / "judgments.sqlite3").write_bytes(b"not a database at all " * 100)
    result = pytester.runpytest(
        "--phyjudge-cache", "c", "--phyjudge-cache-mode", "only", "-p", "no:randomly"
    )
    out = result.stdout.str()
    assert result.ret != 0
    assert "Cannot read the judgment cache" in out and "nothing can be replayed" in out, out
    assert "Traceback" not in out and "sqlite3.DatabaseError" not in out, out


@pytest.mark.parametrize("field", ["caption", "video_sha256", "prompt_sha256"])
def test_an_import_line_whose_hashes_or_caption_are_not_text_is_skipped_naming_it(
    capsys, tmp_path: Path, synthetic_video: Path, field: str
):
    _record(tmp_path / "a", synthetic_video, ["SA"])
    lines = _export(capsys, tmp_path / "a", tmp_path / "e" / "judgments.jsonl")
    _judgment_lines(lines)[0]["judgment"][field] = 12345
    file = _write(tmp_path / "e" / "judgments.jsonl", lines)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, err = _cli(capsys, "cache", "import", str(file), "--cache", str(tmp_path / "t"))
    assert code == 0 and "Traceback" not in err, err
    shown = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert any(f"{file}:2" in m and f"'{field}'" in m for m in shown), shown
    assert len(JudgmentCache(tmp_path / "t")) == 0
