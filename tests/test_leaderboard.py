"""``phyjudge leaderboard``: PhyGround's aggregation on a small example computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from test_compare import report, run

from pytest_phyjudge.cli.exits import EXIT_OK, EXIT_USAGE
from pytest_phyjudge.regression.compare import read_report
from pytest_phyjudge.regression.leaderboard import board_row

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


def test_markdown_json_labels_and_plot(tmp_path: Path, capsys) -> None:
    runs = _runs(tmp_path)
    labels = ["--label", "mine", "--label", "empty", "--label", "theirs"]
    code, out, _ = run(capsys, *runs, *labels, "--format", "markdown", command="leaderboard")
    assert code == EXIT_OK
    assert "| 1 | theirs | 5.00 | 5.00 | 5.00 | 5.00 | - | - | 5.00 |" in out
    assert "| 2 | mine | 3.00 | 3.00 | 4.00 | 3.20 | 4.00 | 1.00 | 3.23 |" in out
    assert "| :--- | :--- | ---: |" in out
    chart = tmp_path / "board.png"
    code, out, _ = run(
        capsys, *runs, "--format", "json", "--plot", str(chart), command="leaderboard"
    )
    data = json.loads(out[: out.rindex("}") + 1])
    assert [r["label"] for r in data["rows"]] == ["gen-y", "gen-x", "z"]
    assert data["rows"][1]["counts"]["Solid-Body"] == 5 and data["rows"][2]["rank"] == 3
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.size == (1000, 600)


def test_bad_run_is_a_usage_error(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    code, _, err = run(capsys, str(bad), command="leaderboard")
    assert code == EXIT_USAGE and "bad.json is not a scores.json report" in err
