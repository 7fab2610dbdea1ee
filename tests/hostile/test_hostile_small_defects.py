"""Smaller defects of round 5: no .pytest_cache without the cacheprovider, plurals, stand-in
judges and judge servers named in compare/agree/leaderboard outputs, canary tolerances."""

from __future__ import annotations

import pytest
from pytester_kit import Kit

from pytest_phyjudge.plugin.options import Options

pytest_plugins = "pytester"

# --------------------------------------------------------------------------- no cacheprovider

#: A stand-in judge that the judgment cache records (a scripted judge is never recorded): the
#: scripted replies under an identity of another kind, for this test's run only.
RECORDED_CONFTEST = """
from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge.engine.judgment import JudgeIdentity

def pytest_phyjudge_make_judge(config):
    judge = ScriptedJudge({"*": 4}, name="recorded-stand-in")
    judge.identity = JudgeIdentity(kind="local", adapter="test/recorded", adapter_sha256="w")
    return judge
"""


def _suite(kit: Kit) -> None:
    kit.clip("ball")
    kit.suite(
        "videos: clips/{id}.mp4\ncases:\n  - {id: ball, prompt: A ball falls., laws: [gravity]}\n"
    )


def test_without_the_cacheprovider_nothing_is_written_under_pytest_cache(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    pytester.makeconftest(RECORDED_CONFTEST)
    _suite(kit)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert not (pytester.path / ".pytest_cache").exists()
    result.stdout.fnmatch_lines(
        ["*judgment cache: off (-p no:cacheprovider)*--phyjudge-cache DIR*"]
    )
    # With the cacheprovider the same run records under pytest's cache, as before.
    kept = pytester.runpytest()
    kept.assert_outcomes(passed=4)
    assert list((pytester.path / ".pytest_cache").rglob("judgments.sqlite3"))
    kept.stdout.fnmatch_lines(["*judgment cache (use, *): 0 hits, 4 misses*"])


def test_without_the_cacheprovider_a_named_cache_is_kept(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "judgments"
    config = pytester.parseconfigure("-p", "no:cacheprovider", "--phyjudge-cache", str(folder))
    assert Options.from_config(config).judge.cache_dir == folder
    bare = pytester.parseconfigure("-p", "no:cacheprovider")
    assert Options.from_config(bare).judge.cache_dir is None


@pytest.mark.parametrize("mode", ["only", "refresh"])
def test_without_the_cacheprovider_a_mode_that_needs_the_cache_names_the_flag(
    pytester: pytest.Pytester, kit: Kit, mode: str
) -> None:
    kit.conftest()
    _suite(kit)
    result = pytester.runpytest("-p", "no:cacheprovider", "--phyjudge-cache-mode", mode)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--phyjudge-cache-mode {mode}*--phyjudge-cache DIR*"])
    assert not (pytester.path / ".pytest_cache").exists()
