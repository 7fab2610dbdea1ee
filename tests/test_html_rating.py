"""The HTML report's rating mode: a person scores the clips with the keyboard, the ratings
survive a reload (localStorage) and export as a scores.json that ``phyjudge agree`` pairs
with the judge's. The page's content is checked here without a browser; the real headless
Chromium run (keys, reload, download, agree) skips where chromium, chromedriver or selenium
is missing."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pytester_kit import Kit
from test_html import SUITE

from pytest_phyjudge.cli.main import main
from pytest_phyjudge.engine.axes import is_law
from pytest_phyjudge.reporting.html import write_html_report
from pytest_phyjudge.scores import check_scores, read_scores
from pytest_phyjudge.testing.browser import browser_missing, headless_chromium, wait_for

MISSING = browser_missing()
needs_browser = pytest.mark.skipif(MISSING is not None, reason=f"no browser test: {MISSING}")

#: A judge's document: two suite cases and a score-dir style row (generator, no suite); the
#: replies hold markup so that escaping shows.
JUDGED: dict[str, Any] = {
    "meta": {"judge": {"kind": "local", "adapter": "PhyJudge-9B"}},
    "results": [
        {
            "video": "fall",
            "suite": "s</script><b>",
            "prompt": "A ball <falls> & bounces.",
            "SA": 4,
            "physical": {"laws": {"gravity": {"score": 2}}},
            "checks": {
                "SA": {"score": 4, "raw": '{"SA": 4}', "probs": [0.0, 0.0, 0.1, 0.8, 0.1]},
                "gravity": {"score": 2, "raw": "<i>2</i>"},
            },
        },
        {"video": "lamp", "generator": "wan", "prompt": "A lamp.", "physical": {"laws": {}}},
    ],
}


def _rating_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="rating-data">(.*?)</script>', page)
    assert found, "no rating data in the page"
    return json.loads(found.group(1))


def test_the_page_carries_the_rating_mode_and_no_judge_score_in_it(tmp_path: Path) -> None:
    index = write_html_report(JUDGED, tmp_path / "html", base=tmp_path)
    page = index.read_text()
    assert (
        '<button type="button" id="rate-toggle" class="rate-toggle">Rate these clips</button>'
        in page
    )
    assert "The judge's scores are hidden so that they do not sway you." in page
    assert '<script src="assets/rating.js"></script>' in page
    for asset in ("rating.js", "rating.css"):
        assert (tmp_path / "html" / "assets" / asset).read_bytes() == (
            Path(__file__).parents[1] / "pytest_phyjudge/reporting/html/assets" / asset
        ).read_bytes()
    # The block is escaped for HTML: the suite's "</script>" cannot end it.
    block = re.search(r'id="rating-data">(.*?)</script>', page, re.S).group(1)  # type: ignore[union-attr]
    assert "<" not in block and ">" not in block and "&" not in block.replace("\\u0026", "")
    data = _rating_data(page)
    assert data["format"] == "pytest-phyjudge-scores" and data["version"] == 1
    assert data["kind"] == "human" and data["scale"] == [1, 5]
    assert re.fullmatch(r"[0-9a-f]{24}", data["identity"])
    # The keys agree pairs by, as the rows hold them (the display shows "generator wan").
    assert [(c["suite"], c["video"], c["generator"]) for c in data["cases"]] == [
        ("s</script><b>", "fall", None),
        (None, "lamp", "wan"),
    ]
    assert data["cases"][0]["prompt"] == "A ball <falls> & bounces."
    assert data["cases"][0]["axes"] == ["SA", "gravity"]
    assert data["cases"][1]["axes"] == []
    for case in data["cases"]:
        assert re.search(rf'<article class="case[^"]*" id="{case["anchor"]}"', page)
        # Nothing the judge said: no score, probability, reply or verdict.
        assert set(case) == {"anchor", "video", "suite", "prompt", "generator", "axes"}
    # The bar is static markup: no score of the judge in it either.
    bar = re.search(r'<section class="rate-bar".*?</section>', page, re.S).group(0)  # type: ignore[union-attr]
    assert not re.search(r"\d\.\d|E=|pass|fail", html.unescape(bar))


def test_the_identity_follows_the_clips_not_the_run(tmp_path: Path) -> None:
    """Another run of the judge over the same cases keeps the ratings; other cases do not."""

    def identity(document: dict[str, Any], name: str) -> str:
        page = write_html_report(document, tmp_path / name, base=tmp_path).read_text()
        return _rating_data(page)["identity"]

    rerun = json.loads(json.dumps(JUDGED))
    rerun["meta"]["created"] = "tomorrow"
    rerun["results"][0]["SA"] = 1
    other = json.loads(json.dumps(JUDGED))
    other["results"][1]["prompt"] = "A candle."
    assert identity(JUDGED, "a") == identity(rerun, "b") != identity(other, "c")


def _export(cases: list[tuple[dict[str, Any], dict[str, int]]]) -> dict[str, Any]:
    """A document as rating.js exports it (the browser test checks the real one)."""
    results = []
    for keys, scores in cases:
        row = dict(keys)
        laws = {a: {"score": v, "status": "scored"} for a, v in scores.items() if is_law(a)}
        row.update({a: v for a, v in scores.items() if not is_law(a)})
        if laws:
            row["physical"] = {"laws": laws}
        results.append(row)
    return {
        "meta": {
            "judge": {"kind": "human", "adapter": "human:ada"},
            "rater": "ada",
            "scale": [1, 5],
        },
        "num_videos": len(results),
        "general_dimensions": ["SA", "PTV", "persistence"],
        "results": results,
        "format": "pytest-phyjudge-scores",
        "version": 1,
    }


def test_agree_pairs_an_export_with_unrated_axes_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    judge, ratings = tmp_path / "judge.json", tmp_path / "ratings.json"
    judge.write_text(json.dumps(JUDGED))
    fall = {"video": "fall", "suite": "s</script><b>", "prompt": "A ball <falls> & bounces."}
    # gravity rated one off, SA left unrated; lamp (no axis the judge scored) rated on PTV.
    ratings.write_text(
        json.dumps(_export([(fall, {"gravity": 3}), ({"video": "lamp"}, {"PTV": 2})]))
    )
    document = read_scores(ratings)
    assert document.meta.judge == {"kind": "human", "adapter": "human:ada"}
    assert main(["agree", str(judge), str(ratings), "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["b"]["label"] == "human:ada"
    assert found["shared_cases"] == 1
    assert [(r["axis"], r["n"], r["exact"], r["within_one"]) for r in found["axes"]] == [
        ("gravity", 1, 0.0, 1.0)
    ]


@pytest.mark.parametrize(
    ("meta", "label"),
    [
        ({"judge": {"kind": "human", "adapter": "human:ada"}}, "human:ada"),
        ({"judge": {"kind": "human", "adapter": "ada"}}, "human:ada"),
        ({"judge": {"kind": "human"}}, "human:rater"),
        ({"judge": {"kind": "human", "adapter": "human:ada"}, "generator": "wan"}, "wan"),
        ({"judge": {"kind": "local", "adapter": "human:ada"}}, None),  # a judge, so named
    ],
)
def test_ratings_are_labelled_as_a_person_s(meta: dict[str, Any], label: str | None) -> None:
    document = check_scores({"meta": meta, "results": [{"video": "v", "SA": 3}]}, "r.json")
    assert document.meta.label == label


# --------------------------------------------------------------------------- the browser


def _keys(driver: Any, keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(keys).perform()


def _ratings_shown(driver: Any) -> dict[str, dict[str, str]]:
    """Each card's pressed buttons, by case name and axis."""
    return driver.execute_script(
        "var found = {};"
        "document.querySelectorAll('.rate-axis').forEach(function (row) {"
        "  var name = row.closest('article').id.replace(/^case-\\d+-/, '');"
        "  var on = row.querySelector('button[aria-pressed=true]');"
        "  found[name] = found[name] || {};"
        "  if (on) { found[name][row.dataset.axis] = on.textContent; }"
        "}); return found;"
    )


