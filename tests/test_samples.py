"""Repeated samples: seeds and {sample} videos, pass_rate / min_mean / confidence gates, bad input.

Every run here uses a SCRIPTED judge (``ScriptedJudge``): its scores are written inside the
stand-in clip files, so each test states exactly what the judge will say for each sample.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from pytester_kit import Kit

from pytest_phyjudge import SuiteError
from pytest_phyjudge.suites import load_suite

JUDGE = ["--phyjudge-judge", "judges:make", "-p", "no:randomly"]


def setup(kit: Kit, suite: str, clips: dict[str, dict] | None = None) -> None:
    """The clip-reading scripted judges (and their generator), the suite, and the clips
    ``{name: scores}``."""
    kit.judges()
    kit.suite(suite)
    for name, scores in (clips or {}).items():
        kit.clip(name, scores)


def clips(case: str, scores: list[int]) -> dict[str, dict]:
    return {f"{case}-{i}": {"*": s} for i, s in enumerate(scores)}


SAMPLED = """
videos: clips/{{id}}-{{sample}}.mp4
defaults: {{metrics: [], min_score: 3}}
cases:
  - id: drop
    prompt: A glass falls off a table.
    laws: [gravity]
    samples: 4
{gates}
"""


def run_gates(pytester: pytest.Pytester, kit: Kit, scores: list[int], gates: str, *args: str):
    setup(kit, SAMPLED.format(gates=textwrap.indent(gates, "    ")), clips("drop", scores))
    return pytester.runpytest(*JUDGE, *args)


# --------------------------------------------------------------------------- pass_rate


def test_pass_rate_with_confidence_passes_four_of_four(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted scores 4,4,4,4: the one-sided 90% Wilson lower bound of 4/4 is 0.709 >= 0.5."""
    result = run_gates(pytester, kit, [4, 4, 4, 4], "pass_rate: 0.5\nconfidence: 0.9", "-rP")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*pass rate 1.00 (4 of 4 reach 3), 90% lower bound 0.709 (Wilson) >= pass_rate 0.5"]
    )


