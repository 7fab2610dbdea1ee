"""scores.json's format and version: written stamped, read stamped or not, upgraded in one
place, and a newer or foreign document refused with a sentence naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.engine.judgment import JudgeIdentity, Judgment
from pytest_phyjudge.scores import (
    FORMAT,
    VERSION,
    VideoResult,
    as_read,
    build_scores,
    check_scores,
    read_scores,
    write_scores,
)

ROW: dict[str, Any] = {
    "video": "v1",
    "prompt": "a ball",
    "SA": 4,
    "physical": {"laws": {"gravity": {"score": 3, "status": "scored"}}},
}


def _judgment(score: int) -> Judgment:
    return Judgment(
        key="k",
        score=score,
        raw="{}",
        video="v.mp4",
        video_sha256="0" * 64,
        prompt_sha256="0" * 64,
        judge=JudgeIdentity(kind="scripted", adapter="unit"),
        seconds=0.0,
    )


def test_a_written_document_is_stamped_after_phygrounds_fields(tmp_path: Path) -> None:
    result = VideoResult(
        video="v1", prompt="p", physical_laws=["gravity"], outcomes={"SA": _judgment(4)}
    )
    document = build_scores([result], {"generator": "gen"})
    path = write_scores(tmp_path / "scores.json", document)
    data = json.loads(path.read_text())
    assert list(data) == [
        "meta",
        "num_videos",
        "general_dimensions",
        "results",
        "format",
        "version",
    ]
    assert (data["format"], data["version"]) == (FORMAT, VERSION)
    read = read_scores(path)
    assert read.version == VERSION and read.meta.generator == "gen"
    assert read.rows[0].general == {"SA": 4, "PTV": None, "persistence": None}


def test_a_phyground_file_without_format_is_read_and_upgraded() -> None:
    data = {"meta": {"video_model": "gen-x"}, "results": [ROW]}
    document = check_scores(data, "phyground.json")
    assert document.version == 0
    assert (document.data["format"], document.data["version"]) == (FORMAT, VERSION)
    assert "format" not in data  # the caller's dictionary is left as it was
    assert document.data["results"] is data["results"]  # rows are shared, not copied
    (row,) = document.rows
    assert row.video == "v1" and row.laws["gravity"].score == 3  # type: ignore[index]
    assert document.meta.label == "gen-x"


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"format": FORMAT, "version": VERSION + 1}, f"version {VERSION + 1}, written by a newer"),
        ({"format": "pytest-phyjudge-baseline", "version": 1}, "format = 'pytest-phyjudge-base"),
        ({"format": FORMAT, "version": "1"}, "version = '1', which is not a version"),
        ({"format": FORMAT}, "version = null"),
    ],
)
def test_a_newer_or_foreign_format_is_refused_naming_the_field(
    fields: dict[str, Any], said: str
) -> None:
    with pytest.raises(InputError) as refused:
        check_scores({"results": [ROW], **fields}, "r.json")
    assert "r.json" in str(refused.value) and said in str(refused.value)


def test_the_runs_own_document_reads_as_phyjudge_report_reads_it() -> None:
    """``as_read`` goes through JSON and the checks: what the HTML page is made from."""
    document = {"meta": {"settings": {"path": Path("x")}}, "results": [ROW]}
    read = as_read(document, "run.json")
    assert read.meta.settings == {"path": "x"} and read.version == VERSION
    with pytest.raises(InputError, match=r"run\.json: results\[0\]\.SA"):
        as_read({"results": [{**ROW, "SA": 9}]}, "run.json")
