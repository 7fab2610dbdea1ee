"""The one judge factory: the same judge for pytest and the CLI, and a replay that needs
neither the adapter nor a server (the judge's identity comes from the cache or a file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytester_kit import Kit

from pytest_phyjudge import JudgeIdentity, JudgeLoadError, ScriptedJudge
from pytest_phyjudge.cli.main import main
from pytest_phyjudge.engine.rubric import load_rubric
from pytest_phyjudge.judges.cache.judge import CachedJudge
from pytest_phyjudge.judges.cache.record import JudgeRecord, read_identity_file
from pytest_phyjudge.judges.cache.store import JudgmentCache
from pytest_phyjudge.judges.factory import ReplayPlan, build_judge, plan_judge_for
from pytest_phyjudge.judges.settings import JudgeSettings

CAPTION = "A ball falls onto a table."
#: Test-only identities: recorded judges that are plainly not PhyJudge-9B.
RECORDED = JudgeIdentity(kind="local", adapter="example/recorded-judge", adapter_sha256="a1")
OTHER = JudgeIdentity(kind="local", adapter="example/other-judge", adapter_sha256="b2")


def _record(cache_dir: Path, video: Path, identity: JudgeIdentity, score: int) -> None:
    """Record judgments of ``identity`` into ``cache_dir`` as a GPU box would."""
    scripted = ScriptedJudge({"*": score})
    scripted.identity = identity  # the record of a judge that ran elsewhere
    settings = {"fps": 2.0, "max_pixels": 360 * 640, "max_new_tokens": 64, "scoring": "greedy"}
    judge = CachedJudge(
        identity=identity,
        rubric=load_rubric(None),
        settings=settings,
        cache=JudgmentCache(cache_dir),
        load=lambda: scripted,
    )
    with judge:
        outcomes = judge.score_many(video, CAPTION, ["SA", "gravity"])
    assert all(o.score == score for o in outcomes.values())


def _suite(kit: Kit, video: Path, min_score: int = 3) -> None:
    """One case judging ``video`` on SA and gravity."""
    kit.suite(
        f"videos: {video}\n"
        f"defaults: {{metrics: [SA], min_score: {min_score}}}\n"
        "cases:\n"
        f"  - {{id: drop, prompt: {CAPTION}, laws: [gravity]}}\n",
        name="replay",
    )


def test_cache_records_the_judge_it_holds(tmp_path: Path, synthetic_video: Path) -> None:
    _record(tmp_path / "c", synthetic_video, RECORDED, 4)
    _record(tmp_path / "c", synthetic_video, RECORDED, 4)
    cache = JudgmentCache(tmp_path / "c")
    (record,) = cache.judges()
    assert record.identity == RECORDED
    assert record.rubric == load_rubric(None)
    cache.close()


def test_replay_takes_the_only_recorded_judge(
    pytester: pytest.Pytester, kit: Kit, tmp_path: Path, synthetic_video: Path
) -> None:
    cache = tmp_path / "judgments"
    _record(cache, synthetic_video, RECORDED, 4)
    _suite(kit, synthetic_video)
    result = pytester.runpytest_subprocess(
        "--phyjudge-cache", str(cache), "--phyjudge-cache-mode", "only", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "phyjudge: replaying judgments recorded in *judgments (cache mode only)*",
            "*judgment cache (only, *): 2 hits, 0 misses*",
        ]
    )


def test_replay_with_several_judges_names_them(
    pytester: pytest.Pytester, kit: Kit, tmp_path: Path, synthetic_video: Path
) -> None:
    cache = tmp_path / "judgments"
    _record(cache, synthetic_video, RECORDED, 4)
    _record(cache, synthetic_video, OTHER, 1)
    _suite(kit, synthetic_video)
    result = pytester.runpytest_subprocess(
        "--phyjudge-cache", str(cache), "--phyjudge-cache-mode", "only"
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*holds judgments of 2 judges, and this run names none of them*",
            "*example/other-judge*",
            "*example/recorded-judge*",
            "*--phyjudge-identity FILE*",
        ]
    )
    # Naming one by its adapter picks it.
    named = pytester.runpytest_subprocess(
        "--phyjudge-cache",
        str(cache),
        "--phyjudge-cache-mode",
        "only",
        "--phyjudge-adapter",
        "example/other-judge",
    )
    named.assert_outcomes(failed=2)  # the other judge gave 1s
    named.stdout.fnmatch_lines(["*scored SA 1, below its minimum of 3*"])


def test_export_writes_identity_files_and_import_restores_them(
    capsys: pytest.CaptureFixture[str],
    pytester: pytest.Pytester,
    kit: Kit,
    tmp_path: Path,
    synthetic_video: Path,
) -> None:
    gpu_cache, ci_cache = tmp_path / "gpu", tmp_path / "ci"
    _record(gpu_cache, synthetic_video, RECORDED, 4)
    _record(gpu_cache, synthetic_video, OTHER, 2)
    export = tmp_path / "judgments.jsonl"
    assert main(["cache", "export", str(export), "--cache", str(gpu_cache)]) == 0
    err = capsys.readouterr().err
    identities = sorted(tmp_path.glob("judgments.identity-*.json"))
    assert len(identities) == 2 and all(str(p) in err for p in identities)
    records = {read_identity_file(p).identity.adapter: p for p in identities}
    assert set(records) == {RECORDED.adapter, OTHER.adapter}

    assert main(["cache", "import", str(export), "--cache", str(ci_cache)]) == 0
    assert main(["cache", "info", "--cache", str(ci_cache)]) == 0
    out = capsys.readouterr().out
    assert "4 judgments" in out and RECORDED.adapter in out and OTHER.adapter in out

    _suite(kit, synthetic_video)
    result = pytester.runpytest_subprocess(
        "--phyjudge-cache",
        str(ci_cache),
        "--phyjudge-cache-mode",
        "only",
        "--phyjudge-identity",
        str(records[RECORDED.adapter]),
    )
    result.assert_outcomes(passed=2)


def test_an_identity_file_only_replays(tmp_path: Path, synthetic_video: Path) -> None:
    file = tmp_path / "judge.json"
    file.write_text(json.dumps(JudgeRecord(RECORDED, load_rubric(None)).to_dict()))
    settings = JudgeSettings(identity_file=file, cache_dir=tmp_path / "c", cache_mode="only")
    plan = plan_judge_for(settings)
    assert isinstance(plan, ReplayPlan) and plan.identity == RECORDED
    with pytest.raises(JudgeLoadError, match="can only replay"):
        build_judge(settings.replace(cache_mode="use"))


@pytest.mark.parametrize(
    "content, words",
    [
        ("{not json", "is not valid JSON"),
        ('{"format": "something-else"}', "is not a judge identity"),
        ('{"format": "pytest-phyjudge-judge", "judge": {}}', "damaged judge identity"),
    ],
)
def test_a_bad_identity_file_is_a_clear_error(tmp_path: Path, content: str, words: str) -> None:
    file = tmp_path / "judge.json"
    file.write_text(content)
    settings = JudgeSettings(identity_file=file, cache_dir=tmp_path / "c", cache_mode="only")
    with pytest.raises(JudgeLoadError, match=words) as caught:
        build_judge(settings)
    assert str(file) in str(caught.value)


def test_a_hook_returning_none_leaves_the_default_judge(
    pytester: pytest.Pytester, kit: Kit, tmp_path: Path, synthetic_video: Path
) -> None:
    """The hookspec allows None ("no opinion"): the default judge is used, here a replay."""
    cache = tmp_path / "judgments"
    _record(cache, synthetic_video, RECORDED, 4)
    pytester.makeconftest("def pytest_phyjudge_make_judge(config):\n    return None\n")
    _suite(kit, synthetic_video)
    result = pytester.runpytest_subprocess(
        "--phyjudge-cache", str(cache), "--phyjudge-cache-mode", "only"
    )
    result.assert_outcomes(passed=2)
    assert "AssertionError" not in result.stdout.str()


def test_a_factory_returning_a_non_judge_is_named(tmp_path: Path) -> None:
    settings = JudgeSettings(judge="builtins:object", cache_dir=None)
    with pytest.raises(JudgeLoadError, match=r"--phyjudge-judge builtins:object returned object"):
        build_judge(settings)


def test_settings_refuse_servers_and_a_judge_together() -> None:
    from pytest_phyjudge import InputError

    with pytest.raises(InputError, match="both choose the judge"):
        JudgeSettings(url=("http://127.0.0.1:9",), judge="tiny")


@pytest.mark.local
def test_tiny_judge_with_the_cache_off(
    pytester: pytest.Pytester, kit: Kit, synthetic_video: Path
) -> None:
    _suite(kit, synthetic_video, min_score=1)
    result = pytester.runpytest_subprocess(
        "--phyjudge-judge",
        "tiny",
        "--phyjudge-cache-mode",
        "off",
        "--phyjudge-scoring",
        "distribution",
        timeout=600,
    )
    result.assert_outcomes(passed=2)
    assert "Cannot import" not in result.stdout.str()


@pytest.mark.local
def test_cli_dry_run_with_the_tiny_judge(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, synthetic_video: Path, monkeypatch
) -> None:
    """``phyjudge score --judge tiny --print-prompt`` runs on a CPU, as the README shows, and
    the format-trained tiny judge's greedy reply parses."""
    monkeypatch.chdir(tmp_path)
    video = ["--video", str(synthetic_video), "--caption", CAPTION, "--law", "gravity"]
    code = main(["score", *video, "--judge", "tiny", "--print-prompt"])
    out = capsys.readouterr().out
    assert "=== system ===" in out and CAPTION in out
    assert code == 0
    line = json.loads(out.strip().splitlines()[-1])
    assert line["key"] == "gravity" and line["raw"] == f'{{"gravity": {line["score"]}}}'

    # Built under the temp folder: nothing lands in the current folder.
    assert not (tmp_path / ".pytest_cache").exists()
