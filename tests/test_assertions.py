"""assert_physics / assert_metric / assert_video: verdicts, messages, thresholds, recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytester_kit import Kit

from pytest_phyjudge import (
    InputError,
    JudgeOutputError,
    Judgment,
    PhyJudgeError,
    PhysicsAssertionError,
    ScriptedJudge,
    VideoError,
    assert_metric,
    assert_physics,
    assert_video,
)
from pytest_phyjudge.plugin import running


@pytest.fixture(autouse=True)
def no_running_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """Direct calls here must not see (or write into) the session running these tests."""
    monkeypatch.setattr(running, "_ACTIVE", [])


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A stand-in video: the scripted judge hashes it and never decodes it."""
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"not really a video")
    return path


def test_assert_physics_returns_the_judgment(clip: Path) -> None:
    judge = ScriptedJudge({"gravity": 4})
    judgment = assert_physics(clip, "A ball falls.", law="gravity", min_score=4, judge=judge)
    assert isinstance(judgment, Judgment)
    assert (judgment.key, judgment.score, judgment.judge.kind) == ("gravity", 4, "scripted")


def test_assert_physics_failure_message(clip: Path) -> None:
    judge = ScriptedJudge({"gravity": 2})
    with pytest.raises(PhysicsAssertionError) as info:
        assert_physics(clip, "A ball falls.", law="gravity", judge=judge)
    err = info.value
    assert isinstance(err, AssertionError)
    lines = str(err).splitlines()
    assert lines[0] == "PhyJudge scored gravity 2, below its minimum of 3."
    text = str(err)
    for expected in (
        "  caption:     A ball falls.",
        f"  video:       {clip}",
        "  judge:       scripted (scripted)",
        "  gravity (solid-body mechanics): 2 < min_score 3",
        '    raw reply:   {"gravity": 2}',
        "-vv shows the prompt.",
    ):
        assert expected in text
    for number, question in enumerate(judge.rubric.questions("gravity"), 1):
        assert f"q{number}: {question}" in text
    assert [c.axis for c in err.failures] == ["gravity"]
    assert err.judgments["gravity"].score == 2


def test_assert_metric(clip: Path) -> None:
    judge = ScriptedJudge({"SA": 5})
    assert assert_metric(clip, "A cat.", metric="SA", min_score=5, judge=judge).score == 5
    with pytest.raises(InputError, match="Did you mean 'persistence'"):
        assert_metric(clip, "A cat.", metric="persistance", judge=judge)
    with pytest.raises(InputError, match=r"assert_physics\(\.\.\., law='gravity'\)"):
        assert_metric(clip, "A cat.", metric="gravity", judge=judge)


def test_assert_video_reports_every_failing_axis(clip: Path) -> None:
    judge = ScriptedJudge({"SA": 5, "gravity": 2, "collision": 3, "inertia": "no idea"})
    with pytest.raises(PhysicsAssertionError) as info:
        assert_video(
            clip,
            "A ball hits a wall.",
            laws=["gravity", "collision", "inertia"],
            metrics=["SA"],
            min_score={"collision": 4},
            judge=judge,
        )
    err = info.value
    assert [c.axis for c in err.failures] == ["gravity", "collision", "inertia"]
    text = str(err)
    assert text.splitlines()[0] == (
        "PhyJudge: 3 of 4 axes failed (gravity 2 < 3, collision 3 < 4, inertia no score)."
    )
    assert "  collision (solid-body mechanics): 3 < min_score 4" in text
    assert "raw reply: 'no idea'" in text
    assert "  passed:      SA 5 >= min_score 3" in text
    # One call for the whole video: score_many.
    assert [axis for _, _, axis in judge.calls] == ["SA", "gravity", "collision", "inertia"]


def test_assert_video_returns_every_judgment(clip: Path) -> None:
    judge = ScriptedJudge({"*": 4})
    found = assert_video(clip, "A ball.", laws="gravity", metrics=["SA", "PTV"], judge=judge)
    assert {axis: j.score for axis, j in found.items()} == {"SA": 4, "PTV": 4, "gravity": 4}


@pytest.mark.parametrize("bad", [0, 6, True, "3", 3.5])
def test_thresholds_are_whole_numbers_1_to_5(clip: Path, bad: object) -> None:
    judge = ScriptedJudge({"*": 4})
    with pytest.raises(InputError, match="whole numbers from 1 to 5"):
        assert_physics(clip, "A ball.", law="gravity", min_score=bad, judge=judge)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="whole numbers from 1 to 5"):
        assert_video(clip, "A ball.", laws=["gravity"], min_score={"gravity": bad}, judge=judge)


