"""YAML suites as pytest items: ids, keywords, marks, shared judgments, generators, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytester_kit import Kit

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
HUMANEVAL = SHARED / "phyground" / "humaneval_prompts.json"

SUITE = """
suite: basics
defaults:
  metrics: [SA]
videos: clips/{id}.mp4
cases:
  - id: ball_ramp
    prompt: A ball rolls down a ramp and knocks over a block.
    laws: [gravity, collision]
    min_score: {gravity: 4}
    marks: [slow]
  - id: mirror
    prompt: A cat looks into a mirror.
    laws: [reflection]
    marks: [{xfail: known bad generator}]
"""


def scripted(kit: Kit, replies: dict | None = None) -> None:
    """The scripted conftest judge ``scripted-for-tests`` (it logs its calls), and the
    ``slow`` mark registered."""
    kit.conftest(replies, name="scripted-for-tests")
    kit.pytester.makeini("[pytest]\nmarkers =\n    slow: slow cases\n")


# --------------------------------------------------------------------------- collection


def test_items_are_named_file_case_axis(pytester: pytest.Pytester, kit: Kit) -> None:
    scripted(kit)
    kit.suite(SUITE)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "basics.phyjudge.yaml::ball_ramp::SA",
            "basics.phyjudge.yaml::ball_ramp::gravity",
            "basics.phyjudge.yaml::ball_ramp::collision",
            "basics.phyjudge.yaml::mirror::SA",
            "basics.phyjudge.yaml::mirror::reflection",
            "5 tests collected*",
        ]
    )


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        (["-k", "ball_ramp"], ["ball_ramp::SA", "ball_ramp::gravity", "ball_ramp::collision"]),
        (["-k", "gravity"], ["ball_ramp::gravity"]),
        (["-k", "solid"], ["ball_ramp::gravity", "ball_ramp::collision"]),
        (["-k", "optics or general"], ["ball_ramp::SA", "mirror::SA", "mirror::reflection"]),
        (["-k", "mirror and not SA"], ["mirror::reflection"]),
        (["-m", "slow"], ["ball_ramp::SA", "ball_ramp::gravity", "ball_ramp::collision"]),
        (["-m", "phyjudge and not slow"], ["mirror::SA", "mirror::reflection"]),
        (["-k", "phyjudge"], ["ball_ramp::SA", "ball_ramp::gravity", "ball_ramp::collision"]),
    ],
)
def test_keywords_and_marks_select(
    pytester: pytest.Pytester, kit: Kit, select: list[str], expected: list[str]
) -> None:
    scripted(kit)
    kit.suite(SUITE)
    result = pytester.runpytest("--collect-only", "-q", *select)
    ids = [line for line in result.outlines if "::" in line]
    if select == ["-k", "phyjudge"]:  # every item carries the keyword
        assert len(ids) == 5
        return
    assert ids == [f"basics.phyjudge.yaml::{name}" for name in expected]


@pytest.mark.skipif(not HUMANEVAL.is_file(), reason=f"no PhyGround prompt set at {HUMANEVAL}")
def test_phyground_prompt_set_collects_every_prompt(pytester: pytest.Pytester, kit: Kit) -> None:
    prompts = json.loads(HUMANEVAL.read_text())["prompts"]
    kit.suite(f"prompts: {HUMANEVAL}\nvideos: videos/{{id}}.mp4\n", name="humaneval")
    result = pytester.runpytest("--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert len(prompts) == 250
    assert len({i.split("::")[1] for i in ids}) == 250
    assert len(ids) == sum(3 + len(p["physical_laws"]) for p in prompts)

    reflection = [p["video"] for p in prompts if "reflection" in p["physical_laws"]]
    result = pytester.runpytest("--collect-only", "-q", "-k", "reflection")
    ids = [line for line in result.outlines if "::" in line]
    assert len(reflection) == 17
    assert ids == [f"humaneval.phyjudge.yaml::{v}::reflection" for v in reflection]


def test_suite_glob_ini_option(pytester: pytest.Pytester, kit: Kit) -> None:
    scripted(kit)
    pytester.makeini("[pytest]\nphyjudge_suite_glob = *.judge.yml\n")
    pytester.makefile(".judge.yml", mine="cases: [{id: a, prompt: p, laws: [gravity], video: v}]")
    kit.suite(SUITE)  # *.phyjudge.yaml: not collected under this glob
    result = pytester.runpytest("--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [f"mine.judge.yml::a::{axis}" for axis in ("SA", "PTV", "persistence", "gravity")]


# --------------------------------------------------------------------------- running


def test_a_case_is_judged_once_and_its_items_pass_or_fail(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    scripted(kit, {"gravity": 3, "*": 4})
    kit.suite(SUITE)
    kit.clip("ball_ramp")
    kit.clip("mirror")
    result = pytester.runpytest("-rA")
    # gravity 3 < 4 fails; the mirror case is xfail, so its passing items XPASS.
    result.assert_outcomes(passed=2, failed=1, xpassed=2)
    result.stdout.fnmatch_lines(["FAILED basics.phyjudge.yaml::ball_ramp::gravity - *"])
    calls = kit.calls()
    # One score_many call per case, covering its axes in order; no axis judged twice.
    assert [c[2] for c in calls] == ["SA", "gravity", "collision", "SA", "reflection"]


def test_only_the_selected_axes_are_judged(pytester: pytest.Pytester, kit: Kit) -> None:
    scripted(kit)
    kit.suite(SUITE)
    kit.clip("ball_ramp")
    result = pytester.runpytest("-k", "ball_ramp and collision")
    result.assert_outcomes(passed=1)
    assert [c[2] for c in kit.calls()] == ["collision"]


def test_failure_shows_verdict_yaml_line_and_judgment(pytester: pytest.Pytester, kit: Kit) -> None:
    scripted(kit, {"gravity": 2, "*": 4})
    kit.suite(SUITE)
    kit.clip("ball_ramp")
    kit.clip("mirror")
    result = pytester.runpytest("-k", "gravity")
    result.stdout.fnmatch_lines(
        [
            "PhyJudge scored gravity 2, below its minimum of 4.",
            "  at basics.phyjudge.yaml:6: case 'ball_ramp', axis gravity, min_score 4",
            "     6 |   - id: ball_ramp",
            "  caption:     A ball rolls down a ramp and knocks over a block.",
            f"  video:       {pytester.path / 'clips' / 'ball_ramp.mp4'}",
            "  judge:       scripted-for-tests (scripted)",
            "  gravity (solid-body mechanics): 2 < min_score 4",
            '    raw reply:   {"gravity": 2}',
            "    checked:     q1: *",
            "FAILED basics.phyjudge.yaml::ball_ramp::gravity - PhyJudge scored gravity 2, *",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_unparseable_reply_fails_the_item_with_the_raw_reply(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    scripted(kit, {"reflection": "I think it looks fine", "*": 5})
    kit.suite(SUITE)
    kit.clip("mirror")
    result = pytester.runpytest("-k", "mirror", "-p", "no:randomly")
    # The case is xfail: the reflection item xfails, with the reply recorded.
    result.assert_outcomes(xfailed=1, xpassed=1)
    result = pytester.runpytest("-k", "mirror", "--runxfail")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "PhyJudge gave reflection no score: its reply holds none.",
            "    error:       JudgeOutputError: *",
            "                 raw reply: 'I think it looks fine'",
        ]
    )


def test_missing_video_fails_only_that_case(pytester: pytest.Pytester, kit: Kit) -> None:
    scripted(kit)
    kit.suite(SUITE)
    kit.clip("ball_ramp")  # no clip for mirror
    result = pytester.runpytest("--runxfail")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        [
            "VideoError: The video of case 'mirror' does not exist: *mirror.mp4. *",
            "  at basics.phyjudge.yaml:11: case 'mirror', axis SA, min_score 3",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_default_min_score_option_applies_to_suites(pytester: pytest.Pytester, kit: Kit) -> None:
    scripted(kit, {"*": 4})
    kit.suite(SUITE)
    kit.clip("ball_ramp")
    result = pytester.runpytest("-k", "ball_ramp", "--phyjudge-min-score", "5")
    # Every axis without its own threshold needs 5 now; gravity keeps its explicit 4.
    result.assert_outcomes(passed=1, failed=2)


# --------------------------------------------------------------------------- bad input

BAD_SUITES = {
    "yaml syntax": ("cases:\n  - id: a\n    prompt: [unclosed\n", 3, "not valid YAML"),
    "unknown key": (
        "cases:\n  - id: a\n    prompt: p\n    lwas: [gravity]\n    video: v.mp4\n",
        4,
        "Did you mean 'laws'?",
    ),
    "unknown law": (
        "cases:\n  - id: a\n    prompt: p\n    laws: [gravty]\n    video: v.mp4\n",
        4,
        "Did you mean 'gravity'?",
    ),
    "threshold above 5": (
        "defaults: {min_score: 6}\ncases: [{id: a, prompt: p, laws: [gravity], video: v}]\n",
        1,
        "thresholds are integers from 1 to 5",
    ),
    "threshold not an int": (
        "cases:\n  - id: a\n    prompt: p\n    laws: [gravity]\n    min_score: 3.5\n"
        "    video: v.mp4\n",
        5,
        "thresholds are integers from 1 to 5",
    ),
    "duplicate id": (
        "videos: v/{id}.mp4\ncases:\n  - {id: a, prompt: p, laws: [gravity]}\n"
        "  - {id: a, prompt: q, laws: [gravity]}\n",
        4,
        "duplicate case id 'a'",
    ),
    "empty cases": ("videos: v/{id}.mp4\ncases: []\n", 2, "empty cases"),
    "unknown placeholder": (
        "videos: v/{name}.mp4\ncases: [{id: a, prompt: p, laws: [gravity]}]\n",
        1,
        "{name}",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_SUITES))
def test_bad_suite_is_a_collection_error_at_file_and_line(
    pytester: pytest.Pytester, kit: Kit, kind: str
) -> None:
    text, line, words = BAD_SUITES[kind]
    scripted(kit)
    path = kit.suite(text, name="bad")
    pytester.makepyfile(test_other="def test_ok():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting bad.phyjudge.yaml*", f"{path}:{line}: *"])
    assert words in result.stdout.str()
    assert "Traceback" not in result.stdout.str()
    assert "pytest_phyjudge/" not in result.stdout.str()  # no frame of the plugin's code


def test_prompt_set_not_in_phyground_format(pytester: pytest.Pytester, kit: Kit) -> None:
    scripted(kit)
    (pytester.path / "prompts.json").write_text(json.dumps({"items": [{"text": "x"}]}))
    path = kit.suite("videos: v/{id}.mp4\nprompts: prompts.json\n", name="set")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*ERROR collecting set.phyjudge.yaml*", "*prompts.json*"])
    assert "PhyGround prompt set" in result.stdout.str()
    assert "Traceback" not in result.stdout.str()
    assert path.is_file()


def test_unregistered_mark_under_strict_markers(pytester: pytest.Pytester, kit: Kit) -> None:
    kit.conftest(name="scripted-for-tests")
    # A mark name no other test registers (pytest remembers known marks per process).
    path = kit.suite(SUITE.replace("marks: [slow]", "marks: [never_registered_x]"))
    result = pytester.runpytest("--strict-markers", "--collect-only")
    # At the line of the mark itself, and pytest's reason ends its sentence.
    result.stdout.fnmatch_lines(
        [
            f"{path}:10: case 'ball_ramp' has the mark 'never_registered_x', which pytest "
            "refuses: 'never_registered_x' not found in `markers` configuration option. "
            "Register it under `markers` *"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_unregistered_mark_warns_at_its_yaml_line(pytester: pytest.Pytester, kit: Kit) -> None:
    kit.conftest(name="scripted-for-tests")
    path = kit.suite(SUITE.replace("marks: [slow]", "marks: [never_registered_y]"))
    result = pytester.runpytest("--collect-only")
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "basics.phyjudge.yaml:10",
            f"  {path}:10: PytestUnknownMarkWarning: case 'ball_ramp' has the mark "
            "'never_registered_y', which is not registered (a typo?). Register it under "
            "`markers` *",
            "    marks: [[]never_registered_y[]]",
        ]
    )
    assert "items.py" not in result.stdout.str()
    assert result.stdout.str().count("PytestUnknownMarkWarning") == 1
    # Warnings made errors: a collection error at the same line, not a traceback.
    result = pytester.runpytest("--collect-only", "-W", "error::pytest.PytestUnknownMarkWarning")
    result.stdout.fnmatch_lines(
        [f"{path}:10: case 'ball_ramp' has the mark 'never_registered_y', which is not *"]
    )
    assert "Traceback" not in result.stdout.str() and "items.py" not in result.stdout.str()


def test_every_bad_case_is_reported_in_one_collection_error(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    scripted(kit)
    path = kit.suite(
        "videos: clips/{id}.mp4\n"
        "cases:\n"
        "  - {id: a, prompt: p, laws: [gravty]}\n"
        "  - {id: fine, prompt: p}\n"
        "  - {id: b, prompt: p, min_score: 9}\n",
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting basics.phyjudge.yaml*",
            f"{path}: the suite has 2 problems; fix each at its line:",
            f"  {path}:3: *Did you mean 'gravity'?*",
            f"  {path}:5: min_score is 9; thresholds are integers from 1 to 5.",
        ]
    )
    assert "Traceback" not in result.stdout.str()


# --------------------------------------------------------------------------- generators

GENERATOR = """
from pathlib import Path

