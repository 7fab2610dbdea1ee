"""The smaller defects seen when the project was tried as a new user would (2026-12-06)."""

from __future__ import annotations

import html
import json
import logging
import os
import re
from pathlib import Path

import pytest

from pytest_phyjudge.engine.adapter import TINY_NOTICE
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.judges import factory
from pytest_phyjudge.judges.settings import JudgeSettings
from pytest_phyjudge.judges.tiny import build as tiny_build
from pytest_phyjudge.judges.tiny.build import machine_folder
from pytest_phyjudge.judges.tiny.layout import write_adapter
from pytest_phyjudge.judges.tiny.recipe import build_id, mark_trained
from pytest_phyjudge.plugin.options import Options
from pytest_phyjudge.regression.compare import compare, read_report
from pytest_phyjudge.reporting.compare_view import (
    comparison_json,
    comparison_markdown,
    comparison_text,
)
from pytest_phyjudge.reporting.html.render import write_html_report

pytest_plugins = "pytester"


class _CardReadingModel:
    """Saves as peft does: it re-reads the folder's README.md as a model card first."""

    def save_pretrained(self, folder: Path, **_: object) -> None:
        from huggingface_hub import ModelCard

        ModelCard.load(Path(folder) / "README.md")
        (Path(folder) / "adapter_config.json").write_text("{}", encoding="utf-8")


def test_saving_the_tiny_adapter_says_nothing_about_an_empty_card(tmp_path, caplog):
    pytest.importorskip("huggingface_hub")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "README.md").write_text(TINY_NOTICE + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="huggingface_hub"):
        write_adapter(_CardReadingModel(), adapter, tmp_path / "base")
    assert "metadata block was not found" not in caplog.text
    # Only that notice, only there: the same read elsewhere still says it.
    with caplog.at_level(logging.WARNING, logger="huggingface_hub"):
        _CardReadingModel().save_pretrained(adapter)
    assert "metadata block was not found" in caplog.text


# --------------------------------------------------------------------------- no cacheprovider


def test_without_the_cacheprovider_the_tiny_judge_is_not_placed_in_the_cwd(pytester):
    config = pytester.parseconfig("-p", "no:cacheprovider", "--phyjudge-judge", "tiny")
    judge = Options.from_config(config).judge
    assert judge.tiny_folder is None  # the factory then uses the per-machine build folder
    with_cache = pytester.parseconfig("--phyjudge-judge", "tiny")
    assert Options.from_config(with_cache).judge.tiny_folder.name == "phyjudge-tiny"


def test_the_factory_uses_the_machine_folder_when_no_tiny_folder_is_given(monkeypatch):
    asked: list[Path] = []

    def ensure(folder: Path) -> Path:
        asked.append(Path(folder))
        raise _Stop

    monkeypatch.setattr(factory, "ensure_tiny_judge", ensure)
    with pytest.raises(_Stop):
        factory.plan_judge_for(JudgeSettings(judge="tiny", cache_mode="off"))
    assert asked == [machine_folder()]


