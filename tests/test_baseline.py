"""Regression baselines: create, compare, drops, improvements, update, prune, bad files, judges.

Every pytest run here uses a SCRIPTED judge (``ScriptedJudge``) whose replies are written in
the stand-in clip files, so a test changes a score by rewriting a clip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pytester_kit import Kit

from pytest_phyjudge import InputError
from pytest_phyjudge.regression.baseline import (
    FORMAT,
    Entry,
    compare_entry,
    load_baseline,
    same_judge,
    write_baseline,
)

SUITE = """
suite: basics
videos: clips/{id}.mp4
defaults: {metrics: [SA], min_score: 3}
cases:
  - {id: ball, prompt: A ball falls., laws: [gravity]}
  - {id: cup, prompt: A cup tips over., laws: [collision], tolerance: {collision: 1}}
"""

JUDGE = ["--phyjudge-judge", "judges:make", "-p", "no:randomly"]
BASE = ["--phyjudge-baseline", "base.json"]


def setup(kit: Kit, suite: str = SUITE) -> None:
    """The clip-reading scripted judges (``make`` named scripted-base), the suite, and clips
    scoring every axis 4."""
    kit.judges(name="scripted-base", other="scripted-other")
    kit.suite(suite)
    kit.clip("ball", {"SA": 4, "gravity": 4})
    kit.clip("cup", {"SA": 4, "collision": 4})


def stored(kit: Kit) -> dict:
    return kit.read_json("base.json")


def create(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*JUDGE, *BASE, "--phyjudge-update-baseline")
    result.assert_outcomes(passed=4)


# --------------------------------------------------------------------------- the flow


def test_missing_baseline_says_how_to_create_it(pytester: pytest.Pytester, kit: Kit) -> None:
    """A baseline named in the ini that does not exist yet: collecting, and a run that judges
    nothing, work; a run that judges runs its items, then says how to create the file and
    exits 4, since its gate compared nothing."""
    setup(kit)
    pytester.makeini("[pytest]\nphyjudge_baseline = base.json\n")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest(*JUDGE, "--collect-only")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["phyjudge: baseline *base.json (does not exist yet; nothing to compare with: create "
         "it with --phyjudge-update-baseline)"]
    )  # fmt: skip
    assert pytester.runpytest(*JUDGE, "test_plain.py").ret == pytest.ExitCode.OK
    result = pytester.runpytest(*JUDGE)
    result.assert_outcomes(passed=5)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        ["phyjudge baseline *base.json does not exist yet: nothing was compared against it. "
         "Create it from this run's scores with --phyjudge-update-baseline (then commit it)."]
    )  # fmt: skip
    assert not (pytester.path / "base.json").exists()
    result = pytester.runpytest(*JUDGE, "--phyjudge-update-baseline")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*baseline *base.json (does not exist yet; created by this run)"])
    assert set(stored(kit)["suites"]["basics"]) == {"ball", "cup"}


def test_create_then_compare_unchanged(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted scores: every axis 4."""
    setup(kit)
    result = pytester.runpytest(*JUDGE, *BASE, "--phyjudge-update-baseline")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["baseline updated: *base.json (4 entries, 4 new)"])
    data = stored(kit)
    assert data["format"] == FORMAT and data["version"] == 1
    assert data["judge"]["kind"] == "scripted" and data["judge"]["adapter"] == "scripted-base"
    assert data["suites"] == {
        "basics": {
            "ball": {"SA": {"score": 4}, "gravity": {"score": 4}},
            "cup": {"SA": {"score": 4}, "collision": {"score": 4}},
        }
    }
    assert not (pytester.path / "base.json.bak").exists()

    result = pytester.runpytest(*JUDGE, *BASE)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "phyjudge: baseline *base.json (4 entries, compared)",
            "*",
            "phyjudge baseline *base.json: 0 drops, 0 improvements, 0 new, 0 not judged*",
        ]
    )


def test_baseline_is_as_readable_as_the_umask_allows(pytester: pytest.Pytester, kit: Kit) -> None:
    """A baseline is committed and shared: not private to its writer (it was 0600)."""
    setup(kit)
    old = os.umask(0o022)
    try:
        create(pytester)
    finally:
        os.umask(old)
    assert (pytester.path / "base.json").stat().st_mode & 0o777 == 0o644


