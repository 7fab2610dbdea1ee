"""A degenerate judge is named: one digit everywhere, one-hot distributions, unparseable
replies; in pytest's summary, score-dir, scores.json, the HTML page and the CI summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.cli.main import main
from pytest_phyjudge.reporting.health import (
    MIN_JUDGMENTS,
    ONE_HOT,
    ONE_HOT_MEAN,
    ONE_SCORE,
    UNPARSEABLE,
    Reply,
    judge_health,
)
from pytest_phyjudge.reporting.html.model import report_view
from pytest_phyjudge.scores import check_scores
from tests.pytester_kit import Kit


def _replies(axis: str, scores: list[int | None], probs=None) -> list[Reply]:
    return [Reply(axis, s, probs, unparseable=s is None) for s in scores]


def test_an_axis_scored_4_on_20_clips_warns():
    (warning,) = judge_health(_replies("gravity", [4] * MIN_JUDGMENTS))
    assert (warning.axis, warning.kind, warning.digit, warning.judgments) == (
        "gravity",
        ONE_SCORE,
        4,
        20,
    )
    assert warning.message == "every gravity score was 4 across 20 clips: is the judge working?"


def test_19_clips_say_nothing():
    assert MIN_JUDGMENTS == 20
    assert judge_health(_replies("gravity", [4] * 19)) == []


def test_mixed_digits_do_not_warn_and_axes_are_apart():
    replies = _replies("gravity", [4] * 19 + [3]) + _replies("SA", [2, 3, 4, 5] * 10)
    assert judge_health(replies) == []
    # Another axis' replies never complete an axis: 19 + 1 of another axis is not 20.
    assert judge_health(_replies("gravity", [4] * 19) + _replies("SA", [4])) == []


def test_nearly_one_hot_distributions_on_one_digit_warn():
    hot = (0.0, 0.01, 0.02, 0.96, 0.01)
    spread = (0.05, 0.15, 0.3, 0.4, 0.1)
    # Greedy scores differ on a few clips, but the distributions sit on 4.
    replies = _replies("inertia", [4] * 22, hot) + _replies("inertia", [3, 5], hot)
    (warning,) = judge_health(replies)
    assert (warning.kind, warning.digit, warning.judgments, warning.count) == (ONE_HOT, 4, 24, 22)
    assert "96%" in warning.message and "inertia" in warning.message
    assert ONE_HOT_MEAN == 0.95
    # Spread distributions (a judge that weighs the clip) do not warn.
    assert judge_health(_replies("inertia", [4] * 22 + [3, 5], spread)) == []
    # All one digit is said once (as one digit), not twice.
    assert [w.kind for w in judge_health(_replies("inertia", [4] * 24, hot))] == [ONE_SCORE]


def test_more_than_a_fifth_unparseable_warns():
    replies = _replies("SA", [None] * 5 + [1, 2, 3, 4, 5] * 3)  # 5 of 20: a quarter
    (warning,) = judge_health(replies)
    assert (warning.kind, warning.count, warning.judgments) == (UNPARSEABLE, 5, 20)
    assert warning.message.startswith("SA: 5 of 20 replies held no score")
    # Exactly a fifth does not warn; errors that are not replies do not count.
    assert judge_health(_replies("SA", [None] * 4 + [1, 2, 3, 4] * 4)) == []


def test_the_report_field_is_read_and_checked():
    (warning,) = judge_health(_replies("gravity", [4] * 20))
    document = {"meta": {"judge_warnings": [warning.to_dict()]}, "results": []}
    read = check_scores(json.loads(json.dumps(document)), "r.json")
    assert read.meta.judge_warnings[0]["message"] == warning.message
    assert report_view(read, Path(".")).judge_warnings == (warning.message,)
    bad = {"meta": {"judge_warnings": [{**warning.to_dict(), "axis": "gravityy"}]}, "results": []}
    with pytest.raises(InputError, match=r"meta\.judge_warnings\[0\]\.axis = 'gravityy'"):
        check_scores(bad, "r.json")
    with pytest.raises(InputError, match=r"meta\.judge_warnings = 'x'"):
        check_scores({"meta": {"judge_warnings": "x"}, "results": []}, "r.json")


CASES = "\n".join(
    f"  - {{id: c{i:02d}, prompt: A ball falls {i}., laws: [gravity]}}" for i in range(20)
)


def test_pytest_names_a_judge_that_answers_4_everywhere(
    kit: Kit, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    kit.conftest({"*": 4})
    kit.suite(f"videos: clips/{{id}}.mp4\ndefaults: {{metrics: [SA]}}\ncases:\n{CASES}\n")
    for i in range(20):
        kit.clip(f"c{i:02d}")
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest(
        "--phyjudge-report", "out/scores.json", "--phyjudge-html", "out/html", "-q"
    )
    result.assert_outcomes(passed=40)
    result.stdout.fnmatch_lines(
        [
            "*judge warning: every SA score was 4 across 20 clips: is the judge working?*",
            "*judge warning: every gravity score was 4 across 20 clips: is the judge working?*",
        ]
    )
    warnings = kit.report()["meta"]["judge_warnings"]
    assert [(w["axis"], w["kind"], w["digit"], w["judgments"]) for w in warnings] == [
        ("SA", "one_score", 4, 20),
        ("gravity", "one_score", 4, 20),
    ]
    page = (pytester.path / "out/html/index.html").read_text()
    assert "judge warning: every gravity score was 4 across 20 clips" in page
    assert "**Judge warning:** every gravity score was 4" in summary.read_text()


def test_pytest_with_varied_scores_warns_of_nothing(kit: Kit, pytester: pytest.Pytester):
    kit.conftest({"SA": 4, "*": 3})
    kit.suite("videos: clips/{id}.mp4\ncases: [{id: c00, prompt: A ball falls., laws: [gravity]}]")
    kit.clip("c00")
    result = pytester.runpytest("--phyjudge-report", "out/scores.json")
    assert "judge warning" not in result.stdout.str()
    assert kit.report()["meta"]["judge_warnings"] == []


def test_score_dir_names_a_degenerate_judge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    videos = tmp_path / "videos"
    videos.mkdir()
    entries = []
    for i in range(20):
        (videos / f"c{i:02d}.mp4").write_bytes(f"stand-in {i}".encode())
        entries.append({"video": f"c{i:02d}", "prompt": f"A ball {i}.", "physical_laws": []})
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"prompts": entries}))
    # SA: 4 everywhere; PTV: a quarter of the replies hold no score.
    (tmp_path / "degenerate_judges.py").write_text(
        "from pytest_phyjudge import ScriptedJudge\n\n"
        "def reply(axis, caption, video):\n"
        "    n = int(video.stem[1:])\n"
        "    if axis == 'PTV':\n"
        "        return 'no idea' if n % 4 == 0 else 1 + n % 5\n"
        "    return 4\n\n"
        "def make():\n"
        "    return ScriptedJudge(reply)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "scores.json"
    code = main(
        [
            *("score-dir", "--videos", str(videos), "--prompts", str(prompts)),
            *("--out", str(out), "--metrics", "SA", "PTV", "--judge", "degenerate_judges:make"),
            *("--cache-mode", "off"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "judge warning: every SA score was 4 across 20 clips: is the judge working?" in err
    assert "judge warning: PTV: 5 of 20 replies held no score" in err
    warnings = json.loads(out.read_text())["meta"]["judge_warnings"]
    assert [(w["axis"], w["kind"], w["count"]) for w in warnings] == [
        ("SA", "one_score", 20),
        ("PTV", "unparseable", 5),
    ]
