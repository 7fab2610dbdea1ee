"""``phyjudge compare``: the table, the paired test, --fail-on-regression, the chart, bad input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from PIL import Image
from pytester_kit import Kit

from pytest_phyjudge.cli.exits import EXIT_OK, EXIT_REGRESSION, EXIT_USAGE
from pytest_phyjudge.cli.main import main
from pytest_phyjudge.regression.compare import compare, read_report


def report(path: Path, scores: dict[str, dict[str, int]], judge: str = "j") -> Path:
    """A PhyGround-style scores.json with the given {case: {axis: score}}."""
    results = []
    for case, axes in scores.items():
        laws = {a: {"score": s, "status": "scored"} for a, s in axes.items() if a != "SA"}
        results.append(
            {
                "video": case,
                "prompt": f"prompt of {case}",
                "physical_laws": list(laws),
                "SA": axes.get("SA"),
                "PTV": None,
                "persistence": None,
                "physical": {"laws": laws},
            }
        )
    meta = {"judge": {"kind": "local", "adapter": judge}}
    path.write_text(json.dumps({"meta": meta, "num_videos": len(results), "results": results}))
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["compare", *args])
    except SystemExit as exc:
        code = int(exc.code)
    out, err = capsys.readouterr()
    return code, out, err


def eight(sa: int, gravity: int) -> dict[str, dict[str, int]]:
    return {f"c{i}": {"SA": sa, "gravity": gravity} for i in range(8)}


def test_table_and_regression_exit(tmp_path: Path, capsys) -> None:
    """SA falls by 1 on all 8 shared cases: exact sign-flip p = 2/256; gravity is unchanged."""
    a = report(tmp_path / "a.json", {**eight(4, 3), "old_only": {"SA": 5}})
    b = report(tmp_path / "b.json", eight(3, 3))
    code, out, _ = run(capsys, str(a), str(b))
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == f"A: a  ({a})" and lines[1] == f"B: b  ({b})"
    assert lines[2].startswith("shared cases: 8 (only in A: 1, only in B: 0)")
    assert lines[2].endswith("adjusted over the 2 axes by Holm")
    table = "\n".join(lines[3:])
    # Holm over 2 axes: SA's p 2/256 is the smaller, so it is doubled (0.016); gravity's 1.0.
    assert table == textwrap.dedent(
        """\
        axis      n     A     B  delta          95% CI      p  p adj
        SA        8  4.00  3.00  -1.00  [-1.00, -1.00]  0.008  0.016  REGRESSION
        gravity   8  3.00  3.00  +0.00  [+0.00, +0.00]  1.000  1.000
        all      16  3.50  3.00  -0.50  [-0.75, -0.25]  0.008
        significant regressions (Holm-adjusted p < 0.05): 1 (SA)"""
    )
    code, _, _ = run(capsys, str(a), str(b), "--fail-on-regression")
    assert code == EXIT_REGRESSION


def test_few_cases_are_not_significant(tmp_path: Path, capsys) -> None:
    """Five cases all worse: the exact p is 2/32 = 0.0625, not below 0.05; at 90% it is."""
    a = report(tmp_path / "a.json", {f"c{i}": {"SA": 4} for i in range(5)})
    b = report(tmp_path / "b.json", {f"c{i}": {"SA": 3} for i in range(5)})
    code, out, _ = run(capsys, str(a), str(b), "--fail-on-regression")
    assert code == EXIT_OK and "0.062" in out and "no significant regression" in out
    code, out, _ = run(capsys, str(a), str(b), "--fail-on-regression", "--confidence", "0.9")
    assert code == EXIT_REGRESSION and "90% CI" in out


def test_improvement_is_not_a_regression(tmp_path: Path, capsys) -> None:
    a = report(tmp_path / "a.json", eight(3, 3))
    b = report(tmp_path / "b.json", eight(4, 3), judge="other")
    code, out, _ = run(capsys, str(a), str(b), "--fail-on-regression")
    assert code == EXIT_OK
    assert "+1.00" in out and "REGRESSION" not in out
    assert "different judges" in out


def test_chart_is_a_png_of_the_expected_size(tmp_path: Path, capsys) -> None:
    a = report(tmp_path / "a.json", eight(4, 3))
    b = report(tmp_path / "b.json", eight(3, 4))
    chart = tmp_path / "charts" / "ab.png"
    code, out, _ = run(capsys, str(a), str(b), "--plot", str(chart))
    assert code == EXIT_OK and f"chart: {chart}" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(chart) as image:
        image.verify()
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.size == (1000, 600)


def test_no_case_in_common(tmp_path: Path, capsys) -> None:
    a = report(tmp_path / "a.json", {"x": {"SA": 4}})
    b = report(tmp_path / "b.json", {"y": {"SA": 4}})
    code, _, err = run(capsys, str(a), str(b))
    assert code == EXIT_USAGE
    assert "have no case in common (1 and 1 cases)" in err and str(a) in err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{oops", "is not valid JSON"),
        ('{"format": "pytest-phyjudge-baseline"}', "is not a scores.json report"),
        ('{"results": [{"SA": 3}]}', "results[0] has no 'video'"),
    ],
)
def test_bad_reports(tmp_path: Path, capsys, text: str, words: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    good = report(tmp_path / "a.json", {"x": {"SA": 4}})
    code, _, err = run(capsys, str(good), str(bad))
    assert code == EXIT_USAGE and words in err and "bad.json" in err
    code, _, err = run(capsys, str(good), str(tmp_path / "missing.json"))
    assert code == EXIT_USAGE and "does not exist" in err


def test_bad_confidence_is_a_usage_error(tmp_path: Path, capsys) -> None:
    a = report(tmp_path / "a.json", {"x": {"SA": 4}})
    code, _, err = run(capsys, str(a), str(a), "--confidence", "1.5")
    assert code == EXIT_USAGE and "confidence in (0, 1)" in err


SUITE = """
suite: s
videos: clips/{id}-{sample}.mp4
defaults: {metrics: [SA], samples: 2, pass_rate: 0.5}
cases:
  - {id: a, prompt: A ball falls., laws: [gravity]}
  - {id: b, prompt: A cup tips., laws: [collision]}
