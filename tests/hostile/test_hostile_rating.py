"""The HTML report's rating mode and what reads its export (``phyjudge agree``), attacked:
hostile strings in every field that reaches the page (markup, ``</script>``, ``<!--``,
U+2028, bidi overrides, NUL, ESC, a lone surrogate), forged rating exports (a hostile rater,
scores out of 1-5, NaN, strings, duplicate clips and keys, a newer version) and agree's
``--plot`` over what is not an earlier chart (a symlink to a secret, a user's file, a FIFO,
a folder). Each must end in a clear error naming the file and field, or a safe success:
never a traceback, never markup or a control character that acts, never a user's file lost.
"""

from __future__ import annotations

import copy
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pytester_kit import Kit

from pytest_phyjudge.cli.exits import EXIT_OK, EXIT_USAGE
from pytest_phyjudge.cli.main import main
from pytest_phyjudge.engine.axes import ALL_AXES, AXIS_HINTS
from pytest_phyjudge.reporting.html import write_html_report
from pytest_phyjudge.testing.browser import browser_missing, headless_chromium, wait_for

MISSING = browser_missing()

#: What a control character may not stay in a page or a printed line as.
CONTROLS = ("\x00", "\x07", "\x1b", "\r", "\u202e", "\u2066", "\u2028", "\u2029", "\x85")
#: Markup and script breakers, template syntax, a URL scheme and every control above.
HOSTILE = (
    "</script><script>window.pwned=1</script> <!-- \"'><img src=x onerror=window.pwned=2> "
    "{{ 7*7 }}{% raw %} javascript:alert(1) \u202eevil\u2066 a\u2028b\u2029 \x1b[31m\x00\x07\r\x85"
)


def _judged(text: str = HOSTILE) -> dict[str, Any]:
    """A judge's report with ``text`` in every string field the page shows."""
    check = {
        "score": 3,
        "min_score": 3,
        "passed": True,
        "outcome": "xpassed",
        "raw": text,
        "error": text,
        "nodeid": text,
        "prompt": {"system": text, "user": text},
        "baseline": {"status": text, "stored": 3, "obtained": 2},
        "samples": [{"sample": 0, "seed": 1, "score": 3, "expected": 3.0, "error": text}],
    }
    return {
        "meta": {
            "judge": {"kind": "remote", "adapter": text, "base": text, "revision": text},
            "created": text,
            "generator": text,
            "judge_warnings": [{"axis": "SA", "kind": "constant", "message": text}],
            "canary": {
                "file": text,
                "status": "failed",
                "line": text,
                "verdict": "drift",
                "notes": [text],
                "drifted": [text],
            },
            "judge_server": {"model": text, "system_fingerprint": text},
        },
        "results": [
            {
                "video": "fall" + text,
                "suite": text,
                "source": text,
                "prompt": text,
                "generator": text,
                "video_path": "javascript:alert(1)",
                "SA": 3,
                "physical": {"laws": {"gravity": {"score": 2, "status": text}}},
                "checks": {"SA": check, "gravity": {"score": 2, "outcome": "xfailed", "raw": text}},
            },
            {"video": "lamp", "prompt": "A lamp.", "SA": 4},
        ],
    }


