"""``--phyjudge-update-baseline`` when the baseline changes under the run: another run
(a second CI job) updated it between this run's read and its write. Writing what this run
read plus its own entries would drop the other run's without a word; the update is refused
instead, the run fails, and the file keeps every entry."""

from __future__ import annotations

import sys
import threading

import pytest
from pytester_kit import Kit

from pytest_phyjudge._outputs import locked_folder
from pytest_phyjudge.regression.baseline import Entry, load_baseline, write_baseline
from pytest_phyjudge.regression.baseline_update import BaselineRequest, update_baseline

JUDGE = {"kind": "scripted", "adapter": "scripted:s"}
SUITE = """
suite: same
videos: clips/{id}.mp4
defaults: {metrics: [SA]}
cases:
  - id: fall
    prompt: A ball falls onto a table.
"""


def test_entries_another_run_wrote_meanwhile_are_not_lost(tmp_path):
    path = tmp_path / "baseline.json"
    write_baseline(path, JUDGE, {("s", "a", "gravity"): Entry(3.0)})
    base = load_baseline(path)  # this run starts
    other = {("s", "a", "gravity"): Entry(3.0), ("s", "b", "gravity"): Entry(5.0)}
    write_baseline(path, JUDGE, other)  # another run updates it meanwhile
    run = {("s", "c", "gravity"): Entry(4.0)}
    update = update_baseline(base, run, JUDGE, BaselineRequest(update=True), complete=True)
    assert update.refusal is not None and "changed" in update.refusal
    assert update.write_failed  # the run fails: the update it asked for did not happen
    assert ("s", "b", "gravity") in load_baseline(path).entries


def test_a_baseline_made_meanwhile_is_not_overwritten(tmp_path):
    path = tmp_path / "baseline.json"
    base = load_baseline(path)  # none yet
    write_baseline(path, JUDGE, {("s", "b", "gravity"): Entry(5.0)})
    run = {("s", "c", "gravity"): Entry(4.0)}
    update = update_baseline(base, run, JUDGE, BaselineRequest(update=True), complete=True)
    assert update.write_failed and set(load_baseline(path).entries) == {("s", "b", "gravity")}


def test_an_unchanged_baseline_is_updated(tmp_path):
    path = tmp_path / "baseline.json"
    write_baseline(path, JUDGE, {("s", "a", "gravity"): Entry(3.0)})
    base = load_baseline(path)
    run = {("s", "c", "gravity"): Entry(4.0)}
    update = update_baseline(base, run, JUDGE, BaselineRequest(update=True), complete=True)
    assert update.refusal is None and update.entries == 2
    assert set(load_baseline(path).entries) == {("s", "a", "gravity"), ("s", "c", "gravity")}


@pytest.mark.parametrize(
    "second",
    [
        ("--phyjudge-baseline", "same.json"),
        ("--phyjudge-baseline", "b.json", "--phyjudge-compare-plot", "same.json"),
    ],
)
def test_the_report_and_the_baseline_in_one_file_is_a_usage_error(
    pytester: pytest.Pytester, kit: Kit, second: tuple[str, ...]
) -> None:
    """The baseline written over the report it followed (or the reverse) left a green run
    with one of them lost: refused before anything is judged."""
    kit.conftest({"*": 4})
    kit.suite(SUITE)
    kit.clip("fall")
    args = ["--phyjudge-report", "same.json", *second, "--phyjudge-update-baseline"]
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--phyjudge-report and --phyjudge-*same.json*"])
    assert not (pytester.path / "same.json").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="no fcntl locks on Windows")
def test_an_update_waits_for_another_run_writing_the_baseline(tmp_path):
    """Two runs ending at once: the reread and the write happen under the folder's lock,
    so the second sees the first's entries (and refuses) instead of writing over them."""
    path = tmp_path / "baseline.json"
    write_baseline(path, JUDGE, {("s", "a", "gravity"): Entry(3.0)})
    base = load_baseline(path)
    run = {("s", "c", "gravity"): Entry(4.0)}
    outcome = []
    update = threading.Thread(
        target=lambda: outcome.append(
            update_baseline(base, run, JUDGE, BaselineRequest(update=True), complete=True)
        )
    )
    with locked_folder(tmp_path):  # the other run is writing
        update.start()
        update.join(0.3)
        assert update.is_alive()  # waiting for the lock
        write_baseline(path, JUDGE, {("s", "b", "gravity"): Entry(5.0)})
    update.join(10)
    assert outcome and outcome[0].write_failed
    assert ("s", "b", "gravity") in load_baseline(path).entries
