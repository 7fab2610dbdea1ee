"""YAML suites and PhyGround prompt sets: the good path, and every bad input at its line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pytest_phyjudge._exceptions import InputError, SuiteError
from pytest_phyjudge.engine.axes import GENERAL_METRICS
from pytest_phyjudge.suites import Case, MarkSpec, Suite, load_prompt_set, load_suite

PHYGROUND = Path(__file__).resolve().parents[1].parent / "shared" / "phyground"
HUMANEVAL = PHYGROUND / "humaneval_prompts.json"


def write(folder: Path, text: str, name: str = "basics.phyjudge.yaml") -> Path:
    """Write ``text`` (dedented; its first line is line 1) and return the file's path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def suite_error(path: Path, **kwargs) -> SuiteError:
    with pytest.raises(SuiteError) as info:
        load_suite(path, **kwargs)
    return info.value


def assert_at(err: SuiteError, path: Path, line: int | None, *words: str) -> None:
    assert err.path == path, str(err)
    assert err.line == line, str(err)
    for word in words:
        assert word in err.reason, f"{word!r} not in: {err.reason}"
    where = f"{path}:{line}" if line else str(path)
    assert str(err) == f"{where}: {err.reason}"


def write_prompt_set(folder: Path, data: object, name: str = "prompts.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- good suites

GOOD = """
suite: physics-basics
defaults:
  min_score: 2
  metrics: [SA, PTV]
  seed: 7
  params: {steps: 30, fps: 16}
videos: videos/{suite}/{id}.mp4
generator: make_video
cases:
  - id: ball_ramp
    prompt: A ball rolls down a ramp and knocks over a block.
    laws: [gravity, collision, gravity]
    min_score: {gravity: 4}
    criteria: {gravity: "The ball speeds up as it rolls down."}
    marks: [slow, {xfail: known bad generator}]
  - id: mirror.v2-b
    prompt: >
      A cup stands before a mirror.
    laws: reflection
    metrics: [persistence]
    min_score: 5
    video: clips/mirror.mp4
    seed: 3
    params: {steps: 50}
    source: {dataset: mine}
    generator: other-gen
"""


def test_good_suite_every_field(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    suite = load_suite(path)
    assert isinstance(suite, Suite)
    assert suite.name == "physics-basics"
    assert suite.path == path
    assert suite.generator == "make_video"
    ramp, mirror = suite.cases
    assert isinstance(ramp, Case)

    assert ramp.id == "ball_ramp"
    assert ramp.prompt == "A ball rolls down a ramp and knocks over a block."
    assert ramp.laws == ("gravity", "collision")  # order kept, repeat dropped
    assert ramp.metrics == ("SA", "PTV")
    assert ramp.axes == ("SA", "PTV", "gravity", "collision")
    assert ramp.min_scores == {"SA": 2, "PTV": 2, "gravity": 4, "collision": 2}
    assert ramp.video == (tmp_path / "videos" / "physics-basics" / "ball_ramp.mp4").resolve()
    assert ramp.criteria == {"gravity": "The ball speeds up as it rolls down."}
    assert ramp.marks == (
        MarkSpec("slow"),
        MarkSpec("xfail", (), {"reason": "known bad generator"}),
    )
    assert ramp.line == 10
    assert ramp.generator == "make_video"
    assert ramp.seed == 7
    assert ramp.params == {"steps": 30, "fps": 16}
    assert ramp.source == {}

    assert mirror.id == "mirror.v2-b"
    assert mirror.prompt == "A cup stands before a mirror."  # folded scalar, stripped
    assert mirror.laws == ("reflection",)
    assert mirror.metrics == ("persistence",)
    assert mirror.min_scores == {"persistence": 5, "reflection": 5}
    assert mirror.video == (tmp_path / "clips" / "mirror.mp4").resolve()
    assert mirror.marks == ()
    assert mirror.criteria == {}
    assert mirror.line == 16
    assert mirror.generator == "other-gen"
    assert mirror.seed == 3
    assert mirror.params == {"steps": 50, "fps": 16}  # merged over the defaults
    assert mirror.source == {"dataset": "mine"}


def test_defaults_when_absent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        videos: v/{id}.mp4
        cases:
          - {id: a, prompt: p, laws: [shadow]}
          - {id: b, prompt: q}
        """,
    )
    suite = load_suite(path)
    assert suite.name == "basics"  # file stem without .phyjudge
    assert suite.generator is None
    a, b = suite.cases
    assert a.metrics == GENERAL_METRICS
    assert a.min_scores == dict.fromkeys((*GENERAL_METRICS, "shadow"), 3)
    assert (a.seed, a.params, a.marks, a.criteria, a.generator) == (0, {}, (), {}, None)
    assert b.laws == () and b.axes == GENERAL_METRICS
    assert (a.line, b.line) == (3, 4)


def test_threshold_resolution_with_defaults_int(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        defaults: {min_score: 2, metrics: [SA]}
        videos: v/{id}.mp4
        cases:
          - {id: case_dict, prompt: p, laws: [gravity, shadow], min_score: {gravity: 4}}
          - {id: case_int, prompt: p, laws: [gravity], min_score: 5}
          - {id: nothing, prompt: p, laws: [gravity]}
        """,
    )
    by_id = {c.id: c.min_scores for c in load_suite(path, default_min_score=1).cases}
    assert by_id["case_dict"] == {"SA": 2, "gravity": 4, "shadow": 2}
    assert by_id["case_int"] == {"SA": 5, "gravity": 5}
    assert by_id["nothing"] == {"SA": 2, "gravity": 2}


def test_threshold_resolution_with_defaults_dict(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        defaults:
          min_score: {gravity: 4, SA: 2, buoyancy: 5}
        videos: v/{id}.mp4
        cases:
          - {id: plain, prompt: p, laws: [gravity, collision]}
          - {id: case_int, prompt: p, laws: [gravity], min_score: 3}
          - {id: case_dict, prompt: p, laws: [gravity, collision], min_score: {collision: 5}}
        """,
    )
    by_id = {c.id: c.min_scores for c in load_suite(path, default_min_score=1).cases}
    # case dict > case int > defaults dict > defaults int > default_min_score
    assert by_id["plain"] == {"SA": 2, "PTV": 1, "persistence": 1, "gravity": 4, "collision": 1}
    assert by_id["case_int"] == {"SA": 3, "PTV": 3, "persistence": 3, "gravity": 3}
    assert by_id["case_dict"] == {
        "SA": 2,
        "PTV": 1,
        "persistence": 1,
        "gravity": 4,
        "collision": 5,
    }
    # default_min_score applies where nothing else does; every axis gets one threshold
    assert load_suite(path).cases[0].min_scores["PTV"] == 3


def test_marks_parsing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        videos: v/{id}.mp4
        cases:
          - id: a
            prompt: p
            marks:
              - slow
              - {xfail: known bad generator}
              - {skip: not today}
              - {skipif: {condition: false, reason: not on this machine}}
              - {xfail: {reason: flaky, strict: true}}
              - {timeout: [30, thread]}
              - {flaky: null}
              - {order: 2}
          - id: b
            prompt: p
            marks: gpu
        """,
    )
    a, b = load_suite(path).cases
    assert a.marks == (
        MarkSpec("slow"),
        MarkSpec("xfail", (), {"reason": "known bad generator"}),
        MarkSpec("skip", (), {"reason": "not today"}),
        MarkSpec("skipif", (), {"condition": False, "reason": "not on this machine"}),
        MarkSpec("xfail", (), {"reason": "flaky", "strict": True}),
        MarkSpec("timeout", (30, "thread")),
        MarkSpec("flaky"),
        MarkSpec("order", (2,)),
    )
    assert b.marks == (MarkSpec("gpu"),)


@pytest.mark.parametrize(
    ("mark", "words"),
    [
        ("{xfail: a, skip: b}", ["2 keys", "one key"]),
        ("'not a name'", ["not a mark name"]),
        ("[slow]", ["a list", "one key"]),
        ("{xfail: {1: x}}", ["not a Python identifier"]),
        # pytest would evaluate these strings as Python code: a suite never runs code.
        ("{skipif: \"__import__('os').getpid() > 0\"}", ["not true or false", "never runs"]),
        ('{xfail: ["1 == 1", a reason]}', ["xfail condition", "not true or false"]),
        (
            "{xfail: {condition: 'True', reason: r}}",
            ["xfail condition is the string 'True'", "conftest.py"],
        ),
        ("{skipif: [1, reason]}", ["skipif condition is", "not true or false"]),
        ("{filterwarnings: 'ignore::evil.Warning'}", ["not allowed in a suite", "import"]),
    ],
)
def test_bad_marks(tmp_path: Path, mark: str, words: list[str]) -> None:
    path = write(
        tmp_path,
        f"videos: v/{{id}}.mp4\ncases:\n  - id: a\n    prompt: p\n    marks:\n      - {mark}\n",
    )
    assert_at(suite_error(path), path, 6, *words)


def test_video_paths_relative_to_the_file(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "suites" / "nested"
    path = write(
        folder,
        f"""
        videos: ../clips/{{suite}}-{{id}}.mp4
        cases:
          - {{id: a, prompt: p}}
          - {{id: b, prompt: p, video: own/b.mp4}}
          - {{id: c, prompt: p, video: {tmp_path / "abs.mp4"}}}
        """,
        name="motion.phyjudge.yml",
    )
    monkeypatch.chdir(tmp_path)
    suite = load_suite(Path("suites/nested/motion.phyjudge.yml"))  # a relative path
    assert suite.name == "motion"
    assert suite.path == path
    a, b, c = suite.cases
    assert a.video == (tmp_path / "suites" / "clips" / "motion-a.mp4").resolve()
    assert b.video == (folder / "own" / "b.mp4").resolve()
    assert c.video == (tmp_path / "abs.mp4").resolve()
    assert all(case.video.is_absolute() for case in suite.cases)


def test_generator_sources(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        generator: make
        cases:
          - {id: by_suite, prompt: p}
          - {id: by_case, prompt: p, generator: maker_2}
          - {id: recorded, prompt: p, video: r.mp4}
        """,
    )
    by_suite, by_case, recorded = load_suite(path).cases
    assert (by_suite.video, by_suite.generator) == (None, "make")
    assert (by_case.video, by_case.generator) == (None, "maker_2")
    assert recorded.video == (tmp_path / "r.mp4").resolve()


def test_case_generator_wins_over_the_videos_template(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        videos: v/{id}.mp4
        cases:
          - {id: recorded, prompt: p}
          - {id: generated, prompt: p, generator: make}
        """,
    )
    recorded, generated = load_suite(path).cases
    assert recorded.video == (tmp_path / "v" / "recorded.mp4").resolve()
    assert (generated.video, generated.generator) == (None, "make")


def test_yaml_merge_keys_and_numeric_ids(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        videos: v/{id}.mp4
        cases:
          - &base {id: a, prompt: shared, laws: [gravity]}
          - {<<: *base, id: b, laws: [shadow]}
          - {id: 7, prompt: p}
        """,
    )
    a, b, seven = load_suite(path).cases
    assert (b.prompt, b.laws) == ("shared", ("shadow",))
    assert seven.id == "7"
    assert a.laws == ("gravity",)


# --------------------------------------------------------------------------- bad suites


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        videos: v/{id}.mp4
        cases:
          - id: a
            prompt: "unclosed
          - id: b
        """,
    )
    err = suite_error(path)
    assert err.path == path and err.line is not None and err.line >= 4
    assert "not valid YAML" in err.reason


def test_yaml_syntax_error_line_is_the_problem_line(tmp_path: Path) -> None:
    path = write(tmp_path, "videos: v/{id}.mp4\ncases:\n  - id: a\n    prompt: p: q\n")
    assert_at(suite_error(path), path, 4, "not valid YAML", "mapping values")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", None, ["empty"]),
        ("# only a comment\n", None, ["empty"]),
        ("- id: a\n  prompt: p\n", 1, ["a list", "mapping"]),
        ("just text\n", 1, ["the string 'just text'", "mapping"]),
    ],
)
def test_empty_or_not_a_mapping(tmp_path: Path, text: str, line: int | None, words) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    assert_at(suite_error(path), path, line, *words)


