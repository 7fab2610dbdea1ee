"""The plugin's surface: options and ini, lazy judge loading, judge errors, the tiny judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytester_kit import Kit

from pytest_phyjudge.engine.adapter import DEFAULT_ADAPTER

#: A module of judge factories that log what happens to them in ``factory_log.jsonl``.
FACTORIES = """
import json
from pytest_phyjudge import JudgeLoadError, ScriptedJudge

def log(event):
    with open("factory_log.jsonl", "a") as fh:
        fh.write(json.dumps(event) + "\\n")

class LoggedJudge(ScriptedJudge):
    def close(self):
        log("closed")

def make(config):
    log("made")
    return LoggedJudge({"*": 4}, name="from-factory")

def make_without_config():
    log("made")
    return LoggedJudge({"*": 2}, name="no-config")

def unavailable(config):
    log("made")
    raise JudgeLoadError("The adapter is not in the cache. Download it first.")

def broken(config):
    log("made")
    return {}["no such key"]

def not_a_judge(config):
    return "a string"
"""

SUITE = """
videos: clips/{id}.mp4
defaults: {metrics: [SA]}
cases:
  - {id: fall, prompt: A ball falls., laws: [gravity]}
  - {id: slide, prompt: A box slides., laws: [inertia]}
"""


def setup(kit: Kit) -> None:
    """The logging factories, the suite and its stand-in clips, and one plain test."""
    kit.module("judges", FACTORIES)
    kit.suite(SUITE)
    kit.pytester.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    for name in ("fall", "slide"):
        kit.clip(name)


def factory_log(pytester: pytest.Pytester) -> list[str]:
    path = pytester.path / "factory_log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --------------------------------------------------------------------------- options


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "physics assertions judged by PhyJudge (pytest-phyjudge):",
            "  --phyjudge-adapter=ID_OR_DIR",
            f"*{DEFAULT_ADAPTER}*",
            "  --phyjudge-revision=REV",
            "  --phyjudge-judge=SPEC",  # the judge's settings first, in the option table's order
            "  --phyjudge-device=DEVICE",
            "  --phyjudge-dtype=DTYPE",
            "  --phyjudge-min-score=N",
            "  --phyjudge-report=PATH",
            "  --phyjudge-regenerate*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["  phyjudge_min_score (string):*", "  phyjudge_suite_glob (args):*"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--phyjudge-min-score", "7"], "'7' is not a minimum score"),
        (["--phyjudge-min-score", "three"], "'three' is not a minimum score"),
        (["--phyjudge-judge", "no colon"], "'no colon' names no judge"),
        (["--phyjudge-device", "gpu0"], "'gpu0' is not a device"),
        (["--phyjudge-dtype", "int8"], "'int8' is not a dtype"),
    ],
)
def test_bad_option_values_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nphyjudge_min_score = 9\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option phyjudge_min_score: '9' is not a minimum score*"])


def test_ini_values_and_command_line_precedence(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    pytester.makeini("[pytest]\nphyjudge_judge = judges:make\nphyjudge_min_score = 5\n")
    # From the ini: the factory judges 4 < 5, so all four items fail.
    pytester.runpytest("basics.phyjudge.yaml").assert_outcomes(failed=4)
    # The command line wins over the ini.
    result = pytester.runpytest("basics.phyjudge.yaml", "--phyjudge-min-score", "4")
    result.assert_outcomes(passed=4)
    result = pytester.runpytest(
        "basics.phyjudge.yaml", "--phyjudge-judge", "judges:make_without_config"
    )
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["judge: no-config (scripted)"])


def test_header_names_the_judge(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--phyjudge-min-score", "4")
    result.stdout.fnmatch_lines(
        [f"phyjudge: judge {DEFAULT_ADAPTER}, loaded on first use; min score 4"]
    )
    result = pytester.runpytest("--phyjudge-judge", "tiny")
    result.stdout.fnmatch_lines(["phyjudge: !!! *TINY TEST judge, SCORES ARE MEANINGLESS*"])


def test_header_names_a_hooks_judge_not_the_default(pytester: pytest.Pytester) -> None:
    """A conftest's pytest_phyjudge_make_judge hook supplies the judge: the header says so and
    never claims PhyJudge-9B; --phyjudge-judge wins over the hook, and the header follows."""
    pytester.makeconftest(
        "from pytest_phyjudge import ScriptedJudge\n"
        "def pytest_phyjudge_make_judge(config):\n"
        "    return ScriptedJudge(lambda *a: 3, name='mine')\n"
    )
    result = pytester.runpytest("--phyjudge-min-score", "4")
    result.stdout.fnmatch_lines(
        [
            "phyjudge: judge from the pytest_phyjudge_make_judge hook in conftest.py, made on "
            f"first use and named in the summary (if the hook returns None: judge "
            f"{DEFAULT_ADAPTER}, loaded on first use); min score 4"
        ]
    )
    assert f"phyjudge: judge {DEFAULT_ADAPTER}" not in result.stdout.str()
    result = pytester.runpytest("--phyjudge-judge", "tiny")
    result.stdout.fnmatch_lines(["phyjudge: !!! *TINY TEST judge*"])
    assert "make_judge hook" not in result.stdout.str()


# --------------------------------------------------------------------------- the judge's life


def test_no_judged_test_never_makes_the_judge(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    result = pytester.runpytest("--phyjudge-judge", "judges:make", "test_plain.py")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("--phyjudge-judge", "judges:make", "-k", "plain")
    result.assert_outcomes(passed=1)
    assert factory_log(pytester) == []
    assert "phyjudge ===" not in result.stdout.str()


def test_the_judge_is_made_once_and_closed(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    result = pytester.runpytest("--phyjudge-judge", "judges:make")
    result.assert_outcomes(passed=5)
    assert factory_log(pytester) == ["made", "closed"]


def test_command_line_judge_wins_over_the_hook(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    kit.conftest({"*": 1}, name="from-hook")
    result = pytester.runpytest("basics.phyjudge.yaml")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["judge: from-hook (scripted)"])
    result = pytester.runpytest("basics.phyjudge.yaml", "--phyjudge-judge", "judges:make")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["judge: from-factory (scripted)"])


def test_load_error_fails_items_with_its_message_once(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    result = pytester.runpytest("--phyjudge-judge", "judges:unavailable")
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines(
        [
            "JudgeLoadError: The adapter is not in the cache. Download it first.",
            "  at basics.phyjudge.yaml:4: case 'fall', axis SA, min_score 3",
        ]
    )
    out = result.stdout.str()
    assert "Traceback" not in out
    assert factory_log(pytester) == ["made"]  # not retried for every item
    # Said in full once; the other items point to the first.
    # Failure sections only: under CI=true the short summary repeats whole messages.
    bodies = [line for line in out.splitlines() if line.startswith("JudgeLoadError: ")]
    assert sum("Download it first." in line for line in bodies) == 1
    assert sum("basics.phyjudge.yaml::fall::SA shows why" in line for line in bodies) == 3, out


def test_factory_bugs_become_load_errors(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    result = pytester.runpytest("--phyjudge-judge", "judges:broken", "-k", "fall and SA")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "JudgeLoadError: The judge could not be made (--phyjudge-judge judges:broken): "
            "KeyError: 'no such key'.",
            '  File "*judges.py", line *, in broken',
        ]
    )
    result = pytester.runpytest("--phyjudge-judge", "judges:not_a_judge", "-k", "fall and SA")
    result.stdout.fnmatch_lines(["*returned str, not a pytest_phyjudge.Judge*"])
    result = pytester.runpytest("--phyjudge-judge", "nowhere:make", "-k", "fall and SA")
    result.stdout.fnmatch_lines(["*Cannot import the judge factory 'nowhere:make'*pythonpath*"])


def test_phyjudge_fixture(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    pytester.makepyfile(
        test_fixture="""
        def test_judge(phyjudge):
            assert phyjudge.identity.adapter == "from-factory"
        """
    )
    result = pytester.runpytest("--phyjudge-judge", "judges:make", "test_fixture.py")
    result.assert_outcomes(passed=1)
    assert factory_log(pytester) == ["made", "closed"]
    result = pytester.runpytest("--phyjudge-judge", "judges:unavailable", "test_fixture.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["The adapter is not in the cache. Download it first."])
    assert "Traceback" not in result.stdout.str()


def test_helpers_outside_a_pytest_session(pytester: pytest.Pytester) -> None:
    script = pytester.makepyfile(
        run="""
        from pytest_phyjudge import PhyJudgeError, assert_physics
        try:
            assert_physics("clip.mp4", "x", law="gravity")
        except PhyJudgeError as exc:
            print("ERROR:", exc)
        """
    )
    result = pytester.run(__import__("sys").executable, str(script))
    result.stdout.fnmatch_lines(["ERROR: assert_physics() found no judge*judge=load_judge()*"])


# --------------------------------------------------------------------------- the tiny judge


@pytest.fixture(scope="session")
def shared_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pytest cache dir for the tiny-judge runs, so the tiny judge is built once."""
    return tmp_path_factory.mktemp("tiny-cache")


