"""Physics assertions as ordinary pytest tests, on the clips render_clips.py draws.

Each assertion asks the session's judge (the real PhyJudge-9B unless ``--phyjudge-judge``
says otherwise) to score one axis of a clip, and fails with the score, the threshold, the
judge's raw reply and the sub-questions it checked. The violation clips are marked
``xfail(raises=AssertionError)``: a failed physics assertion is the expected outcome, but
anything else (a judge that cannot be loaded, a missing video) still fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_phyjudge import Judge, assert_metric, assert_physics, assert_video

VIDEOS = Path(__file__).resolve().parent / "videos"

DROP = (
    "A red rubber ball is dropped from about two metres above a wooden floor. It falls "
    "faster and faster, hits the floor and bounces several times, each bounce lower than "
    "the last."
)
WALL = (
    "A red rubber ball rolls across a wooden floor towards a low concrete wall that runs the "
    "length of the room. The ball hits the wall and bounces back."
)
THROW = (
    "A red rubber ball is thrown across a room. It flies up in an arc, comes back down and "
    "lands on the wooden floor."
)
PUSH = (
    "A red rubber ball is pushed across a rough concrete floor. Friction with the floor slows "
    "it down until it comes to rest."
)


def test_dropped_ball_falls_under_gravity() -> None:
    assert_physics(VIDEOS / "ball_falls.mp4", DROP, law="gravity", min_score=3)


def test_dropped_ball_stays_the_same_ball() -> None:
    assert_metric(VIDEOS / "ball_falls.mp4", DROP, metric="persistence", min_score=3)


def test_dropped_ball_on_several_axes() -> None:
    # One call, several axes, all checked: the failure lists every axis that fell short.
    # A dict sets a threshold per axis (the rest keep the default, 3): a cartoon clip is
    # allowed a lower prompt-alignment score than a real video would be.
    judgments = assert_video(
        VIDEOS / "ball_falls.mp4",
        DROP,
        laws=["gravity", "collision"],
        metrics=["SA", "PTV"],
        min_score={"SA": 2},
    )
    assert set(judgments) == {"SA", "PTV", "gravity", "collision"}


def test_the_session_judge_as_a_fixture(phyjudge: Judge) -> None:
    # The `phyjudge` fixture is the session's judge itself, for what the assertions do not
    # cover: here, a plain score with the reply it came from (no threshold: a plain assert
    # on the score would fail whatever --phyjudge-verdicts says; use the helpers for that).
    judgment = phyjudge.score(VIDEOS / "ball_falls.mp4", DROP, law="collision")
    assert 1 <= judgment.score <= 5, f"collision scored {judgment.score}; reply {judgment.raw!r}"


@pytest.mark.xfail(
    raises=AssertionError,
    strict=False,
    reason="the clip violates impenetrability on purpose; a good judge fails it",
)
def test_wall_stops_the_ball() -> None:
    assert_physics(VIDEOS / "ball_through_wall.mp4", WALL, law="impenetrability", min_score=3)


@pytest.mark.xfail(
    raises=AssertionError,
    strict=False,
    reason="the ball freezes in mid-air on purpose; a good judge fails gravity",
)
def test_thrown_ball_comes_down() -> None:
    assert_physics(VIDEOS / "ball_stops_midair.mp4", THROW, law="gravity", min_score=3)


@pytest.mark.xfail(
    raises=AssertionError,
    strict=False,
    reason="the ball never slows on a rough floor on purpose; a good judge fails it",
)
def test_friction_slows_the_ball() -> None:
    # `criteria=` replaces the rubric's criterion for the law with the one that matters
    # here. Scores are calibrated on the rubric's own text, so use it sparingly.
    assert_physics(
        VIDEOS / "ball_slides_forever.mp4",
        PUSH,
        law="inertia",
        min_score=3,
        criteria=(
            "A ball sliding on a rough floor is acted on by friction: it must lose speed and "
            "come to rest, not keep a constant speed."
        ),
    )