def test_drop_fails_like_a_regression_check(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted: gravity falls from 4 to 3 (still above min_score 3), collision from 4 to 3
    (within its tolerance of 1), SA of ball rises to 5."""
    setup(kit)
    create(pytester)
    kit.clip("ball", {"SA": 5, "gravity": 3})
    kit.clip("cup", {"SA": 4, "collision": 3})
    result = pytester.runpytest(*JUDGE, *BASE)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ ball::gravity _*",
            "PhyJudge baseline: gravity of basics::ball dropped from 4 to 3 (tolerance 0)",
            "  at basics.phyjudge.yaml:5: case 'ball', axis gravity, min_score 3",
            "*",
            "obtained:",
            "  score 3",
            "expected (baseline *base.json):",
            "  score 4, at least 4 with tolerance 0",
            "If the new scores are right, accept them with --phyjudge-update-baseline.",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "phyjudge baseline *: 1 drop, 1 improvement, 0 new, 0 not judged in this run",
            "  dropped: basics::ball::gravity",
            "  improved (raise the baseline): basics::ball::SA",
        ]
    )
    result.stdout.fnmatch_lines(["*DROP  3 >= 3 (baseline 4)  basics.phyjudge.yaml::ball::gravity"])
    # The axis table counts the item as failed, as pytest does.
    result.stdout.re_match_lines([r"gravity +solid +1 +0 +1 +3\.00 +3$"])


def test_drop_beyond_tolerance_fails(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted: collision falls from 4 to 2, more than its tolerance of 1."""
    setup(kit, SUITE.replace("min_score: 3", "min_score: 1"))
    create(pytester)
    kit.clip("cup", {"SA": 4, "collision": 2})
    result = pytester.runpytest(*JUDGE, *BASE)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*collision of basics::cup dropped from 4 to 2 (tolerance 1)"])


def test_update_accepts_drops_and_keeps_a_backup(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted: gravity falls to 3; the update passes and rewrites the entry."""
    setup(kit)
    create(pytester)
    before = (pytester.path / "base.json").read_text()
    kit.clip("ball", {"SA": 4, "gravity": 3})
    result = pytester.runpytest(*JUDGE, *BASE, "--phyjudge-update-baseline")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["baseline updated: * (4 entries, 0 new); previous version kept*"])
    assert stored(kit)["suites"]["basics"]["ball"]["gravity"] == {"score": 3}
    assert (pytester.path / "base.json.bak").read_text() == before
    pytester.runpytest(*JUDGE, *BASE).assert_outcomes(passed=4)


def test_new_and_removed_cases_then_prune(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted scores 4. The suite loses `cup` and gains `jar`."""
    setup(kit)
    create(pytester)
    setup(
        kit,
        SUITE.replace("  - {id: cup", "  - {id: jar, prompt: A jar rolls., laws: [inertia]}\n#"),
    )
    kit.clip("jar", {"*": 4})
    result = pytester.runpytest(*JUDGE, *BASE)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*: 0 drops, 0 improvements, 2 new, 2 not judged in this run", "*update it with*"]
    )

    result = pytester.runpytest(*JUDGE, *BASE, "--phyjudge-update-baseline")
    result.stdout.fnmatch_lines(
        [
            "baseline updated: * (6 entries, 2 new, 2 not judged in this run kept)*",
            "  kept: basics::cup::SA, basics::cup::collision (remove with *prune*)",
        ]
    )
    assert set(stored(kit)["suites"]["basics"]) == {"ball", "cup", "jar"}

    result = pytester.runpytest(
        *JUDGE, *BASE, "--phyjudge-update-baseline", "--phyjudge-prune-baseline"
    )
    result.stdout.fnmatch_lines(["baseline updated: * (4 entries, 0 new, 2 not judged * removed)*"])
    assert set(stored(kit)["suites"]["basics"]) == {"ball", "jar"}


def test_another_judges_baseline_is_refused(pytester: pytest.Pytester, kit: Kit) -> None:
    """Two scripted judges with different names count as different judges."""
    setup(kit)
    create(pytester)
    other = ["--phyjudge-judge", "judges:make_other", *BASE]
    result = pytester.runpytest(*other)
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "InputError: The baseline *base.json was made by scripted-base (scripted), but this "
            "run's judge is scripted-other (scripted)*--phyjudge-baseline-any-judge*"
        ]
    )
    result = pytester.runpytest(*other, "--phyjudge-update-baseline")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["baseline NOT updated: *was made by scripted-base*"])
    assert stored(kit)["judge"]["adapter"] == "scripted-base"

    pytester.runpytest(*other, "--phyjudge-baseline-any-judge").assert_outcomes(passed=4)
    result = pytester.runpytest(
        *other, "--phyjudge-baseline-any-judge", "--phyjudge-update-baseline"
    )
    result.assert_outcomes(passed=4)
    assert stored(kit)["judge"]["adapter"] == "scripted-other"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", ["is not valid JSON", "line 1"]),
        ('{"results": []}', ["is not a pytest-phyjudge baseline", "scores.json"]),
        (f'{{"format": "{FORMAT}", "version": 9}}', ["has version 9"]),
        (
            f'{{"format": "{FORMAT}", "version": 1, "suites": {{"s": {{"c": {{"SA": {{}}}}}}}}}}',
            ['entry s::c::SA has no numeric "score"'],
        ),
    ],
)
def test_bad_baseline_is_a_clear_error_and_never_overwritten(
    pytester: pytest.Pytester, kit: Kit, text: str, words: list[str]
) -> None:
    setup(kit)
    (pytester.path / "base.json").write_text(text)
    result = pytester.runpytest(*JUDGE, *BASE, "--phyjudge-update-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    for word in ["*The baseline *base.json*", *words]:
        assert word.strip("*").split("*")[0] in result.stderr.str(), result.stderr.str()
    assert (pytester.path / "base.json").read_text() == text
    assert not (pytester.path / "base.json.bak").exists()


@pytest.mark.parametrize(
    "flag",
    [
        "--phyjudge-update-baseline",
        "--phyjudge-prune-baseline",
        "--phyjudge-baseline-any-judge",
        "--phyjudge-compare-plot=x.png",
    ],
)
def test_baseline_flags_need_a_baseline(pytester: pytest.Pytester, kit: Kit, flag: str) -> None:
    setup(kit)
    result = pytester.runpytest(*JUDGE, flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{flag.split('=')[0]} works on a baseline*"])


def test_prune_needs_update(pytester: pytest.Pytester, kit: Kit) -> None:
    setup(kit)
    create(pytester)
    result = pytester.runpytest(*JUDGE, *BASE, "--phyjudge-prune-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_sampled_case_compares_its_mean(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted: four samples score 4,4,4,4, then 4,4,3,3 (mean 3.5 < 4 - tolerance 0.25)."""
    suite = """
    suite: s
    videos: clips/{id}-{sample}.mp4
    defaults: {metrics: [], min_score: 3}
    cases:
      - {id: drop, prompt: A glass falls., laws: [gravity], samples: 4, tolerance: 0.25}
    """
    setup(kit, suite)
    for i in range(4):
        kit.clip(f"drop-{i}", {"*": 4})
    pytester.runpytest(*JUDGE, *BASE, "--phyjudge-update-baseline").assert_outcomes(passed=1)
    assert stored(kit)["suites"]["s"]["drop"]["gravity"] == {
        "score": 4,
        "samples": [4, 4, 4, 4],
    }
    kit.clip("drop-2", {"*": 3})
    pytester.runpytest(*JUDGE, *BASE).assert_outcomes(passed=1)  # mean 3.75: within 0.25
    kit.clip("drop-3", {"*": 3})
    result = pytester.runpytest(*JUDGE, *BASE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*gravity of s::drop dropped from 4 to 3.5 (tolerance 0.25)",
            "*mean score 3.5 over 4 samples ?4, 4, 3, 3?",
        ]
    )


def test_compare_plot_of_a_run_against_its_baseline(pytester: pytest.Pytester, kit: Kit) -> None:
    """Scripted: ball's SA rises from 4 to 5."""
    from PIL import Image

    setup(kit)
    create(pytester)
    kit.clip("ball", {"SA": 5, "gravity": 4})
    result = pytester.runpytest(*JUDGE, *BASE, "--phyjudge-compare-plot", "out/chart.png")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "A: baseline base.json",
            "B: this run",
            "axis *A*B*delta*p adj*significant",
            "SA *2*4.00*4.50*+0.50*",
            "no significant regression (Holm-adjusted p < 0.05)",
            "comparison chart: *chart.png",
        ]
    )
    with Image.open(pytester.path / "out" / "chart.png") as image:
        assert image.format == "PNG" and image.size == (1000, 600)