def test_missing_file(tmp_path: Path) -> None:
    assert_at(suite_error(tmp_path / "nope.yaml"), tmp_path / "nope.yaml", None, "does not exist")


def test_unknown_top_level_key_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, "videos: v/{id}.mp4\ncaess:\n  - {id: a, prompt: p}\n")
    assert_at(suite_error(path), path, 2, "unknown key 'caess'", "Did you mean 'cases'?")


def test_unknown_case_key_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, "videos: v/{id}.mp4\ncases:\n  - id: a\n    prompt: p\n    lwas: [x]\n")
    assert_at(suite_error(path), path, 5, "unknown key 'lwas'", "Did you mean 'laws'?")


def test_unknown_defaults_key(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  min_scores: 3\ncases: []\n")
    assert_at(suite_error(path), path, 2, "'min_scores'", "Did you mean 'min_score'?")


def test_unknown_law_with_suggestion(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "videos: v/{id}.mp4\ncases:\n  - id: a\n    prompt: p\n    laws:\n      - gravity\n"
        "      - colision\n",
    )
    assert_at(suite_error(path), path, 7, "'colision'", "Did you mean 'collision'?")


def test_general_metric_listed_as_law(tmp_path: Path) -> None:
    path = write(tmp_path, "videos: v/{id}.mp4\ncases:\n  - {id: a, prompt: p, laws: [SA]}\n")
    assert_at(suite_error(path), path, 3, "'SA' is a general metric", "metrics:")


def test_law_listed_as_metric(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  metrics: [SA, gravity]\ncases: []\n")
    assert_at(suite_error(path), path, 2, "'gravity' is a physical law", "laws:")


def test_unknown_metric(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  metrics: [sa]\ncases: []\n")
    assert_at(suite_error(path), path, 2, "'sa'", "Did you mean 'SA'?")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0", "is 0;"),
        ("6", "is 6;"),
        ("3.5", "is 3.5;"),
        ('"4"', "is the string '4'"),
        ("true", "is the boolean true"),
    ],
)
def test_bad_threshold_in_case_dict(tmp_path: Path, value: str, shown: str) -> None:
    path = write(
        tmp_path,
        "videos: v/{id}.mp4\ncases:\n  - id: a\n    prompt: p\n    laws: [gravity]\n"
        f"    min_score:\n      SA: 3\n      gravity: {value}\n",
    )
    err = suite_error(path)
    assert_at(err, path, 8, f"min_score for 'gravity' {shown}", "integers from 1 to 5")
    if value == '"4"':
        assert "without quotes" in err.reason


@pytest.mark.parametrize("value", ["0", "6", "3.5", '"4"', "true"])
def test_bad_threshold_in_defaults(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"defaults:\n  seed: 1\n  min_score: {value}\ncases: []\n")
    assert_at(suite_error(path), path, 3, "min_score is", "integers from 1 to 5")


def test_bad_threshold_for_case_int(tmp_path: Path) -> None:
    path = write(
        tmp_path, "videos: v/{id}.mp4\ncases:\n  - {id: a, prompt: p,\n     min_score: 7}\n"
    )
    assert_at(suite_error(path), path, 4, "min_score is 7; thresholds are integers from 1 to 5.")


def test_min_score_for_an_axis_the_case_does_not_score(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "videos: v/{id}.mp4\ncases:\n  - id: a\n    prompt: p\n    laws: [gravity]\n"
        "    min_score: {shadow: 4}\n",
    )
    assert_at(suite_error(path), path, 6, "'shadow'", "does not score", "add 'shadow'")


def test_min_score_for_an_unknown_axis(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  min_score:\n    gravty: 4\ncases: []\n")
    assert_at(suite_error(path), path, 3, "'gravty'", "Did you mean 'gravity'?")


def test_bad_default_min_score_argument(tmp_path: Path) -> None:
    path = write(tmp_path, "videos: v/{id}.mp4\ncases:\n  - {id: a, prompt: p}\n")
    for bad in (0, 6, True, 2.5):
        with pytest.raises(InputError, match="1-5"):
            load_suite(path, default_min_score=bad)


def test_duplicate_case_id_names_both_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        videos: v/{id}.mp4
        cases:
          - id: a
            prompt: p
          - id: b
            prompt: p
          - id: a
            prompt: q
        """,
    )
    assert_at(suite_error(path), path, 7, "duplicate case id 'a'", "line 3")


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    path = write(tmp_path, "videos: v/{id}.mp4\ncases:\n  - id: a\n    prompt: p\n    id: b\n")
    assert_at(suite_error(path), path, 5, "'id' appears twice", "lines 3 and 5")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("videos: v/{id}.mp4\ncases: []\n", 2),
        ("videos: v/{id}.mp4\ncases:\n", 2),
        ("suite: x\nvideos: v/{id}.mp4\n", 1),
    ],
)
def test_empty_cases(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path, text)
    assert_at(suite_error(path), path, line, "empty cases", "cases:")


def test_empty_prompt_set_and_no_cases(tmp_path: Path) -> None:
    write_prompt_set(tmp_path, {"prompts": []})
    path = write(tmp_path, "videos: v/{id}.mp4\nprompts: prompts.json\n")
    assert_at(suite_error(path), path, 2, "empty cases")


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("v/{take}.mp4", ["{take}", "{id}", "{suite}", "{sample}"]),
        ("v/{id!r}.mp4", ["{id!r}"]),
        ("v/{id:>5}.mp4", ["{id:>5}"]),
        ("v/{id.mp4", ["malformed"]),
    ],
)
def test_bad_videos_template(tmp_path: Path, template: str, words) -> None:
    path = write(tmp_path, f"suite: s\nvideos: '{template}'\ncases:\n  - {{id: a, prompt: p}}\n")
    assert_at(suite_error(path), path, 2, *words)


def test_missing_video_source(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cases:\n  - {id: a, prompt: p, video: a.mp4}\n  - id: b\n    prompt: p\n",
    )
    assert_at(suite_error(path), path, 3, "'b' has no video source", "video:", "videos:")


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("{prompt: p}", ["no `id`"]),
        ("{id: 'a b', prompt: p}", ["the case id is the string 'a b'", "letters, digits"]),
        ("{id: a/b, prompt: p}", ["letters, digits"]),
        ("{id: '..', prompt: p}", ["letters, digits"]),
        ("{id: true, prompt: p}", ["the boolean true"]),
        ("{id: a}", ["no `prompt`"]),
        ("{id: a, prompt: '  '}", ["non-empty text"]),
        ("{id: a, prompt: p, metrics: []}", ["scores nothing"]),
        ("{id: a, prompt: p, seed: 1.5}", ["seed is 1.5", "whole number"]),
        ("{id: a, prompt: p, params: [1]}", ["params is a list", "mapping"]),
        ("{id: a, prompt: p, generator: 'mypkg.gen'}", ["a registered generator", "ini"]),
        ("{id: a, prompt: p, laws: [gravity], criteria: {shadow: x}}", ["'shadow'", "not score"]),
        ("{id: a, prompt: p, laws: [gravity], criteria: {gravity: ''}}", ["non-empty text"]),
        ("{id: a, prompt: p, laws: [gravity, 3]}", ["an entry of laws is 3"]),
        ("{id: a, prompt: p, laws: {gravity: 1}}", ["laws is a mapping", "list of names"]),
        ("[a, b]", ["this case is a list", "mapping"]),
    ],
)
def test_bad_case_fields(tmp_path: Path, case: str, words) -> None:
    path = write(tmp_path, f"videos: v/{{id}}.mp4\ncases:\n  - {{id: ok, prompt: p}}\n  - {case}\n")
    assert_at(suite_error(path), path, 4, *words)


def test_bad_suite_generator(tmp_path: Path) -> None:
    path = write(tmp_path, "generator: 'make video'\ncases:\n  - {id: a, prompt: p}\n")
    assert_at(suite_error(path), path, 1, "generator is the string 'make video'", "registered")


def test_unsafe_yaml_tag_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "videos: !!python/object:os.system {}\ncases: []\n")
    err = suite_error(path)
    assert err.path == path and err.line == 1


def test_cases_not_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, "videos: v/{id}.mp4\ncases:\n  id: a\n  prompt: p\n")
    assert_at(suite_error(path), path, 3, "cases is a mapping", "list")


# --------------------------------------------------------------------------- several problems


def problems(err: SuiteError, path: Path) -> list[tuple[int | None, str]]:
    """The (line, reason) of each problem a combined error lists, checking its shape."""
    assert (err.path, err.line) == (path, None), str(err)
    assert len(err.errors) > 1
    head = f"{path}: the suite has {len(err.errors)} problems; fix each at its line:"
    assert str(err).splitlines() == [head, *(f"  {e}" for e in err.errors)]
    return [(e.line, e.reason) for e in err.errors]


def test_one_problem_is_reported_alone(tmp_path: Path) -> None:
    path = write(tmp_path, "videos: v/{id}.mp4\ncases:\n  - {id: a, prompt: p, seed: x}\n")
    err = suite_error(path)
    assert_at(err, path, 3, "seed is the string 'x'")
    assert err.errors == ()


def test_bad_cases_are_reported_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        videos: v/{id}.mp4
        cases:
          - id: a
            prompt: p
            laws: [gravty]
          - {id: fine, prompt: p}
          - id: b
            prompt: p
            min_score: 7
          - {id: a, prompt: q}
        """,
    )
    found = problems(suite_error(path), path)
    assert [line for line, _ in found] == [5, 9, 10]
    assert "Did you mean 'gravity'?" in found[0][1]
    assert "min_score is 7" in found[1][1]
    assert "duplicate case id 'a'" in found[2][1] and "line 3" in found[2][1]


def test_independent_fields_of_one_case_are_reported_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        videos: v/{id}.mp4
        cases:
          - id: a
            prompt: p
            laws: [gravty]
            min_score: {gravty: 4}
            generator: make video
            seed: 1.5
            marks: [{xfail: a, skip: b}]
        """,
    )
    found = problems(suite_error(path), path)
    # min_score depends on the laws, so its echo of the bad law is not reported.
    assert [line for line, _ in found] == [5, 7, 8, 9]
    assert "'gravty'" in found[0][1]
    assert "the name of a registered generator" in found[1][1]
    assert "seed is 1.5" in found[2][1]
    assert "2 keys" in found[3][1]


def test_file_level_problems_come_before_the_cases(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        suite: ''
        defaults:
          min_scores: 3
          seed: x
        videos: v/{name}.mp4
        generator: make video
        cases:
          - {id: a, prompt: p, laws: [gravty]}
        """,
    )
    found = problems(suite_error(path), path)
    # The cases are read against these settings, so their own problems wait for a fix.
    assert [line for line, _ in found] == [1, 3, 4, 5, 6]
    assert "Did you mean 'min_score'?" in found[1][1]
    assert "{name}" in found[3][1]