def test_threshold_for_an_axis_not_judged(clip: Path) -> None:
    with pytest.raises(InputError, match="min_score names 'shadow'"):
        assert_video(
            clip, "x", laws=["gravity"], min_score={"shadow": 2}, judge=ScriptedJudge({"*": 4})
        )


def test_unknown_law_and_empty_requests(clip: Path) -> None:
    judge = ScriptedJudge({"*": 4})
    with pytest.raises(InputError, match="Did you mean 'gravity'"):
        assert_physics(clip, "x", law="gravty", judge=judge)
    with pytest.raises(InputError, match="no laws and no metrics"):
        assert_video(clip, "x", judge=judge)
    with pytest.raises(InputError, match="caption"):
        assert_physics(clip, "  ", law="gravity", judge=judge)


def test_missing_video_is_a_video_error(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="does not exist"):
        assert_physics(tmp_path / "nope.mp4", "x", law="gravity", judge=ScriptedJudge({"*": 4}))


def test_outside_a_session_without_a_judge_is_a_clear_error(clip: Path) -> None:
    with pytest.raises(PhyJudgeError, match=r"found no judge.*judge=load_judge\(\)"):
        assert_physics(clip, "A ball falls.", law="gravity")


def test_criteria_reach_the_judge(clip: Path) -> None:
    judge = ScriptedJudge({"gravity": 1})
    with pytest.raises(PhysicsAssertionError) as info:
        assert_physics(clip, "x", law="gravity", criteria="Custom criterion text.", judge=judge)
    # Without -vv the prompt is not shown; the rendered prompt does carry the criterion.
    assert "Custom criterion text." not in str(info.value)
    assert (
        "Custom criterion text."
        in judge.render("x", law="gravity", criteria="Custom criterion text.").user
    )


# --------------------------------------------------------------------------- in a session

TESTS = """
from pytest_phyjudge import assert_physics, assert_video

def test_gravity():
    assert_physics("clip.mp4", "A ball falls.", law="gravity", criteria="Watch the ball.")

def test_many():
    assert_video("clip.mp4", "A ball falls.", laws=["gravity", "inertia"], metrics=["SA"])

def test_good(phyjudge):
    judgment = assert_physics("clip.mp4", "A ball falls.", law="inertia", judge=phyjudge)
    assert judgment.score == 4
"""


def session_files(kit: Kit) -> None:
    """A scripted conftest judge (gravity 2, SA 5, any other axis 4), tests calling the
    helpers, and their stand-in clip."""
    kit.conftest({"gravity": 2, "SA": 5, "*": 4})
    kit.pytester.makepyfile(test_videos=TESTS)
    (kit.pytester.path / "clip.mp4").write_bytes(b"not really a video")


def test_helpers_use_the_session_judge(pytester: pytest.Pytester, kit: Kit) -> None:
    session_files(kit)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            ">       assert_physics(*",
            "E       pytest_phyjudge.plugin.assertions.PhysicsAssertionError: "
            "PhyJudge scored gravity 2, below its minimum of 3.",
            "E         caption:     A ball falls.",
            "test_videos.py:4: PhysicsAssertionError",
        ]
    )
    # The helpers' own frames are hidden: the failure points at the test's line.
    assert "def _judge_axes" not in result.stdout.str()


def test_vv_adds_the_rendered_prompt(pytester: pytest.Pytester, kit: Kit) -> None:
    session_files(kit)
    result = pytester.runpytest("-vv", "-k", "test_gravity")
    result.stdout.fnmatch_lines(
        ["E           system:      *", "E           prompt:      *", "*Watch the ball.*"]
    )
    assert "-vv shows the prompt" not in result.stdout.str()


def test_session_min_score_is_the_default_threshold(pytester: pytest.Pytester, kit: Kit) -> None:
    session_files(kit)
    pytester.runpytest("-k", "test_good").assert_outcomes(passed=1)
    result = pytester.runpytest("-k", "test_good", "--phyjudge-min-score", "5")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*PhyJudge scored inertia 4, below its minimum of 5.*"])


