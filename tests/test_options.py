"""The option table: every judge setting once, on pytest and on the ``phyjudge`` command
with the same parser, messages in the words of the surface the user is on, and the docs'
options reference rendered from it."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest
from _pytest.config.argparsing import Parser

from pytest_phyjudge import CacheError, ScriptedJudge
from pytest_phyjudge.cli.arguments import judge_settings
from pytest_phyjudge.cli.main import build_parser
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.judges.cache import trust
from pytest_phyjudge.judges.cache.judge import CachedJudge
from pytest_phyjudge.judges.cache.store import JudgmentCache
from pytest_phyjudge.judges.factory import build_judge
from pytest_phyjudge.judges.options import CLI_SURFACE, JUDGE_OPTIONS, options_markdown
from pytest_phyjudge.judges.settings import (
    DEFAULT_KEYED_SETTINGS,
    KEYED_SETTINGS,
    PYTEST_SURFACE,
    JudgeConfig,
    JudgeSettings,
)
from pytest_phyjudge.plugin.options import add_options

BAD = "not-a-value!"
WITH_PARSER = [o for o in JUDGE_OPTIONS if o.parse is not None and o.cli_flag is not None]


def _pytest_parser() -> Parser:
    parser = Parser(_ispytest=True)
    add_options(parser)
    return parser


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def _command(*names: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in names:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = commands.choices[name]
    return parser


def _score_dir() -> argparse.ArgumentParser:
    """``phyjudge score-dir``: the command that takes every group of the table but the
    canary check's (``phyjudge canary check`` takes that)."""
    return _command("score-dir")


def _cli_line(option: Any, *extra: str) -> tuple[argparse.ArgumentParser, list[str]]:
    """The command that takes ``option`` and a command line of it with ``extra``."""
    if option.group == "canary":
        return _command("canary", "check"), ["canaries.json", *extra]
    return _score_dir(), ["--videos", "v", "--prompts", "p", "--out", "o", *extra]


def _cli_args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(
        ["score-dir", "--videos", "v", "--prompts", "p.json", "--out", "o.json", *extra]
    )


def test_every_setting_is_on_both_surfaces_with_one_parser() -> None:
    pytest_parser = _pytest_parser()
    on_pytest = _actions(pytest_parser.optparser)
    on_score_dir = _actions(_score_dir())
    on_canary_check = _actions(_command("canary", "check"))
    for option in JUDGE_OPTIONS:
        on_cli = on_canary_check if option.group == "canary" else on_score_dir
        assert on_pytest[option.pytest_flag].type is (None if option.switch else option.parse)
        if option.ini is not None:
            assert option.ini in pytest_parser._inidict, option.ini
        if option.cli_flag is None:
            # pytest-xdist's, the suites' pipelines' and the run's own settings (canaries,
            # verdicts): pytest only (the command judges no suite and enforces no threshold)
            assert option.name == "per-worker-model" or not option.setting
            continue
        assert on_cli[option.cli_flag].type is option.parse, option.cli_flag
        assert on_cli[option.cli_flag].metavar == on_pytest[option.pytest_flag].metavar


@pytest.mark.parametrize("option", WITH_PARSER, ids=lambda o: o.name)
def test_a_bad_value_reads_the_same_naming_the_surfaces_flag(
    option: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(pytest.UsageError) as on_pytest:
        _pytest_parser().parse([option.pytest_flag, BAD])
    parser, line = _cli_line(option, option.cli_flag, BAD)
    with pytest.raises(SystemExit):
        parser.parse_args(line)
    on_cli = capsys.readouterr().err
    pytest_line = str(on_pytest.value).splitlines()[-1]
    said = re.search(r"argument (\S+): (.*)", pytest_line)
    assert said is not None and said.group(1) == option.pytest_flag, pytest_line
    assert f"argument {option.cli_flag}: {said.group(2)}" in on_cli, on_cli
    assert BAD in said.group(2)


def test_the_command_line_makes_the_settings_pytest_makes() -> None:
    given = _cli_args("--scoring", "distribution", "--fps", "4", "--max-new-tokens", "9")
    settings = judge_settings(given)
    assert settings.surface == CLI_SURFACE
    assert settings.config == JudgeConfig(fps=4.0, max_new_tokens=9, scoring="distribution")
    assert settings == JudgeSettings(
        scoring="distribution",
        fps=4.0,
        max_new_tokens=9,
        cache_dir=Path(".pytest_cache/d/phyjudge-judgments"),
        tiny_folder=settings.tiny_folder,
    )


def test_judges_messages_name_the_flags_of_the_command_line() -> None:
    with pytest.raises(Exception) as refused:
        build_judge(judge_settings(_cli_args("--identity", "who.json")))
    message = str(refused.value)
    assert "--identity who.json names a recorded judge" in message, message
    assert "add --cache-mode only" in message and "--phyjudge-" not in message, message
    with pytest.raises(Exception) as both:
        JudgeSettings(url=("http://h:1",), judge="tiny", surface=CLI_SURFACE)
    assert "--url and --judge tiny both choose the judge" in str(both.value)


def test_a_replay_miss_names_the_flags_of_the_surface(
    tmp_path: Path, synthetic_video: Path
) -> None:
    """The example of the issue: ``phyjudge score-dir --cache-mode only`` tells the user to
    pass ``--cache-mode use``, not pytest's flag; pytest's run says pytest's."""
    identity = JudgeIdentity(kind="tiny", adapter="tiny-judge", base="tiny-base")
    said = {}
    for surface in (CLI_SURFACE, PYTEST_SURFACE):
        judge = CachedJudge(
            identity=identity,
            rubric=ScriptedJudge({"*": 4}).rubric,
            settings=DEFAULT_KEYED_SETTINGS,
            cache=JudgmentCache(tmp_path / surface.name, surface=surface),
            mode="only",
            surface=surface,
        )
        got = judge.score_many(synthetic_video, "A ball.", ["SA"])["SA"]
        judge.close()
        assert isinstance(got, CacheError)
        said[surface.name] = str(got)
    assert "(--cache-mode only)" in said["phyjudge"] and "--cache-mode use" in said["phyjudge"]
    assert "--phyjudge-" not in said["phyjudge"], said["phyjudge"]
    assert "(--phyjudge-cache-mode only)" in said["pytest"], said["pytest"]


def test_the_cache_keys_fields_are_declared_once_and_keep_their_values() -> None:
    assert trust.KEYED_SETTINGS is KEYED_SETTINGS
    # The values of a run that sets none, as every existing cache and export holds them.
    assert DEFAULT_KEYED_SETTINGS == {
        "fps": 2.0,
        "max_pixels": 230400,
        "max_new_tokens": 64,
        "scoring": "greedy",
    }
    assert isinstance(DEFAULT_KEYED_SETTINGS["fps"], float)
    assert JudgeSettings().config.keyed() == DEFAULT_KEYED_SETTINGS
    with pytest.raises(Exception, match="Unknown scoring mode"):
        JudgeConfig(scoring="sampled")  # type: ignore[arg-type]


def test_the_options_reference_lists_every_setting_on_both_surfaces() -> None:
    """The docs site renders this table into docs/reference/options.md when it is built
    (tests/test_docs.py checks the page): every row, with its ini key and command flag."""
    rendered = options_markdown()
    for option in JUDGE_OPTIONS:
        row = next(
            line for line in rendered.splitlines() if line.startswith(f"| `{option.pytest_flag}` |")
        )
        if option.ini is not None:
            assert f"`{option.ini}`" in row, row
        if option.cli_flag is not None:
            assert f"`{option.cli_flag}`" in row, row