def test_prompt_set_and_case_problems_are_reported_together(tmp_path: Path) -> None:
    bad = write_prompt_set(tmp_path, {"prompts": [{"video": "x", "prompt": "p"}]})
    path = write(
        tmp_path,
        "videos: v/{id}.mp4\nprompts: prompts.json\ncases:\n  - {id: a, prompt: p, seed: x}\n",
    )
    err = suite_error(path)
    assert [(e.path, e.line) for e in err.errors] == [(path, 4), (bad, None)]
    assert "physical_laws" in err.errors[1].reason


# --------------------------------------------------------------------------- prompt sets

PHYGROUND_SET = {
    "description": "tiny",
    "prompts": [
        {
            "video": "collision_156",
            "dataset": "video_phy_2",
            "prompt": "A player hits the ball off the side of the mallet.",
            "physical_laws": ["collision", "impenetrability", "momentum", "collision"],
        },
        {
            "video": "0140_perspective-center_trimmed-paper-smoke.v2",
            "dataset": "physics_iq",
            "prompt": "Smoke rises from burning paper.",
            "physical_laws": ["material", "shadow", "reflection"],
        },
    ],
}


def test_load_prompt_set_phyground_format(tmp_path: Path) -> None:
    entries = load_prompt_set(write_prompt_set(tmp_path, PHYGROUND_SET))
    assert entries == [
        {
            "id": "collision_156",
            "prompt": "A player hits the ball off the side of the mallet.",
            "laws": ["collision", "impenetrability", "momentum"],
            "source": {"dataset": "video_phy_2"},
        },
        {
            "id": "0140_perspective-center_trimmed-paper-smoke.v2",
            "prompt": "Smoke rises from burning paper.",
            "laws": ["material", "shadow", "reflection"],
            "source": {"dataset": "physics_iq"},
        },
    ]