def test_helper_results_are_recorded_in_the_reports(pytester: pytest.Pytester, kit: Kit) -> None:
    session_files(kit)
    result = pytester.runpytest("--phyjudge-report", "scores.json", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["gravity*solid*2*0*2*2.00*2"])
    data = json.loads((pytester.path / "scores.json").read_text())
    # One row per test function and clip, labelled with its source: no test's axis
    # overwrites another's, so the rows hold the two gravity checks the table counts.
    rows = {row["source"].split("::")[1]: row for row in data["results"]}
    assert [row["video"] for row in data["results"]] == ["clip", "clip#2", "clip#3"]
    assert {name: list(row["checks"]) for name, row in rows.items()} == {
        "test_gravity": ["gravity"],
        "test_many": ["SA", "gravity", "inertia"],
        "test_good": ["inertia"],
    }
    video = rows["test_many"]
    assert video["prompt"] == "A ball falls." and video["SA"] == 5
    assert rows["test_good"]["physical"]["laws"]["inertia"] == {"score": 4, "status": "scored"}
    assert rows["test_good"]["checks"]["inertia"]["nodeid"] == "test_videos.py::test_good"
    junit = (pytester.path / "junit.xml").read_text()
    assert '<property name="phyjudge_axis" value="inertia" />' in junit


def test_a_missing_video_shows_no_plugin_traceback(pytester: pytest.Pytester, kit: Kit) -> None:
    session_files(kit)
    (pytester.path / "clip.mp4").unlink()
    result = pytester.runpytest("-k", "test_gravity")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E       pytest_phyjudge._exceptions.VideoError: Video *"])
    assert "video.py" not in result.stdout.str()


class _DistributionJudge(ScriptedJudge):
    """A scripted judge that also scripts a distribution over the digits 1-5."""

    def __init__(self, probs: tuple[float, ...]) -> None:
        score = 1 + max(range(5), key=lambda i: probs[i])
        super().__init__({"*": score})
        self.probs = probs
        self.settings = {"scoring": "distribution"}

    def _score_axes(self, video, caption, axes, criteria):  # type: ignore[override]
        import dataclasses

        done = super()._score_axes(video, caption, axes, criteria)
        expected = sum((i + 1) * p for i, p in enumerate(self.probs))
        return {
            a: dataclasses.replace(j, probs=self.probs, expected=expected) for a, j in done.items()
        }


def test_distribution_gates(clip: Path) -> None:

    confident = _DistributionJudge((0.0, 0.0, 0.1, 0.2, 0.7))  # expected 4.6, P(>=3) = 1.0
    torn = _DistributionJudge((0.3, 0.0, 0.0, 0.3, 0.4))  # argmax 5, expected 3.5, P(>=3) 0.7
    ok = assert_physics(
        clip, "A ball falls.", law="gravity", min_expected=4.5, min_prob=0.95, judge=confident
    )
    assert ok.expected == pytest.approx(4.6)
    assert_physics(clip, "A ball falls.", law="gravity", min_expected=3.5, judge=torn)
    with pytest.raises(PhysicsAssertionError) as info:
        assert_physics(clip, "A ball falls.", law="gravity", min_prob=0.8, judge=torn)
    text = str(info.value)
    assert "misses its gate" in text and "P(score >= 3) 0.70 < min_prob 0.8" in text
    assert "1: 0.30" in text
    with pytest.raises(PhysicsAssertionError, match=r"expected 3\.50 < min_expected 3\.6"):
        assert_physics(clip, "A ball falls.", law="gravity", min_expected=3.6, judge=torn)
    with pytest.raises(InputError, match="--phyjudge-scoring distribution"):
        assert_physics(
            clip, "A ball falls.", law="gravity", min_prob=0.5, judge=ScriptedJudge({"*": 4})
        )
    with pytest.raises(InputError, match=r"min_prob is 1\.5"):
        assert_physics(clip, "A ball falls.", law="gravity", min_prob=1.5, judge=confident)


def test_a_reply_without_a_score_is_the_judges_failure_not_an_assertion(clip: Path) -> None:
    judge = ScriptedJudge({"gravity": "I would rather not say", "SA": 5})
    with pytest.raises(JudgeOutputError) as info:
        assert_video(clip, "A ball falls.", laws=["gravity"], metrics=["SA"], judge=judge)
    assert not isinstance(info.value, AssertionError)
    assert info.value.raw == "I would rather not say"
    text = str(info.value)
    assert text.startswith("PhyJudge gave gravity no score")
    assert text.count("I would rather not say") == 1  # the raw reply, shown once
    # Beside a real low score, it is an assertion failure that lists both.
    judge = ScriptedJudge({"gravity": "no idea", "SA": 1})
    with pytest.raises(PhysicsAssertionError, match=r"SA 1 < 3, gravity no score"):
        assert_video(clip, "A ball falls.", laws=["gravity"], metrics=["SA"], judge=judge)
