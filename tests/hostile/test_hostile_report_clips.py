"""``phyjudge report`` on a scores.json from elsewhere: the clips it names are shown only from
the current folder, the folder of the report and folders given with ``--clips``. A report is
an input anyone may write; without this, naming ``/home/me/private.mp4`` would publish a
re-encoded copy of that video in the HTML folder uploaded as a CI artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_phyjudge.cli.main import main
from pytest_phyjudge.testing.clips import write_test_video


def _report(folder: Path, clip: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"video": "fall", "prompt": "A ball falls.", "physical_laws": [], "SA": 4}]
    rows[0]["video_path"] = clip
    scores = folder / "scores.json"
    scores.write_text(json.dumps({"meta": {}, "results": rows}))
    return scores


def _previews(html: Path) -> list[Path]:
    media = html / "media"
    return sorted(media.iterdir()) if media.is_dir() else []


@pytest.fixture
def private(tmp_path: Path) -> Path:
    """A real clip outside the folder the command runs in and outside the report's."""
    return write_test_video(tmp_path / "private" / "holiday.mp4")


def test_a_clip_named_from_outside_is_not_published(
    tmp_path: Path, private: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    work = tmp_path / "work"
    scores = _report(work / "out", str(private))
    monkeypatch.chdir(work)
    assert main(["report", str(scores), "--html", str(work / "site")]) == 0
    capsys.readouterr()
    assert _previews(work / "site") == []  # no copy of the private clip, in any form
    page = (work / "site" / "index.html").read_text()
    assert "lies outside" in page and "--clips DIR" in page


def test_a_link_inside_the_folder_to_a_clip_outside_is_not_followed(
    tmp_path: Path, private: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    work = tmp_path / "work"
    scores = _report(work / "out", "clips/fall.mp4")
    (work / "out" / "clips").mkdir()
    (work / "out" / "clips" / "fall.mp4").symlink_to(private)
    monkeypatch.chdir(work)
    assert main(["report", str(scores), "--html", str(work / "site")]) == 0
    capsys.readouterr()
    assert _previews(work / "site") == []


def test_clips_under_the_current_folder_or_given_with_clips_are_shown(
    tmp_path: Path, private: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    work = tmp_path / "work"
    own = write_test_video(work / "videos" / "fall.mp4")
    scores = _report(work / "out", str(own))
    monkeypatch.chdir(work)
    assert main(["report", str(scores), "--html", str(work / "site")]) == 0
    assert len(_previews(work / "site")) == 2  # the clip's preview and its poster
    scores = _report(work / "elsewhere", str(private))
    site = work / "site2"
    assert main(["report", str(scores), "--html", str(site), "--clips", str(private.parent)]) == 0
    capsys.readouterr()
    assert len(_previews(site)) == 2