def test_load_prompt_set_bare_list_with_id_stem(tmp_path: Path) -> None:
    data = [
        {
            "id_stem": "gravity_84",
            "video": "gravity_84.mp4",
            "prompt": "A boat drifts.",
            "physical_laws": ["buoyancy", "flow_dynamics"],
            "difficulty": {"n_models": 2},
        }
    ]
    (entry,) = load_prompt_set(write_prompt_set(tmp_path, data))
    assert entry["id"] == "gravity_84"
    assert entry["laws"] == ["buoyancy", "flow_dynamics"]
    assert entry["source"] == {"video": "gravity_84.mp4", "difficulty": {"n_models": 2}}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"items": []}, ["no 'prompts' key", "'items'", "PhyGround"]),
        ({"prompts": {"a": 1}}, ["'prompts' is a object", "list"]),
        ("a string", ["is a string"]),
        ({"prompts": [PHYGROUND_SET["prompts"][0], 3]}, ["prompts[1] is a number", "object"]),
        (
            {"prompts": [{"prompt": "p", "physical_laws": []}]},
            ["prompts[0] has no 'video'"],
        ),
        (
            {"prompts": [{"video": "a", "physical_laws": []}]},
            ["prompts[0] ('a') has no 'prompt'"],
        ),
        (
            {"prompts": [{"video": "a", "prompt": "p"}]},
            ["prompts[0] ('a') has no 'physical_laws'"],
        ),
        (
            {"prompts": [{"video": "a", "prompt": "p", "physical_laws": "gravity"}]},
            ["physical_laws 'gravity'", "list of law names"],
        ),
        (
            {"prompts": [{"video": "a", "prompt": "p", "physical_laws": ["gravty"]}]},
            ["prompts[0] ('a')", "Did you mean 'gravity'?"],
        ),
        (
            {"prompts": [{"video": "a", "prompt": "p", "physical_laws": ["PTV"]}]},
            ["general metric 'PTV'"],
        ),
        (
            {"prompts": [{"video": "a b", "prompt": "p", "physical_laws": []}]},
            ["prompts[0] has video 'a b'", "letters, digits"],
        ),
        (
            {"prompts": [{"video": "a", "prompt": "p", "physical_laws": []}] * 2},
            ["prompts[1] repeats the id 'a' of prompts[0]"],
        ),
        ([{"video": "a", "prompt": "p", "physical_laws": []}], ["entry [0] has no 'id_stem'"]),
    ],
)
def test_prompt_set_not_in_phyground_format(tmp_path: Path, data, words) -> None:
    path = write_prompt_set(tmp_path, data)
    with pytest.raises(SuiteError) as info:
        load_prompt_set(path)
    assert_at(info.value, path, None, *words)


