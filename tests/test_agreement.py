"""``phyjudge agree``: per-axis agreement of two runs over the same clips, against values
computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_compare import report, run

from pytest_phyjudge.cli.exits import EXIT_OK, EXIT_USAGE
from pytest_phyjudge.regression.agreement import agreement, quadratic_kappa, spearman_rho
from pytest_phyjudge.regression.compare import read_report

A_SA = [1, 2, 3, 5]
B_SA = [1, 3, 3, 4]


def test_quadratic_kappa_and_rho_by_hand() -> None:
    """Observed squared disagreement: (0 + 1 + 0 + 1) / 4 = 0.5. Expected, over every
    (a_i, b_j): (17 + 7 + 5 + 25) / 16 = 3.375. Kappa = 1 - 0.5 / 3.375 = 23/27.
    Ranks: a 1, 2, 3, 4; b 1, 2.5, 2.5, 4: rho = 4.5 / sqrt(5 * 4.5) = 3 / sqrt(10)."""
    assert quadratic_kappa(A_SA, B_SA) == pytest.approx(23 / 27)
    assert spearman_rho(A_SA, B_SA) == pytest.approx(3 / math.sqrt(10))
    assert quadratic_kappa([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    # No spread at all: both undefined, never a made-up number.
    assert quadratic_kappa([3, 3], [3, 3]) is None and spearman_rho([3, 3], [3, 3]) is None


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    a = {f"c{i}": {"SA": s, "gravity": 3} for i, s in enumerate(A_SA)}
    b = {f"c{i}": {"SA": s, "gravity": 3} for i, s in enumerate(B_SA)}
    b["only_b"] = {"SA": 5}
    return report(tmp_path / "a.json", a), report(tmp_path / "b.json", b)


def test_agreement_per_axis(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    found = agreement(read_report(a), read_report(b))
    sa, gravity = found.rows
    assert found.shared_cases == 4
    assert (sa.axis, sa.n, sa.exact, sa.within_one) == ("SA", 4, 0.5, 1.0)
    assert sa.kappa == pytest.approx(23 / 27) and sa.rho == pytest.approx(3 / math.sqrt(10))
    assert (gravity.exact, gravity.kappa, gravity.rho) == (1.0, None, None)
    assert found.overall.n == 8 and found.overall.exact == 0.75


def _score_pairs() -> list[tuple[list[int], list[int]]]:
    """Random pairs of 1-5 score columns (1 to 60 long, some close, some unrelated), and edges:
    one pair, one side constant, both constant apart, full and reversed agreement."""
    import numpy as np

    rng = np.random.default_rng(20)
    pairs = [
        ([3], [4]),
        ([1], [5]),
        ([3, 3, 3], [1, 4, 5]),
        ([1, 4, 5], [2, 2, 2]),
        ([2, 2], [4, 4]),
        ([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]),
        ([1, 2, 3, 4, 5] * 3, [1, 2, 3, 4, 5] * 3),
        ([1, 5, 1, 5], [5, 1, 5, 1]),
    ]
    for _ in range(60):
        n = int(rng.integers(1, 61))
        a = rng.integers(1, 6, size=n)
        noise = rng.integers(-2, 3, size=n) * (rng.uniform(size=n) < rng.uniform())
        b = np.clip(a + noise, 1, 5) if rng.uniform() < 0.7 else rng.integers(1, 6, size=n)
        pairs.append((a.tolist(), b.tolist()))
    return pairs


def test_kappa_gives_statsmodels_values() -> None:
    """The kappa replaced statsmodels' ``cohens_kappa`` (about 150 MB of the light core with
    pandas); it must give its values, and None exactly where it gives no finite number."""
    import numpy as np

    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    for a, b in _score_pairs():
        table = np.zeros((5, 5))
        np.add.at(table, (np.array(a) - 1, np.array(b) - 1), 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = float(inter_rater.cohens_kappa(table, wt="quadratic", return_results=False))
        got = quadratic_kappa(a, b)
        if math.isfinite(expected):
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), (a, b)
        else:
            assert got is None, (a, b)
    assert quadratic_kappa([4, 4, 4], [4, 4, 4]) is None
    assert quadratic_kappa([2, 2], [4, 4]) == 0.0  # constant apart: no better than chance
    assert quadratic_kappa([1, 5, 1, 5], [5, 1, 5, 1]) == pytest.approx(-1.0)


def test_sampled_means_are_rounded_for_kappa_not_for_rho() -> None:
    from pytest_phyjudge.regression.agreement import axis_agreement

    row = axis_agreement("SA", [(2.5, 3.0), (1.0, 1.0), (4.4, 4.0)])
    assert (row.exact, row.within_one) == (1.0, 1.0)  # 2.5 -> 3, 4.4 -> 4
    assert row.kappa == pytest.approx(1.0)
    assert row.rho == pytest.approx(1.0)


def test_agree_command_formats(tmp_path: Path, capsys) -> None:
    a, b = _pair(tmp_path)
    code, out, _ = run(capsys, str(a), str(b), command="agree")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[:2] == ["A: a", "B: b"]
    assert lines[3].split() == [
        "axis",
        "n",
        "exact",
        "within",
        "1",
        "kappa",
        "(quadratic)",
        "Spearman",
        "rho",
    ]
    assert lines[4].split() == ["SA", "4", "0.50", "1.00", "0.85", "0.95"]
    assert lines[5].split() == ["gravity", "4", "1.00", "1.00", "-", "-"]
    code, out, _ = run(
        capsys,
        str(a),
        str(b),
        "--format",
        "markdown",
        "--label",
        "run 1",
        "--label",
        "run 2",
        command="agree",
    )
    assert out.startswith("### phyjudge agree: run 1 (A) vs run 2 (B)")
    assert "| SA | 4 | 0.50 | 1.00 | 0.85 | 0.95 |" in out
    code, out, _ = run(capsys, str(a), str(b), "--format", "json", command="agree")
    data = json.loads(out)
    assert data["axes"][0]["kappa"] == pytest.approx(23 / 27) and data["overall"]["n"] == 8


def test_agree_needs_one_label_per_file(tmp_path: Path, capsys) -> None:
    a, b = _pair(tmp_path)
    code, _, err = run(capsys, str(a), str(b), "--label", "x", command="agree")
    assert code == EXIT_USAGE and "--label was given 1 time for 2 files" in err


def test_agree_plots_each_axis_agreement_matrix(tmp_path: Path, capsys) -> None:
    a, b = _pair(tmp_path)
    found = agreement(read_report(a), read_report(b))
    sa = found.rows[0]
    # A 1, 2, 3, 5 against B 1, 3, 3, 4: row A's score, column B's.
    assert [(i + 1, j + 1) for i, r in enumerate(sa.matrix) for j, n in enumerate(r) if n] == [
        (1, 1),
        (2, 3),
        (3, 3),
        (5, 4),
    ]
    assert sum(map(sum, found.overall.matrix)) == found.overall.n == 8
    chart = tmp_path / "agree.png"
    code, out, err = run(capsys, str(a), str(b), "--plot", str(chart), command="agree")
    assert code == EXIT_OK, err
    assert f"chart: {chart}" in err and "chart:" not in out  # stdout: the table only
    from PIL import Image

    with Image.open(chart) as image:
        assert image.format == "PNG" and image.width > 500
    code, _, err = run(capsys, str(a), str(b), "--plot", str(tmp_path), command="agree")
    assert code == EXIT_USAGE and "Cannot write the chart" in err