def _current(driver: Any) -> tuple[str, str]:
    """The case and axis the keys rate now (the one outlined card and row)."""
    card = driver.find_elements("css selector", "article.case.rate-current")
    row = driver.find_elements("css selector", ".rate-axis.current")
    assert len(card) == len(row) == 1
    assert row[0].find_element("xpath", "ancestor::article").id == card[0].id
    return card[0].get_attribute("id").split("-", 2)[2], row[0].get_attribute("data-axis")


def _progress(driver: Any) -> str:
    return driver.find_element("id", "rate-progress").text


def _screenshot(driver: Any) -> None:
    """The page in rating mode, saved where ``PHYJUDGE_ARTIFACTS`` says (a CI artifact)."""
    folder = os.environ.get("PHYJUDGE_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(Path(folder) / "html-rating.png"))


@needs_browser
def test_rate_with_the_keyboard_reload_export_and_agree(
    pytester: pytest.Pytester, kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kit.conftest({"gravity": 2, "*": 4}, name="rating-judge")
    kit.suite(SUITE, name="html")
    kit.videos(["fall", "lamp"], frames=6, fps=6, size=(64, 48))
    from selenium.webdriver.common.keys import Keys

    pytester.runpytest(
        "-p", "no:warnings", "--phyjudge-html", "out/html", "--phyjudge-report", "out/judge.json"
    )
    judge = pytester.path / "out" / "judge.json"
    index = pytester.path / "out" / "html" / "index.html"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with headless_chromium() as driver:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        driver.get(index.as_uri())
        axes_table = driver.find_element("css selector", "article.case table.axes")
        assert axes_table.is_displayed()
        driver.find_element("id", "rate-toggle").click()
        assert driver.execute_script("return location.hash") == "#rate"
        # The judge's verdicts are hidden while rating; the rating rows are shown.
        assert not axes_table.is_displayed()
        assert not driver.find_element("css selector", ".summaries").is_displayed()
        assert _progress(driver) == "0 of 6 rated (0 of 3 clips done)"
        # fall: SA 4, gravity 2 (the judge's own); lamp: SA 4, shadow 3 (one off).
        _keys(driver, "42")
        assert _progress(driver) == "2 of 6 rated (1 of 3 clips done)"
        _keys(driver, "4")
        driver.find_element("id", "rate-name").send_keys("ada")
        driver.find_element("css selector", "#rate-bar .rate-keys").click()  # leave the field
        _keys(driver, "3")
        assert _current(driver) == ("gone", "SA")  # moved on to the next clip
        assert _ratings_shown(driver) == {
            "fall": {"SA": "4", "gravity": "2"},
            "lamp": {"SA": "4", "shadow": "3"},
            "gone": {},
        }
        # Reload: the page opens in rating mode again with the ratings kept.
        driver.refresh()
        assert wait_for(lambda: _progress(driver) == "4 of 6 rated (2 of 3 clips done)", 5)
        assert _ratings_shown(driver)["lamp"] == {"SA": "4", "shadow": "3"}
        assert driver.find_element("id", "rate-name").get_attribute("value") == "ada"
        # It resumes at the first unrated axis (gone's SA); p goes back a clip, j down an
        # axis, 0 clears it, a digit rates it again and moves on.
        assert _current(driver) == ("gone", "SA")
        _keys(driver, "p")
        assert _current(driver) == ("lamp", "SA")
        _keys(driver, "j0")
        assert _current(driver) == ("lamp", "shadow")
        assert _progress(driver) == "3 of 6 rated (1 of 3 clips done)"
        _keys(driver, "3")
        assert _current(driver) == ("gone", "SA")
        _keys(driver, Keys.ARROW_UP + Keys.ARROW_LEFT)
        assert _current(driver) == ("fall", "SA")
        _screenshot(driver)
        driver.find_element("id", "rate-export").click()
        exported = downloads / "ratings.json"
        assert wait_for(exported.is_file, 10), list(downloads.iterdir())
    ratings = json.loads(exported.read_text())
    assert ratings["meta"]["judge"] == {"kind": "human", "adapter": "human:ada"}
    assert [r["video"] for r in ratings["results"]] == ["fall", "lamp"]  # gone: nothing rated
    assert ratings["results"][0] == {
        "video": "fall",
        "suite": "html-suite",
        "prompt": "A ball falls onto a table.",
        "SA": 4,
        "physical": {"laws": {"gravity": {"score": 2, "status": "scored"}}},
    }
    capsys.readouterr()  # the pytest run's own output
    assert main(["agree", str(judge), str(exported), "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["shared_cases"] == 2
    rows = {r["axis"]: (r["n"], r["exact"], r["within_one"]) for r in found["axes"]}
    assert rows == {"SA": (2, 1.0, 1.0), "gravity": (1, 1.0, 1.0), "shadow": (1, 0.0, 1.0)}
    assert (found["overall"]["exact"], found["overall"]["within_one"]) == (0.75, 1.0)
    assert main(["agree", str(judge), str(exported)]) == 0
    printed = capsys.readouterr().out
    assert "B: human:ada" in printed and "2 shared clips" in printed
    assert re.search(r"^all\s+4\s+0\.75\s+1\.00\s", printed, re.M), printed