def test_prompt_set_json_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "prompts": [\n    {"video": "a",}\n  ]\n}\n', encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        load_prompt_set(path)
    assert_at(info.value, path, 3, "not valid JSON")


def test_suite_with_a_prompt_set(tmp_path: Path) -> None:
    (tmp_path / "sets").mkdir()
    write_prompt_set(tmp_path / "sets", PHYGROUND_SET)
    path = write(
        tmp_path,
        """
        defaults:
          metrics: [SA]
          min_score: {shadow: 5}
          laws: [gravity]
        videos: clips/{id}.mp4
        prompts: sets/prompts.json
        cases:
          - {id: extra, prompt: p}
        """,
    )
    suite = load_suite(path)
    assert [c.id for c in suite.cases] == [
        "collision_156",
        "0140_perspective-center_trimmed-paper-smoke.v2",
        "extra",
    ]
    first, second, extra = suite.cases
    assert first.laws == ("collision", "impenetrability", "momentum")  # defaults.laws not used
    assert first.metrics == ("SA",)
    assert first.line == second.line == 6
    assert first.source == {"dataset": "video_phy_2"}
    assert first.video == (tmp_path / "clips" / "collision_156.mp4").resolve()
    assert (
        second.video
        == (tmp_path / "clips" / "0140_perspective-center_trimmed-paper-smoke.v2.mp4").resolve()
    )
    assert second.min_scores == {"SA": 3, "material": 3, "shadow": 5, "reflection": 3}
    assert (first.marks, first.criteria, first.generator) == ((), {}, None)
    assert extra.laws == ("gravity",) and extra.line == 8


