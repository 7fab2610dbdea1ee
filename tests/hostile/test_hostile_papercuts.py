"""Issue 22's papercuts: what a newcomer hit on a first run, each pinned by a test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_phyjudge.cli.main import main
from pytest_phyjudge.testing import write_test_video

SCRIPTED = (
    "from pytest_phyjudge import ScriptedJudge\n\n"
    "def make():\n"
    "    return ScriptedJudge(lambda axis, caption, video: 1 + len(video.stem) % 5)\n"
)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def scripted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``--judge`` of a scripted judge (a stand-in whose scores mean nothing)."""
    (tmp_path / "papercut_judges.py").write_text(SCRIPTED)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "papercut_judges:make"


def _prompts(tmp_path: Path, names: tuple[str, ...]) -> Path:
    prompts = tmp_path / "prompts.json"
    entries = [{"video": n, "prompt": f"A ball {n}s.", "physical_laws": ["gravity"]} for n in names]
    prompts.write_text(json.dumps({"prompts": entries}))
    return prompts


def test_score_says_a_stand_in_judges_scores_are_meaningless(capsys, tmp_path, scripted):
    video = write_test_video(tmp_path / "clip.mp4", frames=4)
    code, out, err = run_cli(
        capsys,
        *("score", "--video", str(video), "--caption", "A ball falls."),
        *("--law", "gravity", "--judge", scripted),
    )
    assert code == 0, err
    assert json.loads(out)["key"] == "gravity"
    assert err.count("MEANINGLESS") == 1 and "scripted" in err


def test_score_dir_says_a_stand_in_judges_scores_are_meaningless(capsys, tmp_path, scripted):
    write_test_video(tmp_path / "videos" / "drop.mp4", frames=4)
    code, _, err = run_cli(
        capsys,
        *("score-dir", "--videos", str(tmp_path / "videos")),
        *("--prompts", str(_prompts(tmp_path, ("drop",))), "--out", str(tmp_path / "s.json")),
        *("--metrics", "SA", "--judge", scripted, "--cache-mode", "off"),
    )
    assert code == 0, err
    assert err.count("MEANINGLESS") == 1


def test_score_dir_keeps_the_generator_when_no_two_clips_share_a_prompt(capsys, tmp_path, scripted):
    """``<generator>__<id>.mp4`` clips of several generators, each of its own prompt: one
    results file per generator, every row naming its generator, and the report shows it."""
    videos = tmp_path / "videos"
    write_test_video(videos / "veo__drop.mp4", frames=4)
    write_test_video(videos / "sora__roll.mp4", frames=4, seed=1)
    out = tmp_path / "scores.json"
    code, _, err = run_cli(
        capsys,
        *(
            "score-dir",
            "--videos",
            str(videos),
            "--prompts",
            str(_prompts(tmp_path, ("drop", "roll"))),
        ),
        *("--out", str(out), "--metrics", "SA", "--judge", scripted, "--cache-mode", "off"),
    )
    assert code == 0, err
    assert not out.exists()
    for generator, video in (("veo", "drop"), ("sora", "roll")):
        data = json.loads((tmp_path / f"scores.{generator}.json").read_text())
        assert data["meta"]["generator"] == generator
        assert [(r["video"], r["generator"]) for r in data["results"]] == [(video, generator)]
    code, _, err = run_cli(
        capsys, "report", str(tmp_path / "scores.veo.json"), "--html", str(tmp_path / "html")
    )
    assert code == 0, err
    page = (tmp_path / "html" / "index.html").read_text()
    assert "generator veo" in page


def test_score_dir_of_one_generator_writes_out_and_keeps_its_name(capsys, tmp_path, scripted):
    videos = tmp_path / "videos"
    write_test_video(videos / "veo__drop.mp4", frames=4)
    out = tmp_path / "scores.json"
    code, _, err = run_cli(
        capsys,
        *("score-dir", "--videos", str(videos), "--prompts", str(_prompts(tmp_path, ("drop",)))),
        *("--out", str(out), "--metrics", "SA", "--judge", scripted, "--cache-mode", "off"),
    )
    assert code == 0, err
    data = json.loads(out.read_text())
    assert data["meta"]["generator"] == "veo" and data["results"][0]["generator"] == "veo"


@pytest.mark.parametrize("metric", ["SA", "PTV", "persistence"])
def test_assert_physics_with_a_metric_points_to_assert_metric(metric: str):
    from pytest_phyjudge import ScriptedJudge, assert_physics

    with pytest.raises(ValueError) as caught:
        assert_physics("v.mp4", "A ball.", law=metric, judge=ScriptedJudge({"*": 4}))
    message = str(caught.value)
    assert f"assert_metric(..., metric={metric!r})" in message and "general metric" in message
    assert "Did you mean" not in message


def test_assert_metric_with_a_law_points_to_assert_physics():
    from pytest_phyjudge import ScriptedJudge, assert_metric

    with pytest.raises(ValueError) as caught:
        assert_metric("v.mp4", "A ball.", metric="gravity", judge=ScriptedJudge({"*": 4}))
    assert "assert_physics(..., law='gravity')" in str(caught.value)


def test_the_cli_names_its_own_flag_for_the_other_kind(capsys, tmp_path):
    video = write_test_video(tmp_path / "clip.mp4", frames=4)
    code, _, err = run_cli(capsys, "score", "--video", str(video), "--caption", "c", "--law", "SA")
    assert code == 2 and "--metric SA" in err and "Did you mean" not in err


