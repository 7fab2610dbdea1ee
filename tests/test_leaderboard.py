"""``phyjudge leaderboard``: PhyGround's aggregation on a small example computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from test_compare import report, run

from pytest_phyjudge.cli.exits import EXIT_OK, EXIT_USAGE
from pytest_phyjudge.regression.compare import read_report
from pytest_phyjudge.regression.leaderboard import COLUMNS, board_row

#: Three videos; v3 has no PTV. Law scores by domain: solid 2, 4, 4, 3, 3 (n 5, mean 3.2);
#: fluid 5, 3 (n 2, mean 4.0); optics 1 (n 1, mean 1.0).
X = {
    "v1": {"SA": 4, "PTV": 3, "persistence": 5, "gravity": 2, "collision": 4, "buoyancy": 5},
    "v2": {"SA": 2, "PTV": 3, "persistence": 3, "gravity": 4, "shadow": 1},
    "v3": {
        "SA": 3,
        "PTV": None,
        "persistence": 4,
        "momentum": 3,
        "material": 3,
        "flow_dynamics": 3,
    },
}


def test_domains_are_weighted_by_their_counts(tmp_path: Path) -> None:
    """General: SA 9/3 = 3.0, PTV 6/2 = 3.0, persistence 12/3 = 4.0, their mean 10/3.
    Laws: (5 x 3.2 + 2 x 4.0 + 1 x 1.0) / 8 = 25/8 = 3.125 (the plain mean of the three
    domain means would be 2.733). Overall = 0.5 x 10/3 + 0.5 x 25/8 = 3.2292."""
    row = board_row(read_report(report(tmp_path / "x.json", X, video_model="gen-x")))
    assert row.label == "gen-x"
    assert row.scores == pytest.approx(
        {
            "SA": 3.0,
            "PTV": 3.0,
            "persistence": 4.0,
            "Solid-Body": 3.2,
            "Fluid": 4.0,
            "Optical": 1.0,
            "Overall": 0.5 * 10 / 3 + 0.5 * 25 / 8,
        }
    )
    assert row.counts == {
        "SA": 3,
        "PTV": 2,
        "persistence": 3,
        "Solid-Body": 5,
        "Fluid": 2,
        "Optical": 1,
        "Overall": 16,
    }


def _runs(tmp_path: Path) -> list[str]:
    x = report(tmp_path / "x.json", X, video_model="gen-x")
    y = report(
        tmp_path / "y.json",
        {"v1": {"SA": 5, "PTV": 5, "persistence": 5, "gravity": 5}},
        generator="gen-y",
    )
    no_laws = report(tmp_path / "z.json", {"v1": {"SA": 5, "PTV": 5, "persistence": 5}})
    return [str(x), str(no_laws), str(y)]


def test_table_ranked_by_overall(tmp_path: Path, capsys) -> None:
    code, out, _ = run(capsys, *_runs(tmp_path), command="leaderboard")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0].split() == [
        "rank",
        "run",
        "SA",
        "PTV",
        "Persist.",
        "Solid-Body",
        "Fluid",
        "Optical",
        "Overall",
    ]
    assert lines[1].split() == ["1", "gen-y", "5.00", "5.00", "5.00", "5.00", "-", "-", "5.00"]
    assert lines[2].split() == [
        "2",
        "gen-x",
        "3.00",
        "3.00",
        "4.00",
        "3.20",
        "4.00",
        "1.00",
        "3.23",
    ]
    # No law scored: no Overall, ranked last; named by its file, having no generator.
    assert lines[3].split() == ["3", "z", "5.00", "5.00", "5.00", "-", "-", "-", "-"]


def test_a_stand_in_judges_run_is_ranked_with_a_warning(tmp_path: Path, capsys) -> None:
    real = report(tmp_path / "real.json", {"v1": {"SA": 3}})
    tiny = report(tmp_path / "tiny.json", {"v1": {"SA": 5}})
    document = json.loads(tiny.read_text())
    document["meta"]["judge"]["kind"] = "tiny"
    tiny.write_text(json.dumps(document))
    code, out, err = run(capsys, str(real), str(tiny), command="leaderboard")
    assert code == EXIT_OK and "tiny" in out
    assert f"phyjudge: warning: {tiny}: the judge is a tiny test stand-in" in err
    assert "MEANINGLESS" in err and str(real) not in err


def test_markdown_json_labels_and_plot(tmp_path: Path, capsys) -> None:
    runs = _runs(tmp_path)
    labels = ["--label", "mine", "--label", "empty", "--label", "theirs"]
    code, out, _ = run(capsys, *runs, *labels, "--format", "markdown", command="leaderboard")
    assert code == EXIT_OK
    assert "| 1 | theirs | 5.00 | 5.00 | 5.00 | 5.00 | - | - | 5.00 |" in out
    assert "| 2 | mine | 3.00 | 3.00 | 4.00 | 3.20 | 4.00 | 1.00 | 3.23 |" in out
    assert "| :--- | :--- | ---: |" in out
    chart = tmp_path / "board.png"
    code, out, err = run(
        capsys, *runs, "--format", "json", "--plot", str(chart), command="leaderboard"
    )
    data = json.loads(out)  # the chart's notice goes to stderr
    assert err.strip() == f"chart: {chart}"
    assert [r["label"] for r in data["rows"]] == ["gen-y", "gen-x", "z"]
    assert data["rows"][1]["counts"]["Solid-Body"] == 5 and data["rows"][2]["rank"] == 3
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.size == (1000, 600)


def test_bad_run_is_a_usage_error(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    code, _, err = run(capsys, str(bad), command="leaderboard")
    assert code == EXIT_USAGE and "bad.json is not a scores.json report" in err


#: PhyGround's published PhyJudge-9B leaderboard (its phyjudge_leaderboard.json, 2026-05-11):
#: SA, PTV, persistence, Solid-Body, Fluid, Optical, Overall per video model, two decimals.
PUBLISHED = {
    "veo-3.1": (3.03, 3.10, 3.11, 2.90, 3.33, 3.70, 3.05),
    "cosmos-predict2.5-14b": (2.79, 2.96, 3.26, 2.90, 3.14, 3.09, 2.97),
    "wan2.2-i2v-a14b": (2.78, 2.97, 3.08, 2.84, 3.04, 3.36, 2.92),
    "hunyuanvideo-i2v": (2.61, 2.98, 3.15, 2.85, 3.12, 2.94, 2.90),
    "cosmos-predict2.5-2b": (2.60, 2.73, 3.07, 2.72, 2.92, 3.57, 2.80),
    "omniweaving": (2.68, 2.73, 2.92, 2.71, 2.99, 3.13, 2.78),
    "ltx-2-19b-distilled-fp8": (2.64, 2.70, 2.88, 2.70, 3.19, 2.87, 2.76),
    "ltx-2.3-22b-dev": (2.63, 2.79, 2.91, 2.55, 3.02, 3.21, 2.72),
    "wan2.2-ti2v-5b": (2.48, 2.70, 2.76, 2.61, 3.01, 3.45, 2.68),
    "ltx-2-19b-dev": (2.50, 2.62, 2.79, 2.49, 3.01, 3.09, 2.62),
    "cogvideox1.5-5b-i2v": (2.43, 2.58, 2.60, 2.47, 2.85, 2.85, 2.54),
}


def test_the_published_phyground_leaderboard_is_reproduced(tmp_path: Path, capsys) -> None:
    """From PhyGround's own results files (eval_qwen9b_local_subq_human_humaneval_set_*.json,
    put in ../shared/phyground/results), the command prints the published table."""
    from conftest import PHYGROUND

    files = sorted((PHYGROUND / "results").glob("eval_qwen9b_local_subq_human_*.json"))
    if not files:
        pytest.skip(f"PhyGround's results files are not in {PHYGROUND / 'results'}")
    code, out, err = run(capsys, *map(str, files), "--format", "json", command="leaderboard")
    assert code == EXIT_OK, err
    rows = json.loads(out)["rows"]
    seen = {}
    for row in rows:
        published = PUBLISHED.get(row["label"])
        if published is not None:
            seen[row["label"]] = tuple(round(row["scores"][c], 2) for c in COLUMNS)
            assert seen[row["label"]] == published, row["label"]
    assert seen, "none of the files is a published run"
    published_order = [label for label in PUBLISHED if label in seen]
    assert [r["label"] for r in rows if r["label"] in seen] == published_order


def test_published_rows_are_reproduced_from_phygrounds_own_results(capsys) -> None:
    """tests/data holds the scores of three of PhyGround's published results files (Veo-3.1,
    Cosmos-14B and CogVideoX1.5-5B-I2V: first, second and last in the published table; every
    other field dropped). The command prints their published rows, in the published order."""
    files = sorted((Path(__file__).parent / "data").glob("phyground_*_results.json"))
    assert len(files) == 3
    code, out, err = run(capsys, *map(str, files), "--format", "json", command="leaderboard")
    assert code == EXIT_OK, err
    rows = json.loads(out)["rows"]
    assert [row["label"] for row in rows] == [
        "veo-3.1",
        "cosmos-predict2.5-14b",
        "cogvideox1.5-5b-i2v",
    ]
    for row in rows:
        assert tuple(round(row["scores"][c], 2) for c in COLUMNS) == PUBLISHED[row["label"]]
        assert row["counts"]["SA"] == 250 and row["counts"]["Optical"] == 47