class _Page(HTMLParser):
    """Every tag's attributes and every script's text, as a browser would read them."""

    def __init__(self) -> None:
        super().__init__()
        self.attributes: list[tuple[str, str, str | None]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [(tag, name, value) for name, value in attrs]
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def _page(document: dict[str, Any], tmp_path: Path) -> tuple[str, _Page]:
    index = write_html_report(document, tmp_path / "html", base=tmp_path)
    text = index.read_text(encoding="utf-8")
    parsed = _Page()
    parsed.feed(text)
    return text, parsed


def _rating_data(parsed: _Page) -> dict[str, Any]:
    (block,) = [text for attrs, text in parsed.scripts if attrs.get("id") == "rating-data"]
    return json.loads(block)


# --------------------------------------------------------------------------- the page


def test_no_field_adds_markup_a_script_or_a_control_character_to_the_page(
    tmp_path: Path,
) -> None:
    page, parsed = _page(_judged(), tmp_path)
    # The only scripts are the page's own two files and its one JSON block.
    assert [(a.get("src"), a.get("type")) for a, _ in parsed.scripts] == [
        ("assets/report.js", None),
        (None, "application/json"),
        ("assets/rating.js", None),
    ]
    assert {(tag, name) for tag, name, _ in parsed.attributes if name.startswith("on")} == {
        ("form", "onsubmit")  # the template's own "return false"
    }
    assert "<img" not in page and "javascript:" not in "".join(
        str(v) for _, n, v in parsed.attributes if n in ("href", "src", "poster")
    )
    # Control characters are shown as escapes: none reorders or hides what is read.
    found = {repr(c) for c in CONTROLS if c in page}
    assert not found, f"control characters in the page: {found}"
    assert "evil\\u2066" in page and "\\x1b[31m\\x00\\x07" in page


def test_the_rating_block_cannot_end_its_script_and_keeps_the_keys_exactly(
    tmp_path: Path,
) -> None:
    _, parsed = _page(_judged(), tmp_path)
    (block,) = [text for attrs, text in parsed.scripts if attrs.get("id") == "rating-data"]
    for breaker in ("<", ">", "\u2028", "\u2029"):
        assert breaker not in block
    data = json.loads(block)
    # The export pairs by these: they are the rows' own strings, controls and all.
    first = data["cases"][0]
    assert (first["video"], first["suite"], first["prompt"]) == ("fall" + HOSTILE, HOSTILE, HOSTILE)
    # No judge's score, reply or verdict goes in: the rater must not be anchored by them.
    assert set(first) == {"anchor", "video", "suite", "prompt", "generator", "axes"}


@pytest.mark.filterwarnings("ignore:pytest-phyjudge. no contact sheet")
def test_a_pytest_run_s_page_shows_a_suite_s_controls_as_escapes(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    kit.conftest()
    kit.clip("fall")
    prompt = json.dumps("A ball\u2028falls\u202e \x1b[31m</script>")
    kit.suite(
        'suite: "s\\u202e</script>"\nvideos: clips/{id}.mp4\ncases:\n'
        f"  - id: fall\n    prompt: {prompt}\n    metrics: [SA]\n"
    )
    pytester.runpytest("-p", "no:warnings", "--phyjudge-html", "h").assert_outcomes(passed=1)
    page = (pytester.path / "h" / "index.html").read_text(encoding="utf-8")
    assert not [c for c in CONTROLS if c in page]
    assert "s\\u202e&lt;/script&gt;" in page and "falls\\u202e \\x1b[31m&lt;/script&gt;" in page


@pytest.mark.parametrize(
    ("block", "field", "value"),
    [
        ("canary", "judge_seconds", "12 s"),
        ("canary", "judge_seconds", [1.5]),
        ("canary", "judge_seconds", 1e400),
        ("judge_server", "answered_by", {"model": "<b>m</b>"}),
    ],
)
def test_a_judge_check_field_of_another_type_is_refused_naming_it(
    block: str, field: str, value: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = {
        "canary": {
            "file": "c.json",
            "status": "passed",
            "line": "ok",
            "verdict": "same behaviour",
            "judge_calls": 4,
        },
        "judge_server": {"model": "m"},
    }
    checks[block][field] = value
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps({"meta": checks, "results": [{"video": "a", "SA": 3}]}))
    assert main(["report", str(scores), "--html", str(tmp_path / "html")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"meta.{block}.{field}" in err and str(scores) in err and "Traceback" not in err
    assert not (tmp_path / "html").exists()


def test_a_lone_surrogate_in_a_report_is_shown_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = tmp_path / "scores.json"
    scores.write_text('{"results": [{"video": "a\\ud800b", "prompt": "x\\udfff", "SA": 3}]}')
    assert main(["report", str(scores), "--html", str(tmp_path / "html")]) == EXIT_OK
    page = (tmp_path / "html" / "index.html").read_text(encoding="utf-8")
    assert "a\\ud800b" in page and "x\\udfff" in page
    assert "Traceback" not in capsys.readouterr().err


def test_rating_mode_says_what_each_asked_axis_asks(tmp_path: Path) -> None:
    assert set(AXIS_HINTS) == set(ALL_AXES)
    assert all(0 < len(hint) <= 120 and hint.endswith("?") for hint in AXIS_HINTS.values())
    _, parsed = _page(_judged("plain"), tmp_path)
    about = _rating_data(parsed)["about"]
    assert about == {axis: AXIS_HINTS[axis] for axis in ("SA", "gravity")}


ASSETS = Path(__file__).parents[2] / "pytest_phyjudge" / "reporting" / "html" / "assets"


@pytest.mark.parametrize("script", ["rating.js", "report.js"])
def test_the_page_scripts_never_parse_data_as_markup_or_code(script: str) -> None:
    source = (ASSETS / script).read_text(encoding="utf-8")
    code = re.sub(r"//[^\n]*", "", source)  # comments may name what is never done
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "Function(",
        'setAttribute("on',
        "srcdoc",
        "createContextualFragment",
        "DOMParser",
    ):
        assert sink not in code, f"{script} uses {sink}"
    # Timers run functions, never strings.
    assert not re.search(r"set(Timeout|Interval)\(\s*[\"'`]", code)


# --------------------------------------------------------------------------- agree


def _ratings(rater: str = "ada", scores: Any = None, **top: Any) -> dict[str, Any]:
    """An export as the rating mode writes it: a person's whole scores for v0..v5."""
    values = scores if scores is not None else [2, 3, 4, 5, 1, 3]
    return {
        "meta": {"judge": {"kind": "human", "adapter": f"human:{rater}"}, "rater": rater},
        "results": [
            {"video": f"v{i}", "SA": s, "physical": {"laws": {"gravity": {"score": s}}}}
            for i, s in enumerate(values)
        ],
        "format": "pytest-phyjudge-scores",
        "version": 1,
        **top,
    }


@pytest.fixture
def judge_file(tmp_path: Path) -> Path:
    path = tmp_path / "judge.json"
    judged = _ratings(scores=[3, 3, 4, 4, 2, 3])
    judged["meta"] = {"judge": {"kind": "local", "adapter": "PhyJudge-9B"}}
    path.write_text(json.dumps(judged))
    return path


def _agree(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["agree", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


RATER = "\x1b]0;owned\x07\u202e@everyone [x](javascript:alert(1)) <img src=x> | $\\frac{$ `c`\n#"


def test_a_hostile_rater_name_is_inert_in_every_format(
    tmp_path: Path, judge_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ratings = tmp_path / "ratings.json"
    ratings.write_text(json.dumps(_ratings(RATER)))
    code, out, _ = _agree(capsys, judge_file, ratings)
    assert code == EXIT_OK and not any(c in out for c in CONTROLS)
    assert "B: human:\\x1b]0;owned\\x07\\u202e@everyone" in out
    code, out, _ = _agree(capsys, judge_file, ratings, "--format", "markdown")
    assert code == EXIT_OK and not any(c in out for c in CONTROLS)
    for live in ("@everyone", "[x](", "<img", "$\\frac", "`c`"):
        assert live not in out
    code, out, _ = _agree(capsys, judge_file, ratings, "--format", "json")
    assert code == EXIT_OK and json.loads(out)["b"]["label"] == f"human:{RATER}"
    chart = tmp_path / "agree.png"
    code, _, err = _agree(capsys, judge_file, ratings, "--plot", chart)
    assert code == EXIT_OK and chart.read_bytes().startswith(b"\x89PNG"), err


def _forged(tmp_path: Path, name: str) -> tuple[Path, str]:
    """A forged export, written as text (NaN, a key twice), and what its error must name."""
    base = _ratings()
    text: str
    if name == "nan":
        text = json.dumps(base).replace('"SA": 2', '"SA": NaN', 1)
        named = "results[0].SA"
    elif name == "key twice":
        text = json.dumps(base).replace('"SA": 2', '"SA": 2, "SA": 5', 1)
        named = "'SA' twice"
    else:
        doc = copy.deepcopy(base)
        named = "results[0].SA"
        if name in ("zero", "six", "string", "bool", "list"):
            doc["results"][0]["SA"] = {"zero": 0, "six": 6, "string": "4", "bool": True}.get(
                name, [4]
            )
        elif name == "law out of range":
            doc["results"][0]["physical"]["laws"]["gravity"]["score"] = 9
            named = "results[0].physical.laws.gravity.score"
        elif name == "clip twice":
            doc["results"].append(copy.deepcopy(doc["results"][0]))
            named = "results[0] and results[6]"
        elif name == "unknown axis":
            doc["results"][0]["physical"]["laws"]["constructor"] = {"score": 3}
            named = "results[0].physical.laws.constructor"
        elif name == "newer version":
            doc["version"] = 99
            named = "version 99"
        elif name == "a judge's report":
            doc["results"][0]["checks"] = {"SA": {"score": 2, "raw": '{"SA": 2}', "probs": None}}
            named = "results[0].checks"
        elif name == "rater not a string":
            doc["meta"]["judge"]["adapter"] = {"name": "ada"}
            named = "meta.judge.adapter"
        text = json.dumps(doc)
    path = tmp_path / "ratings.json"
    path.write_text(text)
    return path, named


@pytest.mark.parametrize(
    "name",
    [
        "nan",
        "key twice",
        "zero",
        "six",
        "string",
        "bool",
        "list",
        "law out of range",
        "clip twice",
        "unknown axis",
        "newer version",
        "a judge's report",
        "rater not a string",
    ],
)
def test_a_forged_export_is_refused_naming_the_field(
    name: str, tmp_path: Path, judge_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ratings, named = _forged(tmp_path, name)
    code, out, err = _agree(capsys, judge_file, ratings)
    assert code == EXIT_USAGE and out == ""
    assert "Traceback" not in err and str(ratings) in err and named in err, err


# --------------------------------------------------------------------------- --plot


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-KEEP-ME")
    return secret


@pytest.mark.parametrize("kind", ["symlink", "user file", "fifo", "folder"])
def test_plot_never_overwrites_or_writes_through_what_is_no_chart(
    kind: str, tmp_path: Path, judge_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ratings = tmp_path / "ratings.json"
    ratings.write_text(json.dumps(_ratings()))
    secret = _secret(tmp_path)
    target = tmp_path / "chart.png"
    if kind == "symlink":
        target.symlink_to(secret)
    elif kind == "user file":
        target = secret
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(target)
    else:
        target.mkdir()
    code, _, err = _agree(capsys, judge_file, ratings, "--plot", target)
    assert code == EXIT_USAGE and str(target) in err and "Traceback" not in err, err
    assert secret.read_text() == "SECRET-KEEP-ME"
    assert target.is_symlink() == (kind == "symlink")


def test_plot_replaces_its_own_earlier_chart(
    tmp_path: Path, judge_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ratings = tmp_path / "ratings.json"
    ratings.write_text(json.dumps(_ratings()))
    chart = tmp_path / "charts" / "agree.png"
    chart.parent.mkdir()
    chart.write_bytes(b"\x89PNG\r\n\x1a\n the chart of the run before")
    code, _, err = _agree(capsys, judge_file, ratings, "--plot", chart)
    assert code == EXIT_OK, err
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.width > 100
    assert [p.name for p in chart.parent.iterdir()] == ["agree.png"]  # no temporary left


# --------------------------------------------------------------------------- the browser


@pytest.mark.skipif(MISSING is not None, reason=f"no browser test: {MISSING}")
def test_hostile_strings_run_nothing_in_the_browser_and_export_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    judged = _judged()
    judge = tmp_path / "judge.json"
    judge.write_text(json.dumps(judged))
    index = write_html_report(judged, tmp_path / "html", base=tmp_path)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with headless_chromium() as driver:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        driver.get(index.as_uri() + "#rate")
        assert wait_for(lambda: driver.find_elements("css selector", ".rate-axis.current"), 5)
        assert driver.execute_script("return window.pwned === undefined")
        hints = driver.execute_script(
            "return Array.prototype.map.call(document.querySelectorAll("
            "'.rate-axis-about'), function (e) { return e.textContent; });"
        )
        assert hints[:2] == [AXIS_HINTS["SA"], AXIS_HINTS["gravity"]]
        # The rater's name is typed with markup in it; it goes into the export as text.
        driver.find_element("id", "rate-name").send_keys("<b>ada</b>")
        driver.find_element("css selector", "#rate-bar .rate-keys").click()
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(driver).send_keys("45").perform()
        driver.find_element("id", "rate-export").click()
        exported = downloads / "ratings.json"
        assert wait_for(exported.is_file, 10), list(downloads.iterdir())
        assert driver.execute_script("return window.pwned === undefined")
    ratings = json.loads(exported.read_text(encoding="utf-8"))
    assert ratings["meta"]["judge"] == {"kind": "human", "adapter": "human:<b>ada</b>"}
    (row,) = ratings["results"]
    assert (row["video"], row["suite"], row["prompt"]) == ("fall" + HOSTILE, HOSTILE, HOSTILE)
    assert (row["SA"], row["physical"]["laws"]["gravity"]["score"]) == (4, 5)
    code, out, _ = _agree(capsys, judge, exported, "--format", "json")
    assert code == EXIT_OK and json.loads(out)["shared_cases"] == 1
    assert re.fullmatch(r"human:<b>ada</b>", json.loads(out)["b"]["label"])
