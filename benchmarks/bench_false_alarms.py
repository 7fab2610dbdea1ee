"""How often ``phyjudge compare --fail-on-regression`` fires when nothing changed.

Each run: a PhyGround-shaped result set (250 videos, the 3 general metrics on each and the 13
laws on as many videos as in PhyGround's prompt set), judged twice by a judge whose every
score moves by -1, 0 or +1 (kept on 1-5); the two runs are compared at 95%. Prints how many
runs the gate fired on with raw p-values (no correction) and with the adjusted ones. It is
a script that prints figures, not a test:

    python benchmarks/bench_false_alarms.py                     # 200 runs, Holm
    python benchmarks/bench_false_alarms.py --runs 40 --correction bh
"""

from __future__ import annotations

import argparse

from pytest_phyjudge.regression.stats import CORRECTION_TITLES, CORRECTIONS
from pytest_phyjudge.testing.null_runs import false_alarms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--correction", choices=CORRECTIONS, default="holm")
    args = parser.parse_args()
    found = false_alarms(args.runs, seed=args.seed, correction=args.correction)
    rows = [("raw p", found.raw)]
    if found.correction != "none":
        rows.append((f"{CORRECTION_TITLES[found.correction]}-adjusted p", found.adjusted))
    width = max(len(what) for what, _ in rows)
    for what, fired in rows:
        print(
            f"{what:>{width}}: fired in {fired} of {found.runs} null runs "
            f"({fired / found.runs:.1%})"
        )


if __name__ == "__main__":
    main()