"""


def test_compare_two_pytest_reports(pytester: pytest.Pytester, kit: Kit, capsys) -> None:
    """Two runs of a sampled suite with a SCRIPTED judge (every axis of a clip gets the
    score written in it): version 2's clips score lower; compare pairs the case means."""
    kit.judges()
    kit.suite(SUITE)
    for version, scores in (("v1", [4, 4]), ("v2", [4, 2])):
        for case in ("a", "b"):
            for i, score in enumerate(scores):
                kit.clip(f"{case}-{i}", {"*": score})
        result = pytester.runpytest(
            "--phyjudge-judge", "judges:make", "--phyjudge-report", f"{version}.json"
        )
        result.assert_outcomes(passed=4)
    v1, v2 = read_report(pytester.path / "v1.json"), read_report(pytester.path / "v2.json")
    assert v1.values[("s::a", "gravity")] == 4.0 and v2.values[("s::a", "gravity")] == 3.0
    comparison = compare(v1, v2)
    assert [r.axis for r in comparison.rows] == ["SA", "gravity", "collision"]
    assert comparison.overall.n == 4 and comparison.overall.delta == -1.0
    code, out, _ = run(capsys, str(pytester.path / "v1.json"), str(pytester.path / "v2.json"))
    assert code == EXIT_OK and "shared cases: 2" in out


def test_unwritable_chart_is_a_usage_error(tmp_path: Path, capsys) -> None:
    a = report(tmp_path / "a.json", {"x": {"SA": 4}})
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run(capsys, str(a), str(a), "--plot", str(blocker / "chart.png"))
    assert code == EXIT_USAGE and "Cannot write the chart" in err
