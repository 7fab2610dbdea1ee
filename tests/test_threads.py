"""``--phyjudge-threads`` / ``--threads``: parsed once, carried by JudgeSettings, and applied to
torch where the in-process judge loads."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pytest_phyjudge.cli.arguments import add_judge_options, judge_settings
from pytest_phyjudge.judges.factory import load_plan, plan_judge_for
from pytest_phyjudge.judges.settings import JudgeSettings
from pytest_phyjudge.plugin.options import Options


def test_the_cli_option_reaches_the_settings() -> None:
    parser = argparse.ArgumentParser()
    add_judge_options(parser)
    assert judge_settings(parser.parse_args(["--threads", "1"])).threads == 1
    assert judge_settings(parser.parse_args([])).threads is None


def test_the_cli_refuses_zero_threads(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_judge_options(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--threads", "0"])
    assert "--threads" in capsys.readouterr().err


def test_the_pytest_option_and_its_ini_twin_reach_the_settings(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig("--phyjudge-threads", "2")
    assert Options.from_config(config).judge.threads == 2
    pytester.makeini("[pytest]\nphyjudge_threads = 1\n")
    assert Options.from_config(pytester.parseconfig()).judge.threads == 1
    result = pytester.runpytest("--phyjudge-threads", "none")
    result.stderr.fnmatch_lines(["*--phyjudge-threads*"])


@pytest.mark.local
def test_loading_the_judge_sets_torchs_threads(tiny_adapter: Path) -> None:
    import torch

    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    settings = JudgeSettings(adapter=str(tiny_adapter), device="cpu", threads=wanted)
    judge = load_plan(plan_judge_for(settings), settings)
    try:
        assert torch.get_num_threads() == wanted
    finally:
        judge.close()
        torch.set_num_threads(before)
