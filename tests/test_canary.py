"""``phyjudge canary record`` / ``check``: behaviour compared, not labels; a canary file from
anyone is read strictly (clips inside its folder, bytes as recorded)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_phyjudge.cli.main import main
from pytest_phyjudge.testing import write_test_video

JUDGES = """
from pytest_phyjudge import ScriptedJudge

def same():
    return ScriptedJudge({"gravity": 2, "*": 4}, name="judge-a")

def renamed():
    return ScriptedJudge({"gravity": 2, "*": 4}, name="judge-b")

def impostor():
    return ScriptedJudge({"gravity": 5, "*": 4}, name="judge-a")

def other():
    return ScriptedJudge({"gravity": 5, "SA": 1, "*": 4}, name="judge-b")
"""


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = int(exc.code)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two clips and their prompt set, and importable scripted judges."""
    for seed, name in enumerate(("drop", "roll")):
        write_test_video(tmp_path / "clips" / f"{name}.mp4", frames=4, seed=seed)
    entries = [
        {"video": n, "prompt": f"A ball {n}s.", "physical_laws": ["gravity"]}
        for n in ("drop", "roll")
    ]
    (tmp_path / "prompts.json").write_text(json.dumps({"prompts": entries}))
    (tmp_path / "canary_judges.py").write_text(JUDGES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def record(capsys, folder: Path, *extra: str) -> Path:
    out = folder / "canaries.json"
    code, _, err = run_cli(
        capsys,
        *("canary", "record", "--videos", "clips", "--prompts", "prompts.json"),
        *("--out", str(out), "--judge", "canary_judges:same", *extra),
    )
    assert code == 0, err
    return out


def check(capsys, canaries: Path, judge: str = "same", *extra: str) -> tuple[int, str, str]:
    return run_cli(
        capsys, "canary", "check", str(canaries), "--judge", f"canary_judges:{judge}", *extra
    )


def test_record_writes_a_versioned_file_naming_clips_relative_to_it(capsys, folder: Path):
    canaries = json.loads(record(capsys, folder).read_text())
    assert canaries["format"] == "pytest-phyjudge-canaries" and canaries["version"] == 1
    assert canaries["judge"]["adapter"] == "judge-a"
    assert canaries["settings"] == {"fps": 2.0, "max_pixels": 230400, "max_new_tokens": 64}
    assert "pytest-phyjudge" in canaries["versions"]
    items = canaries["items"]
    # SA, PTV, persistence and the prompt's law, for each of the two clips.
    assert [(i["clip"], i["axis"]) for i in items[:4]] == [
        ("clips/drop.mp4", axis) for axis in ("SA", "PTV", "persistence", "gravity")
    ]
    assert len(items) == 8
    gravity = items[3]
    assert gravity["greedy"] == {"reply": '{"gravity": 2}', "digit": 2}
    # A scripted judge gives no distribution: its distribution pass's digit stands for it.
    assert gravity["distribution"] == {"probs": None, "expected": 2.0}


def test_axes_and_limit_choose_what_is_recorded(capsys, folder: Path):
    out = record(capsys, folder, "--axes", "SA", "gravity", "--limit", "1")
    items = json.loads(out.read_text())["items"]
    assert [(i["clip"], i["axis"]) for i in items] == [
        ("clips/drop.mp4", "SA"),
        ("clips/drop.mp4", "gravity"),
    ]


def test_the_same_judge_shows_the_same_behaviour(capsys, folder: Path):
    code, out, err = check(capsys, record(capsys, folder))
    assert code == 0, err
    assert "same behaviour: judge-a" in out
    assert "cost: 16 judge calls" in out
    assert "all" in out and "1.00" in out


def test_other_digits_under_another_identity_are_drift_naming_the_axes(capsys, folder: Path):
    code, out, _ = check(capsys, record(capsys, folder), "other")
    assert code == 7
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("drift:")
    assert "gravity: digit agreement 0.00" in verdict and "SA: digit agreement 0.00" in verdict
    assert "PTV" not in verdict and "persistence" not in verdict


def test_the_recorded_identity_with_other_behaviour_is_the_loudest(capsys, folder: Path):
    code, out, _ = check(capsys, record(capsys, folder), "impostor")
    assert code == 7
    assert "this judge claims judge-a" in out and "does not answer like it" in out
    assert "gravity" in out.strip().splitlines()[-1]


def test_the_same_behaviour_under_a_new_identity_is_a_note(capsys, folder: Path):
    code, out, _ = check(capsys, record(capsys, folder), "renamed")
    assert code == 0
    assert "same behaviour under a new identity (a note)" in out and "judge-b" in out


def test_tolerances_are_configurable(capsys, folder: Path):
    canaries = record(capsys, folder)
    # One axis in four differs everywhere: a quarter of the pooled digits; gravity all.
    code, _, _ = check(
        capsys, canaries, "impostor", "--max-disagree", "1", "--max-mean-diff", "4", "--max-tv", "1"
    )
    assert code == 0
    code, _, err = check(capsys, canaries, "same", "--max-tv", "2")
    assert code == 2 and "--max-tv" in err


def test_a_missing_clip_is_named(capsys, folder: Path):
    canaries = record(capsys, folder)
    (folder / "clips" / "roll.mp4").unlink()
    code, _, err = check(capsys, canaries)
    assert code == 2 and "'clips/roll.mp4' is missing" in err and "Traceback" not in err


def test_a_clip_whose_bytes_changed_is_named(capsys, folder: Path):
    canaries = record(capsys, folder)
    write_test_video(folder / "clips" / "drop.mp4", frames=4, seed=9)
    code, _, err = check(capsys, canaries)
    assert code == 2 and "'clips/drop.mp4' has changed" in err


def _edited(canaries: Path, edit) -> Path:
    data = json.loads(canaries.read_text())
    edit(data)
    canaries.write_text(json.dumps(data))
    return canaries


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda d: d.update(version=2), "version is 2"),
        (lambda d: d.update(format="other"), "format is 'other'"),
        (lambda d: d["items"][2]["distribution"].update(probs=[0.5, 0.5, 0.5, 0, 0]), "probs"),
        (lambda d: d["items"][1].update(axis="telekinesis"), "items[1].axis"),
        (lambda d: d["items"][0]["greedy"].update(digit=9), "items[0].greedy.digit"),
        (lambda d: d["items"][0].update(clip_sha256="x"), "items[0].clip_sha256"),
        (lambda d: d["items"][0]["distribution"].update(expected=float("nan")), "expected"),
        (lambda d: d["items"][0].update(extra=1), "unknown keys 'extra'"),
        (lambda d: d.update(items=[]), "items is not a list"),
        (lambda d: d["items"].append(d["items"][0]), "items[8] repeats"),
        (lambda d: d["items"][0].update(clip="../outside.mp4"), "items[0].clip is '../outside"),
        (lambda d: d["items"][0].update(clip="/etc/passwd"), "items[0].clip is '/etc/passwd'"),
    ],
)
def test_a_bad_canary_file_is_named_by_its_json_path(capsys, folder: Path, edit, named: str):
    canaries = _edited(record(capsys, folder), edit)
    code, _, err = check(capsys, canaries)
    assert code == 2, err
    assert named in err and "Traceback" not in err