SUITE_TEXT = "suite: real\ncases:\n  - id: drop\n    prompt: A ball falls.\n    laws: [gravity]\n"


def test_a_suite_named_on_the_command_line_but_not_like_a_suite_is_named(
    pytester: pytest.Pytester,
):
    pytester.makefile(".yaml", real=SUITE_TEXT)
    result = pytester.runpytest("real.yaml")
    text = result.stdout.str() + result.stderr.str()
    assert "real.yaml is not collected as a suite" in text
    assert "phyjudge_suite_glob" in text and "real.phyjudge.yaml" in text
    assert result.ret != 0


def test_a_folder_whose_only_suite_is_misnamed_says_so_when_nothing_ran(
    pytester: pytest.Pytester,
):
    folder = pytester.mkdir("suites")
    (folder / "real.yaml").write_text(SUITE_TEXT)
    (folder / "other.yml").write_text("just: config\n")
    result = pytester.runpytest("suites")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    text = result.stdout.str()
    assert text.count("is not collected as a suite") == 1
    assert "real.yaml" in text and "phyjudge_suite_glob" in text and "other.yml" not in text


def test_a_misnamed_yaml_beside_collected_tests_is_left_alone(pytester: pytest.Pytester):
    pytester.makefile(".yaml", real=SUITE_TEXT)
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == 0 and "not collected as a suite" not in result.stdout.str()


def test_an_unknown_option_of_a_subcommand_shows_that_subcommands_usage(capsys):
    code, _, err = run_cli(capsys, "agree", "a.json", "b.json", "--fail-on-regression")
    assert code == 2
    assert "usage: phyjudge agree" in err and "phyjudge agree: error:" in err
    assert "--fail-on-regression is an option of compare" in err and "not of agree" in err
    code, _, err = run_cli(capsys, "cache", "info", "--bogus")
    assert code == 2 and "usage: phyjudge cache info" in err and "--bogus" in err


def _runs(tmp_path: Path, a_score: int, b_score: int) -> tuple[Path, Path]:
    """Two reports of 12 clips on SA whose scores differ by a constant."""
    paths = []
    for name, score in (("a", a_score), ("b", b_score)):
        rows = [{"video": f"clip{i}", "SA": score} for i in range(12)]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"meta": {"generator": f"gen-{name}"}, "results": rows}))
        paths.append(path)
    return paths[0], paths[1]


def test_compare_markdown_labels_its_flag_column_and_marks_improvements(capsys, tmp_path):
    a, b = _runs(tmp_path, 3, 4)
    code, out, err = run_cli(capsys, "compare", str(a), str(b), "--format", "markdown")
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.startswith("| axis"))
    assert "|  |" not in header and header.endswith("| significant |")
    assert any(line.startswith("| SA |") and "IMPROVEMENT" in line for line in out.splitlines())


def test_the_forest_plot_writes_p_as_the_table_does_and_marks_improvements(
    tmp_path, monkeypatch: pytest.MonkeyPatch
):
    from pytest_phyjudge.regression.compare import compare, read_report
    from pytest_phyjudge.reporting import charts

    a, b = _runs(tmp_path, 3, 4)
    drawn = {}
    save = charts._save

    def keep(fig, path):
        drawn["texts"] = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
        drawn["title"] = fig.axes[0].get_title()
        return save(fig, path)

    monkeypatch.setattr(charts, "_save", keep)
    chart = charts.write_forest(compare(read_report(a), read_report(b)), tmp_path / "f.png")
    assert "p adj <0.001" in drawn["texts"] and "p <0.001" in drawn["texts"]
    assert not any("0.000" in text for text in drawn["texts"])
    assert "green: significant improvement" in drawn["title"]
    from PIL import Image

    with Image.open(chart) as image:
        colours = {rgb for _, rgb in image.convert("RGB").getcolors(1_000_000)}
    assert (0x1E, 0x84, 0x49) in colours  # charts.IMPROVEMENT_COLOR


def test_score_with_the_tiny_judge_writes_nothing_into_the_current_folder(
    capsys, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    """The tiny judge is built under the temp folder, never in ``./.pytest_cache``."""
    from pytest_phyjudge.judges import factory

    asked: list[Path] = []

    def ensure(folder):
        asked.append(Path(folder))
        raise factory.JudgeLoadError("stop here: the folder is what this test checks")

    monkeypatch.setattr(factory, "ensure_tiny_judge", ensure)
    video = write_test_video(tmp_path / "clip.mp4", frames=4)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code, _, err = run_cli(
        capsys,
        *("score", "--video", str(video), "--caption", "c", "--law", "gravity"),
        *("--judge", "tiny"),
    )
    assert code == 4 and "stop here" in err
    assert asked and asked[0].is_absolute() and here not in asked[0].parents
    assert list(here.iterdir()) == []


@pytest.mark.parametrize("output", ["scores.json", "scores-sheets/ball.png", "report/index.html"])
def test_the_example_suites_outputs_are_ignored_by_git(output: str):
    """The README's first commands write ``scores.json`` (its sheets beside it) and
    ``report/`` at the checkout's root: none shows up as untracked."""
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    root = Path(__file__).resolve().parents[2]
    found = subprocess.run([git, "check-ignore", "--no-index", "-q", output], cwd=root, check=False)
    assert found.returncode == 0, f"{output} is not ignored by .gitignore"
