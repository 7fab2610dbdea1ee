"""The ``phyjudge score`` command: parity output, exit codes, and bad input without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_phyjudge.cli.main import main
from pytest_phyjudge.testing import write_test_video

CAPTION = "A ball falls onto a table."


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code)
    out, err = capsys.readouterr()
    return code, out, err


def _score(video: Path | str, adapter: Path | str, *extra: str) -> list[str]:
    return [
        "score",
        "--video",
        str(video),
        "--caption",
        CAPTION,
        "--adapter-dir",
        str(adapter),
        "--device",
        "cpu",
        *extra,
    ]


def test_print_prompt_then_one_json_line(capsys, tiny_adapter: Path, synthetic_video: Path):
    code, out, err = run_cli(
        capsys,
        *_score(
            synthetic_video,
            tiny_adapter,
            "--law",
            "gravity",
            "--print-prompt",
            "--criteria",
            "Falls at 9.8.",
        ),
    )
    assert code in (0, 3), err
    lines = out.rstrip("\n").split("\n")
    assert lines[0] == "=== system ==="
    assert "Falls at 9.8." in out and CAPTION in out
    line = json.loads(lines[-1])
    assert set(line) == {"key", "score", "raw", "stand_in"} and line["key"] == "gravity"
    assert "THESE SCORES ARE MEANINGLESS" in line["stand_in"]
    if code == 3:  # the tiny judge's random reply holds no score: shown, not hidden
        assert line["score"] is None and "raw reply" in err
    else:
        assert 1 <= line["score"] <= 5
    assert "Traceback" not in err


def test_console_script_on_a_real_clip(tiny_adapter: Path, phyground_videos: list[Path]):
    exe = Path(sys.executable).with_name("phyjudge")
    proc = subprocess.run(
        [str(exe), *_score(phyground_videos[0], tiny_adapter, "--metric", "SA", "--print-prompt")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode in (0, 3), proc.stderr
    assert "=== user (after the video) ===" in proc.stdout
    assert json.loads(proc.stdout.strip().splitlines()[-1])["key"] == "SA"
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    good = write_test_video(folder / "good.mp4", frames=24)
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    text = folder / "text.mp4"
    text.write_text("this is not a video\n" * 50)
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    one_frame = write_test_video(folder / "one.mp4", frames=1)
    return {
        "missing": folder / "nope.mp4",
        "directory": folder,
        "empty": empty,
        "text": text,
        "truncated": truncated,
        "one_frame": one_frame,
    }


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing", "does not exist"),
        ("directory", "is a directory"),
        ("empty", "zero-byte"),
        ("text", "cannot be decoded"),
        ("truncated", "cannot be decoded"),
        ("one_frame", "1 frame(s)"),
    ],
)
def test_bad_video_exits_2_with_one_paragraph(capsys, bad_videos, tiny_adapter, case, words):
    code, out, err = run_cli(capsys, *_score(bad_videos[case], tiny_adapter, "--law", "gravity"))
    assert code == 2
    assert words in err and str(bad_videos[case]) in err
    assert "Traceback" not in err and out == ""
    assert err.startswith("phyjudge: error: ") and err.count("\n") == 1


def test_unknown_law_suggests_the_nearest(capsys, synthetic_video, tiny_adapter):
    code, _, err = run_cli(capsys, *_score(synthetic_video, tiny_adapter, "--law", "gravty"))
    assert code == 2 and "'gravty'" in err and "Did you mean 'gravity'" in err
    code, _, err = run_cli(capsys, *_score(synthetic_video, tiny_adapter, "--metric", "sa"))
    assert code == 2 and "Did you mean 'SA'" in err


@pytest.mark.parametrize("axis_args", [[], ["--law", "gravity", "--metric", "SA"]])
def test_exactly_one_of_law_and_metric(capsys, synthetic_video, tiny_adapter, axis_args):
    code, _, err = run_cli(capsys, *_score(synthetic_video, tiny_adapter, *axis_args))
    assert code == 2 and "--law" in err and "--metric" in err and "Traceback" not in err


def test_adapter_problems_exit_4(capsys, tmp_path: Path, synthetic_video: Path):
    code, _, err = run_cli(capsys, *_score(synthetic_video, tmp_path, "--law", "gravity"))
    assert code == 4 and "adapter_config.json" in err and str(tmp_path) in err
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 32}))
    code, _, err = run_cli(capsys, *_score(synthetic_video, tmp_path, "--law", "gravity"))
    assert code == 4 and "names no base model" in err and "--base-model" in err
    assert "Traceback" not in err


def test_score_dir_writes_phyground_scores_and_resumes_from_the_cache(
    capsys, tmp_path: Path, tiny_adapter: Path
):
    from pytest_phyjudge.testing import write_test_video

    videos = tmp_path / "videos"
    write_test_video(videos / "gen__clip_a.mp4", seed=1)
    write_test_video(videos / "gen__clip_b.mp4", seed=2)  # one generator: one file, --out
    write_test_video(videos / "stray.mp4", seed=3)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(
        json.dumps(
            {
                "prompts": [
                    {
                        "video": "clip_a",
                        "prompt": "A ball falls.",
                        "physical_laws": ["gravity", "shadow"],
                    },
                    {
                        "video": "clip_b",
                        "prompt": "A cup spills.",
                        "physical_laws": ["flow_dynamics"],
                    },
                    {
                        "video": "clip_c",
                        "prompt": "No clip for this one.",
                        "physical_laws": ["gravity"],
                    },
                ]
            }
        )
    )
    common = [
        "score-dir",
        "--videos",
        str(videos),
        "--prompts",
        str(prompts),
        "--adapter-dir",
        str(tiny_adapter),
        "--device",
        "cpu",
        "--scoring",
        "distribution",
        "--cache",
        str(tmp_path / "cache"),
        "--metrics",
        "SA",
    ]
    code, _, err = run_cli(capsys, *common, "--out", str(tmp_path / "scores.json"))
    assert code == 0, err
    data = json.loads((tmp_path / "scores.json").read_text())
    assert data["num_videos"] == 2 and data["general_dimensions"] == ["SA", "PTV", "persistence"]
    first = data["results"][0]
    assert first["video"] == "clip_a" and first["physical_laws"] == ["gravity", "shadow"]
    assert 1 <= first["SA"] <= 5 and first["PTV"] is None
    assert set(first["physical"]["laws"]) == {"gravity", "shadow"}
    assert first["physical"]["coverage"] == 1.0
    assert data["meta"]["judge"]["kind"] == "tiny"
    assert "3 from the cache" not in err and "stray.mp4" in err and "clip_c" in err

    # Replay: no model is loaded, every judgment comes from the cache, same scores.
    code, _, err = run_cli(
        capsys, *common, "--out", str(tmp_path / "again.json"), "--cache-mode", "only"
    )
    assert code == 0 and "5 from the cache" in err
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["results"] == data["results"]


def test_cache_export_and_import(capsys, tmp_path: Path, synthetic_video: Path):
    from pytest_phyjudge import ScriptedJudge
    from pytest_phyjudge.judges.cache.judge import CachedJudge
    from pytest_phyjudge.judges.cache.store import JudgmentCache

    scripted = ScriptedJudge({"*": 4})
    recorder = CachedJudge(
        identity=scripted.identity,
        rubric=scripted.rubric,
        settings={},
        cache=JudgmentCache(tmp_path / "a"),
        load=lambda: scripted,
    )
    recorder.score_many(synthetic_video, CAPTION, ["SA", "gravity"])
    recorder.close()
    out = tmp_path / "judgments.jsonl"
    code, _, err = run_cli(capsys, "cache", "export", str(out), "--cache", str(tmp_path / "a"))
    assert code == 0
    # How to replay, in the words of both commands that can (this one has no pytest flags).
    identity = tmp_path / "judgments.identity.json"
    assert f"replay with pytest --phyjudge-identity {identity} --phyjudge-cache-mode only" in err
    assert f"or phyjudge score-dir --identity {identity} --cache-mode only" in err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # One line for the judge that made them, then one per judgment.
    assert [("judge_record" in line) for line in lines] == [True, False, False]
    assert (tmp_path / "judgments.identity.json").is_file()
    code, _, err = run_cli(capsys, "cache", "import", str(out), "--cache", str(tmp_path / "b"))
    assert code == 0 and "imported 2 new judgments" in err
    code, _, err = run_cli(capsys, "cache", "import", str(out), "--cache", str(tmp_path / "b"))
    assert code == 0 and "imported 0 new judgments" in err and "2 already there" in err
    code, out_text, _ = run_cli(capsys, "cache", "info", "--cache", str(tmp_path / "b"))
    assert "2 judgments" in out_text
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "k"}\n')
    code, _, err = run_cli(capsys, "cache", "import", str(bad), "--cache", str(tmp_path / "b"))
    assert code == 2 and "bad.jsonl:1" in err and "Traceback" not in err


def test_score_dir_keeps_every_generators_clip(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Several generators' clips of one prompt (``<generator>__<id>.mp4``) are all judged:
    one PhyGround results file per generator, none dropped."""
    from pytest_phyjudge.testing import write_test_video

    videos = tmp_path / "videos"
    for seed, generator in enumerate(("alpha", "beta", "gamma")):
        for clip in ("drop", "roll"):
            write_test_video(videos / f"{generator}__{clip}.mp4", frames=4, seed=seed)
    prompts = tmp_path / "prompts.json"
    entries = [
        {"video": n, "prompt": f"A ball {n}s.", "physical_laws": ["gravity"]}
        for n in ("drop", "roll")
    ]
    prompts.write_text(json.dumps({"prompts": entries}))
    (tmp_path / "scripted_judges.py").write_text(
        "from pytest_phyjudge import ScriptedJudge\n\n"
        "def make():\n"
        "    return ScriptedJudge(lambda axis, caption, video: 1 + len(video.stem) % 5)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "scores.json"
    code, _, err = run_cli(
        capsys,
        *("score-dir", "--videos", str(videos), "--prompts", str(prompts)),
        *("--out", str(out), "--metrics", "SA", "--judge", "scripted_judges:make"),
        "--cache",
        str(tmp_path / "cache"),
    )
    assert code == 0, err
    assert not out.exists() and "without a prompt" not in err
    # A scripted judge is a stand-in: said on stderr, at the end too, and in every file.
    assert err.count("a stand-in judge: the scores are meaningless") == 3
    for generator in ("alpha", "beta", "gamma"):
        data = json.loads((tmp_path / f"scores.{generator}.json").read_text())
        assert data["meta"]["scores_meaningless"] is True
        assert "a scripted test stand-in for PhyJudge" in data["meta"]["stand_in"]
        assert data["meta"]["generator"] == generator
        assert [r["video"] for r in data["results"]] == ["drop", "roll"]
        for row in data["results"]:
            assert row["generator"] == generator
            assert Path(row["file"]).name == f"{generator}__{row['video']}.mp4"
            # The scripted judge scores by file name: each generator's own clip was judged.
            assert row["SA"] == 1 + len(Path(row["file"]).stem) % 5


@pytest.mark.parametrize("value", ["1", "131071", "lots"])
def test_a_pixel_budget_too_small_for_a_frame_is_a_usage_error(capsys, value: str):
    args = ["score", "--video", "v.mp4", "--caption", "c", "--law", "gravity"]
    code, _, err = run_cli(capsys, *args, "--max-pixels", value)
    assert code == 2
    assert "--max-pixels" in err and "at least 131072 pixels" in err and "Traceback" not in err
