"""Hostile YAML suites: each finishes in seconds with a SuiteError at its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytester_kit import Kit

from pytest_phyjudge._exceptions import SuiteError
from pytest_phyjudge.suites import load_suite

pytest_plugins = "pytester"

HEAD = (
    "suite: hostile\nvideos: v/{id}.mp4\n"
    "cases:\n  - id: a\n    prompt: A ball falls.\n    laws: [gravity]\n"
)


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """``params:`` holding ``width ** levels`` leaves in a few hundred bytes ("billion laughs");
    the anchors start on line 8, the list that expands too far on a later line."""
    lines = ["    params:", "      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"      l{level}: &l{level} [{refs}]")
    return HEAD + "\n".join(lines) + "\n"


def write(folder: Path, data: str | bytes) -> Path:
    path = folder / "hostile.phyjudge.yaml"
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def refused(path: Path) -> SuiteError:
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    err = info.value
    assert err.path == path.absolute(), str(err)
    return err


def test_alias_bomb_under_params_is_a_collection_error(pytester: pytest.Pytester, kit: Kit) -> None:
    kit.conftest(name="scripted-for-tests")
    kit.module("videogen", "def make(prompt, *, seed, out_path, **params):\n    return None\n")
    pytester.makeini("[pytest]\nphyjudge_generators = videogen = videogen:make\n")
    text = alias_bomb().replace("videos: v/{id}.mp4", "generator: videogen")
    path = kit.suite(text, name="bomb")
    # In a subprocess with a generous limit: before the fix the run hangs hashing the params.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting bomb.phyjudge.yaml*", f"{path}:*: *alias*"])
    assert "Traceback" not in result.stdout.str()


def test_alias_bomb_is_refused_at_the_list_that_expands_too_far(tmp_path: Path) -> None:
    path = write(tmp_path, alias_bomb())
    err = refused(path)
    assert err.line is not None and 8 <= err.line <= 15, str(err)
    assert "alias" in err.reason and "nodes" in err.reason, err.reason


def test_deeply_nested_list_is_refused_at_its_line(tmp_path: Path) -> None:
    depth = 20_000
    path = write(tmp_path, HEAD + "    params: {x: " + "[" * depth + "]" * depth + "}\n")
    err = refused(path)
    assert err.line == 7, str(err)
    assert "nested" in err.reason, err.reason


def test_deep_nesting_through_a_chain_of_aliases_is_refused(tmp_path: Path) -> None:
    lines = ["    params:", "      n0: &n0 [x]"]
    lines += [f"      n{i}: &n{i} [*n{i - 1}]" for i in range(1, 3000)]
    path = write(tmp_path, HEAD + "\n".join(lines) + "\n")
    err = refused(path)
    assert err.line is not None and err.line > 8, str(err)
    assert "nested" in err.reason, err.reason


def test_five_thousand_digit_integer_is_refused_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "    seed: " + "7" * 5000 + "\n")
    err = refused(path)
    assert err.line == 7, str(err)
    assert "5000 digits" in err.reason and "Traceback" not in str(err), err.reason


@pytest.mark.parametrize("byte", [b"\x00", b"\x07", b"\x1b"])
def test_control_byte_is_refused_at_its_line(tmp_path: Path, byte: bytes) -> None:
    path = write(tmp_path, HEAD.encode() + b"    seed: 3" + byte + b"\n")
    err = refused(path)
    assert err.line == 7, str(err)
    assert f"#x{byte[0]:04x}" in err.reason and "control" in err.reason, err.reason


def test_huge_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD.encode() + b"#" * (17 * 1024 * 1024) + b"\n")
    err = refused(path)
    assert err.line is None
    assert "16 MiB" in err.reason, err.reason


@pytest.mark.parametrize(
    ("mark", "said"),
    [
        ("{skip: {because: x}}", "takes only `reason`"),
        ("{xfail: {raises: SystemExit, reason: r}}", "keyword 'raises'"),
        ("{xfail: {run: 'False', reason: r}}", "run: the string 'False'; write true or false"),
        ("{xfail: {strict: 'yes', reason: r}}", "strict: the string 'yes'; write true or false"),
    ],
    ids=["skip-unknown", "xfail-raises", "xfail-run-text", "xfail-strict-text"],
)
def test_a_keyword_pytest_would_misread_is_refused_at_its_line(
    tmp_path: Path, mark: str, said: str
) -> None:
    err = refused(write(tmp_path, HEAD + f"    marks: [{mark}]\n"))
    assert err.line == 7, str(err)
    assert said in err.reason, err.reason


@pytest.mark.parametrize("seed", ["-1", str(2**64), str(2**63 - 1)])
def test_a_seed_no_random_generator_takes_is_refused_at_its_line(tmp_path: Path, seed: str) -> None:
    error = refused(write(tmp_path, HEAD + f"    seed: {seed}\n"))
    assert error.line == 7 and "seed" in str(error) and "64 bits" in str(error)


def test_a_large_seed_within_range_is_kept(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, HEAD + "    seed: 4294967296\n"))
    assert suite.cases[0].seed == 2**32


def test_a_seed_of_thousands_of_hex_digits_is_refused_by_its_size(tmp_path: Path) -> None:
    error = refused(write(tmp_path, HEAD + "    seed: 0x" + "f" * 5000 + "\n"))
    assert error.line == 7 and "20000 bits" in str(error)