def test_a_clip_that_links_out_of_the_folder_is_refused(capsys, folder: Path, tmp_path_factory):
    canaries = record(capsys, folder)
    outside = tmp_path_factory.mktemp("outside") / "drop.mp4"
    os.replace(folder / "clips" / "drop.mp4", outside)
    (folder / "clips" / "drop.mp4").symlink_to(outside)
    code, _, err = check(capsys, canaries)
    assert code == 2 and "'clips/drop.mp4' leads out of the canary file's folder" in err


def test_a_clip_that_is_a_pipe_is_refused(capsys, folder: Path):
    canaries = record(capsys, folder)
    (folder / "clips" / "drop.mp4").unlink()
    os.mkfifo(folder / "clips" / "drop.mp4")
    code, _, err = check(capsys, canaries)
    assert code == 2 and "'clips/drop.mp4' is a pipe" in err


def test_record_refuses_clips_outside_the_out_folder(capsys, folder: Path):
    code, _, err = run_cli(
        capsys,
        *("canary", "record", "--videos", "clips", "--prompts", "prompts.json"),
        *("--out", str(folder / "sub" / "canaries.json"), "--judge", "canary_judges:same"),
    )
    assert code == 2 and "not inside the folder of --out" in err


def test_a_duplicate_key_is_refused(capsys, folder: Path):
    canaries = record(capsys, folder)
    text = canaries.read_text().replace('"version": 1,', '"version": 1, "version": 1,', 1)
    canaries.write_text(text)
    code, _, err = check(capsys, canaries)
    assert code == 2 and "holds the key 'version' twice" in err


@pytest.mark.local
def test_the_tiny_judge_recorded_then_checked_shows_the_same_behaviour(capsys, folder: Path):
    """The real path end to end (the format-trained tiny judge, on the CPU): replies and
    distributions repeat exactly on the same machine."""
    out = folder / "canaries.json"
    code, _, err = run_cli(
        capsys,
        *("canary", "record", "--videos", "clips", "--prompts", "prompts.json"),
        *("--out", str(out), "--judge", "tiny", "--limit", "1", "--axes", "SA", "gravity"),
    )
    assert code == 0, err
    data = json.loads(out.read_text())
    assert data["judge"]["kind"] == "tiny" and data["device"] == "cpu"
    assert all(len(i["distribution"]["probs"]) == 5 for i in data["items"])
    code, text, err = run_cli(capsys, "canary", "check", str(out), "--judge", "tiny")
    assert code == 0, err
    assert "same behaviour:" in text
    pooled = next(line for line in text.splitlines() if line.startswith("all "))
    assert pooled.split()[1:] == ["2", "1.00", "0.000", "0.000"]


def test_the_drift_exit_code_is_documented(capsys):
    from pytest_phyjudge.cli.exits import EPILOG, EXIT_DRIFT

    assert EXIT_DRIFT == 7 and "7 the judge drifted from its recorded canaries" in EPILOG
    code, out, _ = run_cli(capsys, "canary", "check", "--help")
    assert code == 0 and "--max-tv" in out and "repeat exactly" in out