@pytest.mark.local  # the build's file lock (filelock) comes with the [local] extra
def test_the_machine_folder_itself_is_built_in_place_without_a_copy(monkeypatch, tmp_path):
    machine = tmp_path / "machine" / "format-trained-v0-abc"
    monkeypatch.setattr(tiny_build, "machine_folder", lambda: machine)
    monkeypatch.setattr(tiny_build, "require_local", lambda *a: None)
    builds: list[Path] = []

    def build(folder: Path, **_: object) -> Path:
        builds.append(Path(folder))
        adapter = Path(folder) / "adapter"
        adapter.mkdir(parents=True)
        (adapter / "README.md").write_text(TINY_NOTICE + "\n", encoding="utf-8")
        (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
        mark_trained(adapter, {}, build_id())
        return adapter

    monkeypatch.setattr(tiny_build, "build_tiny_judge", build)
    monkeypatch.setattr(tiny_build, "_into_place", lambda *a: pytest.fail("copied onto itself"))
    assert tiny_build.ensure_tiny_judge(machine) == machine / "adapter"
    assert builds == [machine]
    assert tiny_build.ensure_tiny_judge(machine) == machine / "adapter"  # ready: no rebuild
    assert builds == [machine]


class _Stop(Exception):
    """Ends a planning run once the folder it asked for is known."""


# --------------------------------------------------------------------------- old tiny builds


@pytest.mark.local  # the build's file lock (filelock) comes with the [local] extra
def test_old_tiny_builds_are_pruned_to_the_newest_few_and_only_ours(tmp_path):
    from filelock import FileLock

    base = tmp_path / "pytest-phyjudge-tiny-0"
    names = [f"format-trained-v3-{n:010x}" for n in range(6)]
    for age, name in enumerate(names):
        (base / name / "adapter").mkdir(parents=True)
        os.utime(base / name, (1_000_000 + age, 1_000_000 + age))  # the last is the newest
    current = base / "format-trained-v4-aaaaaaaaaaaa"
    (current / "adapter").mkdir(parents=True)
    os.utime(current, (1, 1))  # the one in use is kept however old it looks
    outside = tmp_path / "outside"
    (outside / "keep.txt").parent.mkdir()
    (outside / "keep.txt").write_text("not ours", encoding="utf-8")
    (base / "format-trained-v3-ffffffffff").symlink_to(outside, target_is_directory=True)
    (base / "notes").mkdir()
    held = FileLock(str(base / names[0]) + ".lock")
    with held:  # another process is copying the oldest build: left alone
        deleted = tiny_build.prune_old_builds(current, keep=3)
    assert sorted(p.name for p in deleted) == names[1:4]
    left = {p.name for p in base.iterdir() if not p.name.endswith(".lock")}
    assert left == {
        names[0],
        names[4],
        names[5],
        current.name,
        "format-trained-v3-ffffffffff",
        "notes",
    }
    assert (outside / "keep.txt").read_text(encoding="utf-8") == "not ours"


@pytest.mark.local  # the build's file lock (filelock) comes with the [local] extra
def test_builds_outside_our_base_folder_are_never_pruned(tmp_path):
    base = tmp_path / "somewhere"
    for n in range(5):
        (base / f"format-trained-v3-{n:010x}").mkdir(parents=True)
    assert tiny_build.prune_old_builds(base / "format-trained-v3-0000000000", keep=1) == []
    assert len(list(base.iterdir())) == 5


# --------------------------------------------------------------------------- judge paths


_MACHINE_ADAPTER = '/tmp/pytest-of-ci/"x<y"/phyjudge-tiny/adapter'
_MACHINE_BASE = "/tmp/pytest-of-ci/phyjudge-tiny/base"


def test_the_html_page_names_a_local_judge_portably_with_its_path_in_a_tooltip(tmp_path):
    document = {
        "meta": {"judge": {"kind": "tiny", "adapter": _MACHINE_ADAPTER, "base": _MACHINE_BASE}},
        "results": [{"video": "v1", "prompt": "p", "checks": {"SA": {"score": 3}}}],
    }
    page = (write_html_report(document, tmp_path / "html", base=tmp_path)).read_text("utf-8")
    code = re.search(r"judge: (<code[^>]*>[^<]*</code>)", page)
    assert code is not None
    assert ">adapter on base (tiny)</code>" in code.group(1)
    title = html.unescape(re.search(r'title="([^"]*)"', code.group(1)).group(1))
    assert title == f"{_MACHINE_ADAPTER} on {_MACHINE_BASE} (tiny)"
    hub = {"meta": {"judge": {"kind": "local", "adapter": "org/PhyJudge-9B", "base": "Qwen/B"}}}
    hub["results"] = document["results"]
    page = write_html_report(hub, tmp_path / "hub", base=tmp_path).read_text("utf-8")
    assert "<code>org/PhyJudge-9B on Qwen/B (local)</code>" in page  # nothing cut: no tooltip


def test_the_terminal_and_ci_summaries_name_a_local_judge_portably():
    identity = JudgeIdentity(kind="tiny", adapter=_MACHINE_ADAPTER, base=_MACHINE_BASE)
    assert identity.describe(portable=True) == "adapter on base (tiny)"
    assert identity.describe() == f"{_MACHINE_ADAPTER} on {_MACHINE_BASE} (tiny)"


# --------------------------------------------------------------------------- contact sheets

_THREE_CASES = """\
videos: clips/{id}.mp4
defaults: {metrics: [SA]}
cases:
  - {id: one, prompt: A ball falls.}
  - {id: two, prompt: A cup tips.}
  - {id: three, prompt: A lamp glows.}
"""


def test_clips_that_are_not_videos_get_one_no_sheet_warning_with_the_count(pytester, kit):
    kit.conftest()
    kit.suite(_THREE_CASES)
    for name in ("one", "two", "three"):
        kit.clip(name)
    result = pytester.runpytest("--phyjudge-report", "out/scores.json")
    result.assert_outcomes(passed=3)
    said = [line for line in result.outlines if "no contact sheet" in line]
    assert len(said) == 1, said
    assert "no contact sheet for 3 cases; the first, " in said[0]


# --------------------------------------------------------------------------- compare's nulls


def _phyground(path: Path, scores: list[tuple[int | None, int | None]]) -> Path:
    rows = [
        {
            "video": f"v{i}",
            "SA": sa,
            "PTV": 3,
            "persistence": None,  # null in every row: not asked, not counted
            "physical": {"laws": {"gravity": {"score": law}}},
        }
        for i, (sa, law) in enumerate(scores)
    ]
    path.write_text(json.dumps({"results": rows}), encoding="utf-8")
    return path


def test_compare_counts_the_null_scores_per_axis_in_every_output(tmp_path):
    a = _phyground(tmp_path / "a.json", [(4, 3), (None, 3), (None, None), (5, 2)])
    b = _phyground(tmp_path / "b.json", [(4, None), (3, 3), (2, 2), (5, 2)])
    result = compare(read_report(a), read_report(b))
    assert result.unscored == {"A": {"SA": 2, "gravity": 1}, "B": {"gravity": 1}}
    said = "not scored (null, left out): A: SA 2, gravity 1; B: gravity 1"
    assert said in comparison_text(result)
    assert said in comparison_markdown(result)
    assert comparison_json(result)["unscored"] == result.unscored
    clean = tmp_path / "clean.json"
    _phyground(clean, [(4, 3), (3, 3)])
    quiet = compare(read_report(clean), read_report(clean))
    assert quiet.unscored == {}
    assert not any("not scored" in line for line in comparison_text(quiet))
