"""The example suite's HTML report, judged by the tiny CPU judge, and a screenshot of it
for the README (the page and the screenshot say the scores are meaningless).

    python example_suite/html_report.py [--out report] [--screenshot docs/html-report.png]

The screenshot needs Debian's chromium and chromium-driver and the selenium package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def screenshot(index: Path, out: Path, width: int = 1200, height: int = 1000) -> Path:
    """A PNG of the page with its first case in view, the clips loaded and posters shown."""
    from pytest_phyjudge.testing.browser import headless_chromium, video_states, wait_for

    with headless_chromium(width, height) as driver:
        driver.get(index.resolve().as_uri())
        wait_for(lambda: all(v["ready"] >= 2 for v in video_states(driver)))
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="report", help="the HTML report's folder")
    parser.add_argument("--screenshot", metavar="PNG", help="also save a screenshot here")
    args = parser.parse_args(argv)
    pytest.main(
        [
            str(HERE),
            "-q",
            "--phyjudge-judge", "tiny",
            "--phyjudge-scoring", "distribution",
            "--phyjudge-html", args.out,
        ]
    )  # fmt: skip
    index = Path(args.out) / "index.html"
    if not index.is_file():
        print(f"no report was written to {index}", file=sys.stderr)
        return 1
    print(f"open {index.resolve().as_uri()}")
    if args.screenshot:
        print(f"screenshot: {screenshot(index, Path(args.screenshot))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