def test_prompt_set_with_a_generator(tmp_path: Path) -> None:
    write_prompt_set(tmp_path, PHYGROUND_SET)
    path = write(tmp_path, "generator: g\nprompts: prompts.json\n")
    cases = load_suite(path).cases
    assert [(c.video, c.generator) for c in cases] == [(None, "g")] * 2


def test_duplicate_id_across_prompt_set_and_cases(tmp_path: Path) -> None:
    write_prompt_set(tmp_path, PHYGROUND_SET)
    path = write(
        tmp_path,
        "videos: v/{id}.mp4\nprompts: prompts.json\ncases:\n  - {id: collision_156, prompt: p}\n",
    )
    assert_at(
        suite_error(path), path, 4, "duplicate case id 'collision_156'", "prompts.json", "line 2"
    )


def test_prompt_set_without_a_video_source(tmp_path: Path) -> None:
    write_prompt_set(tmp_path, PHYGROUND_SET)
    path = write(tmp_path, "suite: s\nprompts: prompts.json\n")
    assert_at(suite_error(path), path, 2, "no video source", "videos:")


def test_missing_prompt_set_file(tmp_path: Path) -> None:
    path = write(tmp_path, "videos: v/{id}.mp4\nprompts: nope.json\n")
    assert_at(suite_error(path), path, 2, "'nope.json' does not exist", "relative to this suite")