def make(prompt, *, seed, out_path, frames=8):
    with open("generator_calls.txt", "a") as fh:
        fh.write(f"{prompt}|{seed}|{frames}\\n")
    if "boom" in prompt:
        raise RuntimeError("the GPU caught fire")
    if "lazy" in prompt:
        return None
    Path(out_path).write_bytes(f"clip {prompt} {seed} {frames}".encode())
"""

GENERATED_SUITE = """
generator: videogen
defaults: {metrics: [], seed: 3, params: {frames: 5}}
cases:
  - {id: ok, prompt: A ball falls., laws: [gravity]}
  - {id: broken, prompt: boom, laws: [gravity, inertia]}
  - {id: idle, prompt: lazy generator, laws: [gravity]}
  - {id: own, prompt: A ball falls., laws: [gravity], video: clips/own.mp4}
"""


def generator_calls(pytester: pytest.Pytester) -> list[str]:
    path = pytester.path / "generator_calls.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_generator_makes_caches_and_fails_per_case(pytester: pytest.Pytester, kit: Kit) -> None:
    scripted(kit)
    kit.pytester.makeini(
        "[pytest]\nmarkers =\n    slow: slow cases\n"
        "phyjudge_generators = videogen = videogen:make\n"
    )
    kit.module("videogen", GENERATOR)
    kit.clip("own")
    kit.suite(GENERATED_SUITE, name="gen")
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(
        [
            "VideoError: The generator 'videogen' failed for case 'broken': "
            "RuntimeError: the GPU caught fire",
            '  File "*videogen.py", line *, in make',
            "*wrote no video (nothing, or an empty file, at the out_path it was given)*",
        ]
    )
    assert "_pytest" not in result.stdout.str()
    assert sorted(generator_calls(pytester)) == sorted(
        ["A ball falls.|3|5", "boom|3|5", "lazy generator|3|5"]
    )
    clips = list((pytester.path / ".pytest_cache" / "d" / "phyjudge-clips").glob("*.mp4"))
    assert [c.name.split("-")[0] for c in clips] == ["ok"]

    # A second run reuses the clip; only the failing generators run again.
    pytester.runpytest().assert_outcomes(passed=2, failed=3)
    assert generator_calls(pytester).count("A ball falls.|3|5") == 1
    pytester.runpytest("--phyjudge-regenerate", "gen.phyjudge.yaml::ok").assert_outcomes(passed=1)
    assert generator_calls(pytester).count("A ball falls.|3|5") == 2


def test_generate_hook_in_conftest(pytester: pytest.Pytester, kit: Kit) -> None:
    """The pytest_phyjudge_generate hook comes before the function the name stands for."""
    kit.conftest(
        name="scripted-for-tests",
        extra="\ndef pytest_phyjudge_generators(config):\n"
        "    return {'hooked': lambda prompt, **kwargs: 1 / 0}\n"
        "\ndef pytest_phyjudge_generate(case, out_path):\n"
        "    assert case.generator == 'hooked'\n"
        "    out_path.write_bytes(b'from the hook ' + case.prompt.encode())\n"
        "    return out_path\n",
    )
    kit.suite("generator: hooked\ncases: [{id: a, prompt: p, laws: [gravity]}]")
    pytester.runpytest().assert_outcomes(passed=4)
    (clip,) = (pytester.path / ".pytest_cache" / "d" / "phyjudge-clips").glob("a-*.mp4")
    assert clip.read_bytes() == b"from the hook p"


def test_a_judge_bug_fails_the_case_once_with_its_traceback(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    buggy = (
        "\ndef _buggy(axis, caption, video):\n"
        "    return {'gravity': 4}[axis]  # a bug: KeyError for SA\n"
        "\nJUDGE = ScriptedJudge(_buggy, name='scripted-for-tests')\n"
    )
    kit.conftest({"*": 4}, name="scripted-for-tests", extra=buggy)
    kit.suite(SUITE)
    kit.clip("ball_ramp")
    result = pytester.runpytest("-k", "ball_ramp")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "E *KeyError: 'SA'",
            "*The above exception was the direct cause of the following exception:*",
            "E *RuntimeError: Judging case 'ball_ramp' failed: KeyError: *",
        ]
    )
    assert len(kit.calls()) == 1  # the case was not judged again for each item


def test_a_suite_never_makes_pytest_run_code(pytester: pytest.Pytester, kit: Kit) -> None:
    """A string condition of skipif/xfail would be evaluated by pytest: the suite is refused
    at its line, and the code in it never runs."""
    kit.conftest({"*": 4})
    marker = pytester.path / "ran.txt"
    kit.suite(
        "videos: clips/{id}.mp4\n"
        "cases:\n"
        "  - id: evil\n"
        "    prompt: A ball falls.\n"
        "    marks:\n"
        f"      - {{skipif: \"open({str(marker)!r}, 'w').write('x') is None\"}}\n",
        name="evil",
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*evil.phyjudge.yaml:6: the skipif condition is the string*never runs code*"]
    )
    assert not marker.exists()
    assert "Traceback" not in result.stdout.str()
