"""The README's forest plot: two simulated PhyGround-shaped runs (250 videos, a judge with
+-1 noise) where the new generator really is worse on collision (3 in 5 of its scores a
point lower) and nothing else changed, compared the way ``phyjudge compare --plot`` does.

    python example_suite/compare_plot.py [--out docs/compare-forest.png]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from pytest_phyjudge.engine.axes import MIN_SCORE
from pytest_phyjudge.regression.compare import compare
from pytest_phyjudge.reporting.charts import write_forest
from pytest_phyjudge.reporting.compare_view import comparison_text
from pytest_phyjudge.testing.null_runs import null_pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/compare-forest.png"))
    args = parser.parse_args()
    old, new = null_pair(seed=1)
    # Every other collision score of the new run one point lower: a real, small regression.
    worse = {
        key: max(float(MIN_SCORE), value - (index % 5 < 3)) if key[1] == "collision" else value
        for index, (key, value) in enumerate(new.values.items())
    }
    old = dataclasses.replace(old, label="gen-v1")
    new = dataclasses.replace(new, values=worse, label="gen-v2")
    comparison = compare(old, new)
    print("\n".join(comparison_text(comparison)))
    print(f"wrote {write_forest(comparison, args.out)}")


if __name__ == "__main__":
    main()