def test_bad_prompt_set_inside_a_suite_names_the_prompt_set(tmp_path: Path) -> None:
    bad = write_prompt_set(tmp_path, {"prompts": [{"video": "a", "prompt": "p"}]})
    path = write(tmp_path, "videos: v/{id}.mp4\nprompts: prompts.json\n")
    assert_at(suite_error(path), bad, None, "prompts[0]", "physical_laws")


# --------------------------------------------------------------------------- the real set


@pytest.fixture
def humaneval() -> Path:
    if not HUMANEVAL.is_file():
        pytest.skip(f"no PhyGround prompt set at {HUMANEVAL}")
    return HUMANEVAL


def test_real_phyground_prompt_set(tmp_path: Path, humaneval: Path) -> None:
    path = write(tmp_path, f"suite: humaneval\nvideos: videos/{{id}}.mp4\nprompts: {humaneval}\n")
    suite = load_suite(path)
    assert len(suite.cases) == 250
    assert sum("reflection" in case.laws for case in suite.cases) == 17
    assert len({case.id for case in suite.cases}) == 250
    by_id = {case.id: case for case in suite.cases}
    mirror = by_id["0122_perspective-center_trimmed-mirror-teapot-rotate"]
    assert set(mirror.laws) == {"reflection", "shadow"}
    assert (
        mirror.video
        == (
            tmp_path / "videos" / "0122_perspective-center_trimmed-mirror-teapot-rotate.mp4"
        ).resolve()
    )
    assert by_id["gravity_84"].laws == ("buoyancy", "flow_dynamics", "inertia", "reflection")
    assert by_id["gravity_84"].source["dataset"] == "video_phy_2"
    assert all(set(c.min_scores) == set(c.axes) for c in suite.cases)
    law_counts = json.loads(humaneval.read_text(encoding="utf-8"))["law_counts"]
    for law, count in law_counts.items():
        assert sum(law in case.laws for case in suite.cases) == count, law


def test_suites_package_exports() -> None:
    import pytest_phyjudge.suites as suites

    assert suites.__all__ == sorted(suites.__all__)
    assert set(suites.__all__) == {
        "Case",
        "Gates",
        "MarkSpec",
        "PipelineSpec",
        "Suite",
        "load_prompt_set",
        "load_suite",
    }