def test_pass_rate_with_confidence_fails_three_of_four(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted scores 4,2,4,4: 3/4 = 0.75 meets pass_rate 0.5, but its 90% lower bound
    0.433 does not, so the item fails and shows every sample."""
    result = run_gates(pytester, kit, [4, 2, 4, 4], "pass_rate: 0.5\nconfidence: 0.9")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*PhyJudge: gravity failed its pass_rate gate over 4 samples",
            "*at basics.phyjudge.yaml:4: case 'drop', axis gravity*",
            "*pass rate 0.75 (3 of 4 reach 3), 90% lower bound 0.433 (Wilson) < pass_rate 0.5 FAIL",
            "*#0: score 4  clips/drop-0.mp4",
            "*#1: score 2  clips/drop-1.mp4",
        ]
    )


def test_pass_rate_without_confidence_uses_the_estimate(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    """Scripted scores 4,2,4,4: the point estimate 0.75 meets pass_rate 0.75."""
    result = run_gates(pytester, kit, [4, 2, 4, 4], "pass_rate: 0.75")
    result.assert_outcomes(passed=1)


def test_pass_rate_without_confidence_fails_below(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted scores 4,2,2,4: 0.5 < pass_rate 0.75."""
    result = run_gates(pytester, kit, [4, 2, 2, 4], "pass_rate: 0.75")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pass rate 0.50 (2 of 4 reach 3)*< pass_rate 0.75 FAIL"])


# --------------------------------------------------------------------------- min_mean


def test_min_mean_point_estimate_passes(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted scores 4,4,4,3: mean 3.75 >= min_mean 3.6."""
    result = run_gates(pytester, kit, [4, 4, 4, 3], "min_mean: 3.6")
    result.assert_outcomes(passed=1)


def test_min_mean_with_confidence_fails(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted scores 4,4,4,3: the 10th bootstrap percentile of the mean is 3.5 < 3.6."""
    result = run_gates(pytester, kit, [4, 4, 4, 3], "min_mean: 3.6\nconfidence: 0.9")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*mean 3.75 over 4 scored, 90% lower bound 3.500 (bootstrap) < min_mean 3.6 FAIL"]
    )


def test_gates_per_axis(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted: SA scores 4 everywhere, gravity 2 in half the samples; the gravity gate is
    looser than the case's, so both items pass."""
    suite = """
    videos: clips/{id}-{sample}.mp4
    defaults: {metrics: [SA]}
    cases:
      - id: drop
        prompt: A glass falls.
        laws: [gravity]
        samples: 4
        pass_rate: {SA: 1.0, gravity: 0.5}
    """
    files = {f"drop-{i}": {"SA": 4, "gravity": 2 if i % 2 else 4} for i in range(4)}
    setup(kit, suite, files)
    pytester.runpytest(*JUDGE).assert_outcomes(passed=2)


def test_default_gate_needs_every_sample(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted scores 4,4,2,4 without gates: every sample must reach min_score."""
    result = run_gates(pytester, kit, [4, 4, 2, 4], "")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*3 of 4 reach 3*< pass_rate 1 FAIL"])


# --------------------------------------------------------------------------- sources and report


def test_generator_gets_seeds_and_report_carries_samples(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    """Scripted judge; the generator writes score = scores[seed], so the seeds are visible."""
    suite = """
    generator: clips_by_seed
    defaults: {metrics: [SA], samples: 3, seed: 0}
    cases:
      - id: roll
        prompt: A ball rolls.
        laws: [inertia]
        params: {scores: [5, 4, 3]}
        min_mean: 4
    """
    setup(kit, suite)
    pytester.makeini("[pytest]\nphyjudge_generators = clips_by_seed = judges:generate\n")
    result = pytester.runpytest(*JUDGE, "--phyjudge-report", "out/scores.json")
    result.assert_outcomes(passed=2)
    assert sorted((pytester.path / "seeds.txt").read_text().split()) == ["0", "1", "2"]
    report = json.loads((pytester.path / "out" / "scores.json").read_text())
    (row,) = report["results"]
    assert row["SA"] == 4.0 and row["physical"]["laws"]["inertia"]["score"] == 4.0
    assert row["samples"] == {"SA": [5, 4, 3], "inertia": [5, 4, 3]}
    check = row["checks"]["inertia"]
    assert [s["seed"] for s in check["samples"]] == [0, 1, 2]
    assert check["summary"]["mean"] == 4.0 and check["summary"]["passed"] is True
    assert check["score"] == 4.0


def test_single_video_needs_the_sample_placeholder(pytester: pytest.Pytester, kit: Kit) -> None:
    """No judge runs: collection fails at the samples line."""
    setup(
        kit,
        """
        videos: clips/{id}.mp4
        cases:
          - id: drop
            prompt: A glass falls.
            samples: 2
        """,
    )
    result = pytester.runpytest(*JUDGE)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*basics.phyjudge.yaml:5: case 'drop' has samples: 2*{sample}*"])


# --------------------------------------------------------------------------- bad values


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.phyjudge.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("samples: 0", ["samples is 0", "positive whole number"]),
        ("samples: 2.5", ["samples is 2.5"]),
        ("samples: true", ["samples is the boolean true"]),
        ("samples: '4'", ["samples is the string '4'"]),
        ("pass_rate: 0", ["pass_rate is 0", "(0, 1]"]),
        ("pass_rate: 1.5", ["pass_rate is 1.5", "(0, 1]"]),
        ("pass_rate: -0.2", ["pass_rate is -0.2"]),
        ("confidence: 1", ["confidence is 1", "(0, 1)"]),
        ("confidence: 0", ["confidence is 0", "(0, 1)"]),
        ("min_mean: 6", ["min_mean is 6", "1 to 5"]),
        ("tolerance: -1", ["tolerance is -1"]),
        ("pass_rate: {gravity: 2}", ["pass_rate for 'gravity' is 2"]),
        ("pass_rate: {shadow: 0.5}", ["'shadow'", "does not score"]),
    ],
)
def test_bad_gate_values_name_file_and_line(tmp_path: Path, line: str, words: list[str]) -> None:
    path = write(
        tmp_path,
        f"""
        videos: v/{{id}}-{{sample}}.mp4
        cases:
          - id: a
            prompt: p
            laws: [gravity]
            {line}
        """,
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.path == path and info.value.line == 6, str(info.value)
    for word in words:
        assert word in info.value.reason


def test_bad_defaults_and_confidence_alone(tmp_path: Path) -> None:
    path = write(
        tmp_path, "videos: v/{id}.mp4\ndefaults:\n  samples: -3\ncases: [{id: a, prompt: p}]"
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.line == 3 and "samples is -3" in info.value.reason

    path = write(
        tmp_path, "videos: v/{id}-{sample}.mp4\ncases:\n  - {id: a, prompt: p, confidence: 0.9}"
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.line == 3 and "no pass_rate or min_mean" in info.value.reason


def test_gates_resolve_case_over_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        videos: v/{id}-{sample}.mp4
        defaults: {samples: 4, pass_rate: 0.5, confidence: 0.9, tolerance: 1, metrics: [SA]}
        cases:
          - {id: a, prompt: p, laws: [gravity], pass_rate: {gravity: 0.75}, tolerance: 0.5}
          - {id: b, prompt: p, samples: 1}
        """,
    )
    a, b = load_suite(path).cases
    assert a.samples == 4 and a.sampled
    assert [v.name for v in a.sample_videos] == ["a-0.mp4", "a-1.mp4", "a-2.mp4", "a-3.mp4"]
    assert a.gates_for("gravity").pass_rate == 0.75 and a.gates_for("SA").pass_rate == 0.5
    assert a.gates_for("gravity").confidence == 0.9 and a.gates_for("SA").tolerance == 0.5
    assert a.sample(2).video == a.sample_videos[2] and a.sample(2).seed == 2
    assert b.samples == 1 and b.sampled  # the defaults' pass_rate still gates its one clip
    assert b.video is not None and b.video.name == "b-0.mp4"


def test_a_missing_sample_counts_as_not_reaching_min_score(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    """Scripted scores 4, 4 and a missing third clip: 2 of 3 meet pass_rate 0.6, not 0.7."""
    files = {"drop-0": {"*": 4}, "drop-1": {"*": 4}}
    suite = SAMPLED.format(gates="    pass_rate: 0.6").replace("samples: 4", "samples: 3")
    setup(kit, suite, files)
    pytester.runpytest(*JUDGE).assert_outcomes(passed=1)
    setup(kit, suite.replace("0.6", "0.7"))
    result = pytester.runpytest(*JUDGE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*pass rate 0.67 (2 of 3 reach 3)*< pass_rate 0.7 FAIL",
            "*#2: no score (VideoError: The video of case 'drop' does not exist*",
        ]
    )


def test_every_sample_missing_fails_with_the_video_error(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    """No clip exists, so the SCRIPTED judge is never asked."""
    setup(kit, SAMPLED.format(gates=""))
    result = pytester.runpytest(*JUDGE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*VideoError: The video of case 'drop' does not exist*"])


def test_bad_gate_is_a_collection_error_at_file_line(pytester: pytest.Pytester, kit: Kit) -> None:
    """No judge runs: the suite is refused at collection."""
    setup(kit, SAMPLED.format(gates="    pass_rate: 1.5\n    confidence: 0.9"))
    result = pytester.runpytest(*JUDGE)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*basics.phyjudge.yaml:8: pass_rate is 1.5; write a fraction in (0, 1]*"]
    )
