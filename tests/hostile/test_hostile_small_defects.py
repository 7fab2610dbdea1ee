"""Smaller defects of round 5: no .pytest_cache without the cacheprovider, plurals, stand-in
judges and judge servers named in compare/agree/leaderboard outputs, canary tolerances."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import test_canary_plugin as canary_plugin
from pytester_kit import Kit

from pytest_phyjudge._escape import markdown_text
from pytest_phyjudge._words import counted
from pytest_phyjudge.cli.main import main
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.plugin.options import Options
from pytest_phyjudge.regression.sampling import headline
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.reporting.tables import tiny_run_line

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
    config = pytester.parseconfig("-p", "no:cacheprovider", "--phyjudge-cache", str(folder))
    assert Options.from_config(config).judge.cache_dir == folder
    bare = pytester.parseconfig("-p", "no:cacheprovider")
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


# --------------------------------------------------------------------------- plurals


@pytest.mark.parametrize(
    ("count", "noun", "said"),
    [
        (1, "video", "1 video"),
        (0, "video", "0 videos"),
        (2, "entry", "2 entries"),
        (2, "day", "2 days"),
        (2, "miss", "2 misses"),
        (3, "axis", "3 axes"),
        (1, "axis", "1 axis"),
        (2, "judge call", "2 judge calls"),
    ],
)
def test_counted_agrees_with_its_count(count: int, noun: str, said: str) -> None:
    assert counted(count, noun) == said


def test_one_of_a_thing_is_singular_in_the_main_messages(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    pytester.makeconftest(RECORDED_CONFTEST)
    kit.clip("ball")
    kit.suite(
        "videos: clips/{id}.mp4\n"
        "cases:\n  - {id: ball, prompt: A ball falls., metrics: [SA], min_score: 5}\n"
    )
    result = pytester.runpytest("--phyjudge-report", "out.json", "--phyjudge-cache", "c")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*judgment cache (use, *): 0 hits, 1 miss, *", "phyjudge report: *out.json (1 video)"]
    )
    tiny = Check("SA", 3, "A ball falls.", None, judge=JudgeIdentity(kind="tiny", adapter="t"))
    line = tiny_run_line([tiny], enforced=False)
    assert line is not None and "0 of 1 verdict would fail" in line
    assert headline("SA", {"n": 1, "passed": True}).endswith("over 1 sample")


def test_one_of_a_thing_is_singular_on_the_command_line(
    pytester: pytest.Pytester, kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makeconftest(RECORDED_CONFTEST)
    kit.clip("ball")
    kit.suite(
        "videos: clips/{id}.mp4\n"
        "cases:\n  - {id: ball, prompt: A ball falls., metrics: [SA], min_score: 1}\n"
    )
    pytester.runpytest("--phyjudge-report", "out.json", "--phyjudge-cache", "c").assert_outcomes(
        passed=1
    )
    capsys.readouterr()
    assert main(["cache", "info", "--cache", str(pytester.path / "c")]) == 0
    assert ": 1 judgment\n" in capsys.readouterr().out
    page = pytester.path / "page"
    assert main(["report", str(pytester.path / "out.json"), "--html", str(page)]) == 0
    assert "(1 case)" in capsys.readouterr().err


# --------------------------------------------------------------------------- stand-in judges


def _scores(path: Path, kind: str = "local", adapter: str = "j", **meta: Any) -> Path:
    """A scores.json of eight cases (SA 3, gravity 4) judged by ``kind``/``adapter``."""
    results = [
        {
            "video": f"c{i}",
            "prompt": f"prompt {i}",
            "physical_laws": ["gravity"],
            "SA": 3,
            "physical": {"laws": {"gravity": {"score": 4, "status": "scored"}}},
        }
        for i in range(8)
    ]
    document = {"meta": {"judge": {"kind": kind, "adapter": adapter}, **meta}, "results": results}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", ["compare", "agree", "leaderboard"])
@pytest.mark.parametrize("kind", ["tiny", "scripted"])
def test_a_stand_in_judge_is_named_in_the_markdown_and_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, kind: str
) -> None:
    real = _scores(tmp_path / "real.json")
    fake = _scores(tmp_path / "fake_[x](http:evil)@team.json", kind=kind)
    code, out, _ = _run(capsys, command, str(real), str(fake), "--format", "markdown")
    assert code == 0
    lines = out.splitlines()
    warned = [line for line in lines if "stand-in" in line]
    assert len(warned) == 1 and warned[0].startswith("> ") and "MEANINGLESS" in warned[0]
    assert lines.index(warned[0]) < next(i for i, line in enumerate(lines) if line.startswith("|"))
    # The file's name is shown as _escape makes it inert (no link, no @mention).
    assert markdown_text(str(fake)) in warned[0] and str(fake) not in warned[0]
    code, out, _ = _run(capsys, command, str(real), str(fake), "--format", "json")
    found = json.loads(out)["stand_in_judges"]
    assert [(f["path"], f["kind"]) for f in found] == [(str(fake), kind)]
    # A real judge's files: no note, an empty list.
    code, out, _ = _run(capsys, command, str(real), str(real), "--format", "markdown")
    assert "stand-in" not in out
    code, out, _ = _run(capsys, command, str(real), str(real), "--format", "json")
    assert json.loads(out)["stand_in_judges"] == []


# --------------------------------------------------------------------------- judge servers


def _served(path: Path, fingerprint: str, model: str = "phyjudge") -> Path:
    server = {"model": model, "system_fingerprint": fingerprint}
    return _scores(path, kind="remote", judge_server=server)


def test_compare_says_when_the_judge_server_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _served(tmp_path / "a.json", "fp_one")
    b = _served(tmp_path / "b.json", "fp_two")
    code, out, _ = _run(capsys, "compare", str(a), str(b))
    assert code == 0
    assert "fp_one" in out and "fp_two" in out and "judge's, not the generator's" in out
    code, out, _ = _run(capsys, "compare", str(a), str(b), "--format", "markdown")
    notes = [line for line in out.splitlines() if line.startswith("> ")]
    assert len(notes) == 1 and "fp_one" in notes[0] and "fp_two" in notes[0]
    code, out, _ = _run(capsys, "compare", str(a), str(b), "--format", "json")
    assert any("fp_two" in note for note in json.loads(out)["notes"])
    # Another served model name says so too; the same server, or none known, says nothing.
    other = _served(tmp_path / "c.json", "fp_one", model="phyjudge-v2")
    code, out, _ = _run(capsys, "compare", str(a), str(other))
    assert "phyjudge-v2" in out
    for first, second in [(a, a), (a, _scores(tmp_path / "unknown.json", kind="remote"))]:
        code, out, _ = _run(capsys, "compare", str(first), str(second), "--format", "json")
        assert json.loads(out)["notes"] == []


def test_compare_says_when_the_judges_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _scores(tmp_path / "a.json", adapter="judge-one")
    b = _scores(tmp_path / "b.json", adapter="judge-two")
    code, out, _ = _run(capsys, "compare", str(a), str(b), "--format", "markdown")
    assert code == 0 and "different judges" in out and "judge-two" in out


# --------------------------------------------------------------------------- canary tolerances

LOOSE = {"canary-max-disagree": "1", "canary-max-mean-diff": "4", "canary-max-tv": "1"}


@pytest.mark.parametrize("where", ["flags", "ini"])
def test_the_pytest_canary_check_takes_the_commands_tolerances(
    pytester: pytest.Pytester, kit: Kit, where: str
) -> None:
    kit.pytester.makeconftest(canary_plugin.CONFTEST)
    kit.suite(canary_plugin.SUITE)
    for name in ("fall", "slide", "roll"):
        kit.clip(name)
    (pytester.path / "gravity.txt").write_text("5")  # recorded 2: gravity drifts
    canaries = canary_plugin.record_canaries(pytester.path)
    args = ["-p", "no:randomly", "--phyjudge-sheets", "off", "--phyjudge-canaries", str(canaries)]
    # The default tolerances fail the drift ...
    pytester.runpytest(*args).assert_outcomes(failed=canary_plugin.ITEMS)
    # ... tolerances as loose as the scale allows let it pass, from the flags or the ini file.
    if where == "flags":
        args += [f"--phyjudge-{name}={value}" for name, value in LOOSE.items()]
    else:
        lines = [f"phyjudge_{name.replace('-', '_')} = {value}" for name, value in LOOSE.items()]
        pytester.makeini("[pytest]\n" + "\n".join(lines) + "\n")
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=canary_plugin.ITEMS)
    result.stdout.fnmatch_lines(["canaries PASSED*"])


def test_a_bad_canary_tolerance_is_refused_on_both_surfaces(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    result = pytester.runpytest("--phyjudge-canary-max-tv", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--phyjudge-canary-max-tv*a number from 0 to 1*"])
    with pytest.raises(SystemExit):
        main(["canary", "check", "c.json", "--max-tv", "2"])
    assert "--max-tv" in capsys.readouterr().err


def test_a_comparison_of_one_axis_says_axis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = []
    for name, score in (("a", 3), ("b", 4)):
        rows = [{"video": f"c{i}", "prompt": "p", "SA": score} for i in range(4)]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"meta": {}, "results": rows}), encoding="utf-8")
        files.append(str(path))
    code, out, _ = _run(capsys, "compare", *files)
    assert code == 0 and "over the 1 axis by" in out