# --------------------------------------------------------------------------- the module


def test_compare_entry_statuses() -> None:
    four = Entry(score=4)
    assert compare_entry(None, Entry(3), 0)["status"] == "new"
    assert compare_entry(four, Entry(3), 0)["status"] == "drop"
    assert compare_entry(four, Entry(3), 1)["status"] == "same"
    assert compare_entry(four, Entry(5), 0)["status"] == "improved"
    assert compare_entry(four, Entry(4), 0)["status"] == "same"
    # distribution scoring: the expected score is compared, not the integer score
    verdict = compare_entry(Entry(4, expected=4.2), Entry(4, expected=3.9), 0.2)
    assert verdict["status"] == "drop" and verdict["measure"] == "expected"
    assert compare_entry(Entry(4, expected=4.2), Entry(4, expected=4.05), 0.2)["status"] == "same"
    verdict = compare_entry(Entry(4, samples=(4, 4)), Entry(3.5, samples=(4, 3)), 0)
    assert verdict["measure"] == "mean" and verdict["status"] == "drop"


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    judge = {"kind": "local", "adapter": "a", "revision": "r", "base": None}
    entries = {("s", "c", "SA"): Entry(4, expected=3.91234567), ("s", "c", "gravity"): Entry(2)}
    assert write_baseline(path, judge, entries) is None
    loaded = load_baseline(path)
    assert loaded.exists and loaded.judge == judge
    assert loaded.entries[("s", "c", "SA")] == Entry(4, expected=3.91234567)
    assert write_baseline(path, judge, {}) == tmp_path / "b.json.bak"
    assert load_baseline(tmp_path / "b.json.bak").entries[("s", "c", "gravity")] == Entry(2)
    assert not load_baseline(tmp_path / "missing.json").exists


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match=r"b\.json is not a pytest-phyjudge baseline"):
        load_baseline(path)


