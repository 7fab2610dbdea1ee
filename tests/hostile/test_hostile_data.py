"""Data files that are not what they claim: each gets a message naming the file and what is
wrong, never a traceback, a silent ``nan`` or a read that never ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pytester_kit import Kit

from pytest_phyjudge._exceptions import InputError, SuiteError
from pytest_phyjudge.cli.main import main
from pytest_phyjudge.regression.baseline import load_baseline
from pytest_phyjudge.suites import load_suite

pytest_plugins = "pytester"


# --------------------------------------------------------------------------- baselines


def baseline_file(folder: Path, entry_json: str) -> Path:
    """A baseline whose one entry, basics::ball_ramp::gravity, is ``entry_json`` (raw text,
    so NaN and Infinity literals can be written)."""
    path = folder / "baseline.json"
    path.write_text(
        '{"format": "pytest-phyjudge-baseline", "version": 1, "judge": null, '
        f'"suites": {{"basics": {{"ball_ramp": {{"gravity": {entry_json}}}}}}}}}',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("entry", "shown"),
    [
        ('{"score": NaN}', '"score": nan'),
        ('{"score": Infinity}', '"score": inf'),
        ('{"score": -Infinity}', '"score": -inf'),
        ('{"score": 1e308}', '"score": 1e+308'),
        ('{"score": 0}', '"score": 0'),
        ('{"score": 4, "expected": NaN}', '"expected": nan'),
        ('{"score": 4, "samples": "abc"}', "\"samples\": 'abc'"),
        ('{"score": 4, "samples": [4, "x", true]}', "\"samples\": [4, 'x', True]"),
    ],
)
def test_baseline_entry_that_is_not_a_score_is_refused(
    tmp_path: Path, entry: str, shown: str
) -> None:
    path = baseline_file(tmp_path, entry)
    with pytest.raises(InputError) as caught:
        load_baseline(path)
    message = str(caught.value)
    assert str(path) in message
    assert "entry basics::ball_ramp::gravity" in message
    assert shown in message
    assert "--phyjudge-update-baseline" in message


def test_baseline_nested_too_deeply_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(InputError, match="nested too deeply") as caught:
        load_baseline(path)
    assert str(path) in str(caught.value)


# --------------------------------------------------------------------------- phyjudge compare


def report(folder: Path, name: str, gravity: Any = 4, sa: Any = 4, raw: str | None = None) -> Path:
    """A scores.json report of three cases; case ``b`` has the given SA and gravity scores
    (``raw`` replaces the whole text)."""
    rows = [
        {"video": video, "SA": 4, "physical": {"laws": {"gravity": {"score": 4}}}}
        for video in ("a", "b", "c")
    ]
    rows[1] = {"video": "b", "SA": sa, "physical": {"laws": {"gravity": {"score": gravity}}}}
    path = folder / name
    path.write_text(raw if raw is not None else json.dumps({"results": rows}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("scores", "field", "shown"),
    [
        ({"gravity": float("nan")}, "results[1].physical.laws.gravity.score", "nan"),
        ({"gravity": 1e308}, "results[1].physical.laws.gravity.score", "1e+308"),
        ({"gravity": -1e308}, "results[1].physical.laws.gravity.score", "-1e+308"),
        ({"gravity": "4"}, "results[1].physical.laws.gravity.score", "'4'"),
        ({"sa": float("inf")}, "results[1].SA", "inf"),
        ({"sa": "high"}, "results[1].SA", "'high'"),
        ({"sa": 9}, "results[1].SA", "9"),
    ],
)
def test_compare_refuses_a_score_that_is_not_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scores: dict, field: str, shown: str
) -> None:
    good = report(tmp_path, "a.json")
    bad = report(tmp_path, "b.json", **scores)
    assert main(["compare", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "case 'b'" in err and field in err
    assert f"= {shown}," in err and "from 1 to 5" in err


def test_compare_refuses_deeply_nested_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = report(tmp_path, "a.json")
    deep = report(tmp_path, "b.json", raw='{"results": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert main(["compare", str(good), str(deep)]) == 2
    err = capsys.readouterr().err
    assert str(deep) in err and "nested too deeply" in err


# --------------------------------------------------------------------------- prompt sets


def prompt_suite(folder: Path, prompts: str) -> Path:
    path = folder / "set.phyjudge.yaml"
    path.write_text(f"suite: s\nvideos: v/{{id}}.mp4\nprompts: {prompts}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("target", "kind"), [("folder", "a folder"), ("/dev/zero", "a device")])
def test_suite_prompt_set_that_is_no_file_says_what_it_is(
    tmp_path: Path, target: str, kind: str
) -> None:
    if target == "folder":
        (tmp_path / "folder").mkdir()
    path = prompt_suite(tmp_path, target)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    err = caught.value
    assert err.line == 3 and "does not exist" not in str(err)
    assert f"is {kind}" in str(err) and "JSON file" in str(err)


def test_suite_prompt_set_that_is_a_pipe_says_so(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(SuiteError, match="is a pipe") as caught:
        load_suite(prompt_suite(tmp_path, "pipe.json"))
    assert caught.value.line == 3


SCORE_DIR = "import sys; from pytest_phyjudge.cli.main import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize(("name", "kind"), [("/dev/zero", "a device"), ("pipe", "a pipe")])
def test_score_dir_prompts_that_are_a_device_or_pipe_say_so(
    tmp_path: Path, name: str, kind: str
) -> None:
    if name == "pipe":
        os.mkfifo(tmp_path / "pipe")
    (tmp_path / "videos").mkdir()
    # In a subprocess with a generous limit: opening a pipe nobody writes waits forever.
    args = ["score-dir", "--videos", "videos", "--prompts", name, "--out", "out"]
    done = subprocess.run(
        [sys.executable, "-c", SCORE_DIR, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"is {kind}, not a file" in done.stderr and name in done.stderr
    assert "larger than" not in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- symlink loops


def symlink_loop(folder: Path, name: str) -> Path:
    """``name`` -> ``name.other`` -> ``name``."""
    (folder / name).symlink_to(folder / f"{name}.other")
    (folder / f"{name}.other").symlink_to(folder / name)
    return folder / name


def test_symlink_loop_as_the_prompt_set_is_a_suite_error_at_its_line(tmp_path: Path) -> None:
    symlink_loop(tmp_path, "prompts.json")
    with pytest.raises(SuiteError, match="loop of symbolic links") as caught:
        load_suite(prompt_suite(tmp_path, "prompts.json"))
    assert caught.value.line == 3


CASES = """\
suite: basics
cases:
  - id: looped
    prompt: A ball falls.
    laws: [gravity]
    video: clips/loop.mp4
  - id: fine
    prompt: A ball falls.
    laws: [gravity]
    video: clips/fine.mp4
