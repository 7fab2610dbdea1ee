"""``--phyjudge-update-baseline`` when the baseline changes under the run: another run
(a second CI job) updated it between this run's read and its write. Writing what this run
read plus its own entries would drop the other run's without a word; the update is refused
instead, the run fails, and the file keeps every entry."""

from __future__ import annotations

from pytest_phyjudge.regression.baseline import Entry, load_baseline, write_baseline
from pytest_phyjudge.regression.baseline_update import BaselineRequest, update_baseline

JUDGE = {"kind": "scripted", "adapter": "scripted:s"}


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
