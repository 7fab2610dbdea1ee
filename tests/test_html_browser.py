"""The HTML report in a real headless Chromium: clips play, filters hide and show cases, and
the page fetches nothing. Skips where chromium, chromedriver or selenium is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from pytester_kit import Kit
from test_html import SUITE

from pytest_phyjudge.testing.browser import (
    browser_missing,
    headless_chromium,
    requests_made,
    video_states,
    wait_for,
)

MISSING = browser_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no browser test: {MISSING}")

#: Where a screenshot of the page is copied, when set (a CI artifact folder).
ARTIFACTS = "PHYJUDGE_ARTIFACTS"


def _shown(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('article.case')]"
        ".filter(a => a.offsetParent !== null).map(a => a.id.replace(/^case-\\d+-/, ''));"
    )


def _choose(driver, select_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", select_id)).select_by_value(value)


def _save_screenshot(driver, tmp_path: Path) -> Path:
    shot = tmp_path / "html-report.png"
    assert driver.save_screenshot(str(shot))
    if os.environ.get(ARTIFACTS):
        folder = Path(os.environ[ARTIFACTS])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, folder / shot.name)
    return shot


def test_report_plays_its_clips_filters_and_stays_offline(
    pytester: pytest.Pytester, kit: Kit, tmp_path: Path
) -> None:
    kit.conftest({"gravity": 2, "*": 4}, name="html-judge")
    kit.suite(SUITE, name="html")
    # Clips of different lengths (2.0 s and 3.0 s) and sizes, one taller than 360p.
    kit.videos(["fall"], frames=12, fps=6, size=(96, 64))
    kit.videos(["lamp"], frames=24, fps=8, size=(640, 480))
    pytester.runpytest("-p", "no:warnings", "--phyjudge-html", "out/html")
    index = pytester.path / "out" / "html" / "index.html"
    with headless_chromium() as driver:
        driver.get(index.as_uri())
        states = wait_for(lambda: all(v["ready"] >= 2 for v in video_states(driver)))
        states = video_states(driver)
        assert states and all(v["ready"] >= 2 and v["error"] is None for v in states), states
        durations = {v["case"].split("-", 2)[2]: v["duration"] for v in states}
        assert durations == pytest.approx({"fall": 2.0, "lamp": 3.0}, abs=0.1)
        assert _shown(driver) == ["fall", "lamp", "gone"]
        _choose(driver, "f-status", "fail")
        assert _shown(driver) == ["fall"]
        _choose(driver, "f-status", "error")
        assert _shown(driver) == ["gone"]
        _choose(driver, "f-status", "")
        _choose(driver, "f-domain", "optics")
        assert _shown(driver) == ["lamp"]
        _choose(driver, "f-domain", "")
        _choose(driver, "f-axis", "gravity")
        _choose(driver, "f-status", "pass")
        assert _shown(driver) == []  # gravity fails in the one case that has it
        driver.find_element("id", "f-reset").click()
        assert wait_for(lambda: _shown(driver) == ["fall", "lamp", "gone"], seconds=2)
        driver.find_element("id", "f-text").send_keys("LAMP lights")
        assert _shown(driver) == ["lamp"]
        driver.find_element("css selector", "button.pick[data-axis='gravity']").click()
        driver.find_element("id", "f-text").clear()
        driver.execute_script("document.getElementById('f-text').dispatchEvent(new Event('input'))")
        assert _shown(driver) == ["fall"]
        # Nothing left the disk: neither in Chrome's network log nor in Resource Timing.
        fetched = requests_made(driver) + driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name);"
        )
        assert any(url.endswith("report.js") for url in fetched)  # the log does see loads
        assert [u for u in fetched if not u.startswith(("file:", "data:"))] == []
        shot = _save_screenshot(driver, tmp_path)
    assert shot.stat().st_size > 1000


def _phone_report(tmp_path: Path) -> Path:
    """A report with the widest rows a run writes (a distribution, a baseline, long node
    ids), one clip judged by a suite case and by a test function, an xfail and an xpass."""
    from pytest_phyjudge.reporting.html import write_html_report
    from pytest_phyjudge.testing import write_test_video

    clip = write_test_video(tmp_path / "clips" / "ball.mp4", size=(640, 360))
    probs = [0.05, 0.1, 0.15, 0.3, 0.4]

    def entry(score: int, outcome: str, nodeid: str, **more: object) -> dict:
        baseline = {"status": "drop", "stored": 5, "obtained": score, "tolerance": 0.5}
        return {"score": score, "min_score": 3, "passed": score >= 3, "outcome": outcome,
                "nodeid": nodeid, "raw": '{"x": 1}', "probs": probs, "expected": 3.9,
                "baseline": baseline, **more}  # fmt: skip

    suite_id = "tests/physics/a_rather_long_folder_name/basics.phyjudge.yaml::ball_falls_down"
    test_id = "tests/physics/a_rather_long_folder_name/test_videos.py::test_ball_falls_down"
    rows = [
        {"video": "ball_falls_down", "suite": "basics", "source": suite_id, "prompt": "A ball.",
         "video_path": str(clip), "generator": "wan-2.1-t2v-14b",
         "checks": {"gravity": entry(2, "xfailed", f"{suite_id}::gravity"),
                    "SA": entry(4, "xpassed", f"{suite_id}::SA")}},
        {"video": "ball", "source": test_id, "prompt": "A ball.", "video_path": str(clip),
         "checks": {"gravity": entry(2, "passed", test_id, would_fail=True)}},
    ]  # fmt: skip
    return write_html_report({"meta": {}, "results": rows}, tmp_path / "html", base=tmp_path)


def test_report_fits_a_phone_and_labels_each_card(tmp_path: Path) -> None:
    index = _phone_report(tmp_path)
    with headless_chromium() as driver:
        # A window is never under 500 px wide: a phone's viewport is emulated instead.
        metrics = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        driver.get(index.as_uri())
        width = driver.execute_script("return window.innerWidth;")
        assert width == 390  # the page really is laid out for a phone
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth;"
        )
        assert overflow <= 0, f"the page scrolls sideways by {overflow} px at {width} px"
        # The wide tables scroll inside their card instead.
        wide = driver.execute_script(
            "return [...document.querySelectorAll('.scroll')]"
            ".filter(d => d.scrollWidth > d.clientWidth).length;"
        )
        assert wide >= 1
        cards = driver.execute_script(
            "return [...document.querySelectorAll('article.case')].map(a => ["
            "a.querySelector('h2 .badge').textContent, a.querySelector('.source').textContent]);"
        )
        assert cards == [
            ["xfail", "suite case tests/physics/a_rather_long_folder_name/basics.phyjudge.yaml"
             "::ball_falls_down · generator wan-2.1-t2v-14b"],
            ["would fail", "test tests/physics/a_rather_long_folder_name/test_videos.py"
             "::test_ball_falls_down"],
        ]  # fmt: skip
        _save_screenshot(driver, tmp_path)