"""


def test_symlink_loop_as_a_case_video_fails_only_that_case(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    kit.conftest()
    kit.clip("fine")
    symlink_loop(pytester.path / "clips", "loop.mp4")
    kit.suite(CASES)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=4, failed=4)
    result.stdout.fnmatch_lines(
        ["*looped*loop of symbolic links*", "*at basics.phyjudge.yaml:3: case *looped*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_symlink_loop_in_the_videos_template_fails_only_that_case(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    kit.conftest()
    symlink_loop(pytester.path, "clips")
    kit.suite(
        "suite: basics\nvideos: clips/{id}.mp4\n"
        "cases:\n  - id: looped\n    prompt: A ball falls.\n    laws: [gravity]\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*looped*loop of symbolic links*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (
            b'{"prompts": [{"video": ' + b"9" * 5000 + b', "prompt": "p"}]}',
            "number too long to read",
        ),
    ],
    ids=["deep", "huge-int"],
)
def test_suite_prompt_set_too_deep_or_with_a_huge_number_is_a_suite_error(
    tmp_path: Path, raw: bytes, said: str
) -> None:
    (tmp_path / "prompts.json").write_bytes(raw)
    with pytest.raises(SuiteError, match=said) as caught:
        load_suite(prompt_suite(tmp_path, "prompts.json"))
    assert caught.value.path == tmp_path / "prompts.json"


def test_a_case_video_name_too_long_fails_only_that_case(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    kit.conftest()
    kit.clip("fine")
    long = "x" * 5000
    kit.suite(CASES.replace("clips/loop.mp4", f"clips/{long}.mp4"))
    result = pytester.runpytest("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=4, failed=4)
    result.stdout.fnmatch_lines(["*looped*does not exist*"])
    assert "Traceback" not in result.stdout.str() and "OSError" not in result.stdout.str()


# --------------------------------------------------------------------------- numbers too long

HUGE_INT = "9" * 5000


def test_baseline_with_a_number_too_long_is_refused(tmp_path: Path) -> None:
    path = baseline_file(tmp_path, HUGE_INT)
    with pytest.raises(InputError, match="number too long") as caught:
        load_baseline(path)
    assert str(path) in str(caught.value)


def test_compare_refuses_a_number_too_long(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = report(tmp_path, "a.json")
    bad = report(tmp_path, "b.json", raw='{"results": [' + HUGE_INT + "]}")
    for command in (["compare", str(good), str(bad)], ["report", str(bad), "--html", "out"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert str(bad) in err and "number too long" in err and "Traceback" not in err


# --------------------------------------------------------------------------- cache import


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"key": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "in.jsonl:1: not a judgment"),
        (b'{"key": "k", "judgment": "\xff\xfe"}\n', "in.jsonl:1: not UTF-8 text"),
        (b"x" * (17 * 2**20), "in.jsonl:1: a line longer than 16 MiB"),
    ],
    ids=["nested-too-deep", "not-utf8", "endless-line"],
)
def test_cache_import_of_what_is_no_export_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    file = tmp_path / "in.jsonl"
    file.write_bytes(content)
    assert main(["cache", "import", str(file), "--cache", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Nothing was imported" in err and "Traceback" not in err


def test_cache_import_of_a_device_is_refused_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cache", "import", "/dev/zero", "--cache", str(tmp_path / "cache")]) == 2
    assert "it is a device, not an export file" in capsys.readouterr().err


# --------------------------------------------------------------------------- CLI values


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["score", "v.mp4", "--caption", "c", "--fps", "inf"], "a finite number greater than 0"),
        (["score", "v.mp4", "--caption", "c", "--fps", "nan"], "a finite number greater than 0"),
        (["serve-command", "--port", "70000"], "a TCP port (1 to 65535)"),
        (["score", "v.mp4", "--caption", "c", "--media-root", "/nope=x"], "is not a folder"),
        (["score", "v.mp4", "--caption", "c", "--media-root", ".=x=y"], "not an absolute path"),
    ],
    ids=["fps-inf", "fps-nan", "port", "media-root-missing", "media-root-relative"],
)
def test_cli_values_out_of_range_are_usage_errors_naming_the_option(
    capsys: pytest.CaptureFixture[str], args: list[str], shown: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert shown in err and "Traceback" not in err