def test_same_judge() -> None:
    a = {"kind": "local", "adapter": "x", "revision": "1"}
    assert same_judge(a, dict(a)) and same_judge(a, None)
    assert not same_judge(a, {**a, "revision": "2"})
    assert not same_judge(a, {**a, "kind": "tiny"})
    hashed = {**a, "adapter_sha256": "abc"}
    assert same_judge(hashed, {**hashed, "adapter": "/models/phyjudge", "revision": None})
    assert not same_judge(hashed, {**hashed, "adapter_sha256": "def"})


def test_xdist_workers_compare_and_the_controller_updates(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    """Under pytest-xdist (two workers, SCRIPTED judge) the verdicts travel on the reports:
    the drop fails its item and the controller alone writes the baseline."""
    setup(kit)
    pytester.makeini("[pytest]\npythonpath = .\n")
    args = ["-n", "2", *JUDGE, *BASE]
    first = pytester.runpytest_subprocess(*args, "--phyjudge-update-baseline")
    first.assert_outcomes(passed=4)
    first.stdout.fnmatch_lines(["baseline updated: * (4 entries, 4 new)"])
    kit.clip("ball", {"SA": 4, "gravity": 3})
    second = pytester.runpytest_subprocess(*args)
    second.assert_outcomes(passed=3, failed=1)
    second.stdout.fnmatch_lines(["*1 drop, 0 improvements*", "  dropped: basics::ball::gravity"])


def test_the_baseline_names_its_judge_without_local_paths() -> None:
    """A baseline is committed: an adapter or base in a local folder is named by the
    folder's name, and it still matches the judge that wrote it."""
    from pytest_phyjudge.regression.baseline import document, same_judge

    judge = {
        "kind": "local",
        "adapter": "/home/me/adapters/phyjudge-9B",
        "revision": None,
        "base": "/models/Qwen3.5-9B",
        "adapter_sha256": "abc",
    }
    stored = document(judge, {})["judge"]
    assert stored["adapter"] == "phyjudge-9B" and stored["base"] == "Qwen3.5-9B"
    assert "/home/me" not in json.dumps(stored)
    assert same_judge(stored, judge)
    moved = {**judge, "adapter": "/srv/elsewhere/phyjudge-9B", "base": "/mnt/Qwen3.5-9B"}
    assert same_judge(stored, moved)
    assert not same_judge(stored, {**judge, "adapter_sha256": "other"})