@pytest.mark.local
def test_tiny_judge_runs_a_suite_honestly(
    pytester: pytest.Pytester, kit: Kit, synthetic_video: Path, shared_cache_dir: Path
) -> None:
    kit.clip("fall", synthetic_video.read_bytes())
    kit.suite(
        "videos: clips/{id}.mp4\ncases: [{id: fall, prompt: A ball falls., laws: [gravity]}]",
        name="tiny",
    )
    # In a subprocess: the real path imports torch and transformers, which an in-process
    # run would import (and pytester then forget) inside this process.
    result = pytester.runpytest_subprocess(
        "--phyjudge-judge",
        "tiny",
        "-o",
        f"cache_dir={shared_cache_dir}",
        "--phyjudge-report",
        "out/scores.json",
        "-p",
        "no:warnings",
    )
    outcomes = result.parseoutcomes()
    # Whatever the random model replies, each item passes or fails; nothing errors.
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 4, outcomes
    result.stdout.fnmatch_lines(
        [
            "phyjudge: !!! *SCORES ARE MEANINGLESS*",
            "judge: * (tiny)  (a tiny test stand-in for PhyJudge: THESE SCORES ARE MEANINGLESS)",
            "axis*domain*items*passed*failed*mean*min",
            "gravity*solid*1*",
        ]
    )
    data = json.loads((pytester.path / "out" / "scores.json").read_text())
    assert data["meta"]["judge"]["kind"] == "tiny"
    assert data["meta"]["scores_meaningless"] is True
    assert data["meta"]["settings"]["judge"]["fps"] == 2.0
    (video,) = data["results"]
    for axis, check in video["checks"].items():
        # An unparseable reply is a failure that keeps the raw reply.
        assert check["passed"] == (check["score"] is not None and check["score"] >= 3), axis
        assert check["raw"] is not None or "raw reply" in check["error"]
    assert "Traceback" not in result.stdout.str()


def test_xdist_workers_do_not_each_load_the_model(pytester: pytest.Pytester, kit: Kit) -> None:
    """On a pytest-xdist worker the in-process judge is refused (it would be one 24 GB copy
    per worker) unless --phyjudge-per-worker-model; replay and the tiny judge stay allowed."""
    adapter = pytester.path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "b"}))
    (adapter / "adapter_model.safetensors").write_bytes(b"{}")
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_configure(config):
            config.workerinput = {"workerid": "gw3"}  # what pytest-xdist sets on a worker
        """
    )
    kit.suite(SUITE, name="one")
    kit.clip("fall", b"not decoded before the refusal")
    result = pytester.runpytest(
        "--phyjudge-adapter", str(adapter), "-k", "fall and SA", "-W", "ignore::UserWarning"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*xdist worker (gw3) would load its own copy*-n 0*"])
    result = pytester.runpytest(
        "--phyjudge-adapter",
        str(adapter),
        "-k",
        "fall and SA",
        "-W",
        "ignore::UserWarning",
        "--phyjudge-per-worker-model",
    )
    result.assert_outcomes(failed=1)
    result.stdout.no_fnmatch_line("*would load its own copy*")
