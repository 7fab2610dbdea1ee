"""The HTML report: its data model, --phyjudge-html and --phyjudge-sheets through pytester,
and ``phyjudge report`` (the page in a real browser is in test_html_browser.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pytester_kit import Kit

from pytest_phyjudge.cli.main import main
from pytest_phyjudge.reporting.html.model import report_view

#: The scripted judge's replies: gravity fails its threshold of 3, the rest pass.
REPLIES = {"gravity": 2, "*": 4}

SUITE = """
suite: html-suite
videos: clips/{id}.mp4
defaults: {metrics: [SA]}
cases:
  - id: fall
    prompt: A ball falls onto a table.
    laws: [gravity]
  - id: lamp
    prompt: A lamp lights a vase.
    laws: [shadow]
  - id: gone
    prompt: A cup tips over.
    laws: [collision]
"""


def html_run(pytester: pytest.Pytester, kit: Kit, *args: str) -> pytest.RunResult:
    """The suite judged by a scripted judge; ``gone`` has no clip."""
    kit.conftest(REPLIES, name="html-judge")
    kit.suite(SUITE, name="html")
    kit.videos(["fall", "lamp"])
    return pytester.runpytest("-p", "no:warnings", "--phyjudge-html", "out/html", *args)


def _cases(page: str) -> dict[str, str]:
    """Each case's ``<article>`` markup, by case name."""
    found = re.findall(
        r'<article class="case[^"]*" id="case-\d+-([^"]+)"(.*?)</article>', page, re.S
    )
    return dict(found)


def test_html_report_shows_each_case_with_its_clip_and_verdicts(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    result = html_run(pytester, kit)
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines(["phyjudge HTML report: *index.html (3 cases)"])
    out = pytester.path / "out" / "html"
    page = (out / "index.html").read_text()
    cases = _cases(page)
    assert list(cases) == ["fall", "lamp", "gone"]
    assert "scripted judge, not PhyJudge-9B" in page
    assert page.count('class="notice"') == 2  # at the top and at the foot of the page
    # A playable preview and a poster for each clip; a placeholder for the missing one.
    for name in ("fall", "lamp"):
        source = re.search(r'<source src="(media/[^"]+\.mp4)" type="video/mp4">', cases[name])
        poster = re.search(r'poster="(media/[^"]+\.jpg)"', cases[name])
        assert source and poster, cases[name]
        assert (out / source.group(1)).stat().st_size > 0
        assert (out / poster.group(1)).stat().st_size > 0
    assert "<video" not in cases["gone"]
    assert "No playable clip: the clip" in cases["gone"] and "gone.mp4" in cases["gone"]
    # The verdicts: gravity fails 2 < 3, the missing clip is an error, both with reasons.
    assert 'data-status="fail"' in cases["fall"]
    assert re.search(r'<tr class="fail" data-axis="gravity">\s*<td>gravity', cases["fall"])
    assert 'data-status="pass"' in cases["lamp"]
    assert 'data-status="error"' in cases["gone"] and "VideoError" in cases["gone"]
    # The raw reply and the rendered prompt (collapsed), with the case's caption in it.
    assert "<pre>{&#34;gravity&#34;: 2}</pre>" in cases["fall"]
    assert '<details class="prompt"><summary>rendered prompt</summary>' in cases["fall"]
    assert "A ball falls onto a table." in cases["fall"].split("rendered prompt", 1)[1]
    # Summaries at the top: per axis and per domain.
    assert 'data-axis="gravity" title="show only solid"' in page
    assert 'data-domain="solid"' in page and 'data-domain="optics"' in page
    # One contact sheet per case with a clip, copied into the folder and linked.
    # Each named by its case and the hash of its full case key.
    sheets = sorted(p.name for p in (out / "sheets").iterdir())
    assert [re.sub(r"-[0-9a-f]{16}\.png$", "", n) for n in sheets] == [
        "html.phyjudge.yaml_fall",
        "html.phyjudge.yaml_lamp",
    ]
    assert f'href="sheets/{sheets[0]}"' in cases["fall"]


def test_a_rerun_reuses_the_previews(pytester: pytest.Pytester, kit: Kit) -> None:
    html_run(pytester, kit)
    media = pytester.path / "out" / "html" / "media"
    before = {p.name: p.stat().st_mtime_ns for p in media.iterdir()}
    assert len(before) == 4  # two clips, each an .mp4 and a .jpg named by its sha256
    result = pytester.runpytest("-p", "no:warnings", "--phyjudge-html", "out/html")
    result.assert_outcomes(passed=3, failed=3)
    assert {p.name: p.stat().st_mtime_ns for p in media.iterdir()} == before


def test_sheets_off_writes_no_sheet(pytester: pytest.Pytester, kit: Kit) -> None:
    result = html_run(pytester, kit, "--phyjudge-sheets", "off", "--phyjudge-report", "s.json")
    result.assert_outcomes(passed=3, failed=3)
    assert not (pytester.path / "out" / "html" / "sheets").exists()
    assert not (pytester.path / "s-sheets").exists()
    assert "contact sheet</a>" not in (pytester.path / "out" / "html" / "index.html").read_text()


def test_sheets_takes_on_or_off(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--phyjudge-sheets", "maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--phyjudge-sheets*'maybe' is neither 'on' nor 'off'*"])


def test_phyjudge_report_writes_the_same_page_from_scores_json(
    pytester: pytest.Pytester, kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    html_run(pytester, kit, "--phyjudge-report", "out/scores.json")
    scores = pytester.path / "out" / "scores.json"
    entry = json.loads(scores.read_text())["results"][0]["checks"]["gravity"]
    assert "A ball falls onto a table." in entry["prompt"]["user"]
    capsys.readouterr()
    assert main(["report", str(scores), "--html", str(pytester.path / "again")]) == 0
    out, err = capsys.readouterr()
    assert "(3 cases)" in err and not out  # a notice, on stderr like every "wrote" line
    first = (pytester.path / "out" / "html" / "index.html").read_text()
    again = (pytester.path / "again" / "index.html").read_text()
    assert list(_cases(again)) == list(_cases(first))
    assert sorted(p.name for p in (pytester.path / "again" / "media").iterdir()) == sorted(
        p.name for p in (pytester.path / "out" / "html" / "media").iterdir()
    )
    assert sorted(p.name for p in (pytester.path / "again" / "sheets").iterdir())


def test_phyjudge_report_refuses_what_is_no_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]")
    assert main(["report", str(bad), "--html", str(tmp_path / "h")]) == 2
    err = capsys.readouterr().err
    assert "list.json" in err and "no 'results' list" in err
    assert not (tmp_path / "h").exists()


def test_model_reads_a_bare_phyground_file_and_a_score_dir_one(tmp_path: Path) -> None:
    """PhyGround rows (scores only) and score-dir rows (replies, no thresholds) both become
    cases; domains are summed over their laws; a real judge carries no notice."""
    phyground = {
        "meta": {"video_model": "gen-x"},
        "results": [
            {
                "video": "v1",
                "prompt": "p1",
                "SA": 4,
                "PTV": 3,
                "persistence": 5,
                "physical": {"laws": {"gravity": {"score": 2}, "buoyancy": {"score": None}}},
            }
        ],
    }
    view = report_view(phyground, tmp_path)
    assert view.title == "PhyJudge report: gen-x" and view.notice is None
    (case,) = view.cases
    assert [(a.axis, a.status) for a in case.axes] == [
        ("SA", "scored"),
        ("PTV", "scored"),
        ("persistence", "scored"),
        ("gravity", "scored"),
        ("buoyancy", "error"),
    ]
    assert {d.name: (d.items, d.mean) for d in view.domains} == {
        "general": (3, 4.0),
        "solid": (1, 2.0),
        "fluid": (1, None),
    }
    score_dir = {
        "meta": {"judge": {"kind": "tiny", "adapter": "t"}},
        "results": [
            {
                "video": "v1",
                "prompt": "p",
                "file": "clips/v1.mp4",
                "generator": "gen-y",
                "checks": {
                    "shadow": {"score": 3, "raw": "{}", "probs": [0, 0, 1, 0, 0], "expected": 3.0},
                    "SA": {
                        "score": 5,
                        "baseline": {"status": "improved", "stored": 4, "obtained": 5},
                    },
                },
            }
        ],
    }
    view = report_view(score_dir, tmp_path)
    assert "tiny judge" in (view.notice or "")
    (case,) = view.cases
    assert case.generator == "gen-y" and case.video == "clips/v1.mp4"
    sa, shadow = case.axes  # in the rubric's order
    assert sa.baseline_delta == 1.0 and shadow.probs == (0, 0, 1, 0, 0)


def test_the_runs_own_report_may_sit_in_its_html_folder(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    """scores.json and its sheets inside the HTML folder are the run's own: reruns work,
    and they are left as they are."""
    args = ("--phyjudge-report", "out/html/scores.json")
    html_run(pytester, kit, *args).assert_outcomes(passed=3, failed=3)
    result = pytester.runpytest("-p", "no:warnings", "--phyjudge-html", "out/html", *args)
    result.assert_outcomes(passed=3, failed=3)
    out = pytester.path / "out" / "html"
    assert (out / "scores.json").is_file() and (out / "index.html").is_file()
    assert len(list((out / "scores-sheets").glob("*.png"))) == 2


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_previews_are_encoded_side_by_side_once_per_clip(tmp_path: Path, executor: str) -> None:
    """Several clips on several workers: each content encoded once (a clip shown twice, or
    copied, shares its preview), a missing or broken one says why, and every file lands."""
    import shutil

    from pytest_phyjudge._outputs import OwnedFolder
    from pytest_phyjudge.reporting.html.media import PROCESS_MIN_CLIPS, make_previews
    from pytest_phyjudge.testing import write_test_video

    count = PROCESS_MIN_CLIPS if executor == "process" else 3  # enough to start processes
    clips = [write_test_video(tmp_path / f"c{i}.mp4", frames=6, seed=i) for i in range(count)]
    copy = Path(shutil.copy(clips[0], tmp_path / "copy.mp4"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"no video")
    sources = [clips[0], copy, None, tmp_path / "gone.mp4", broken, *clips]
    folder = OwnedFolder.open(tmp_path / "html", what="HTML report folder")
    made = make_previews(sources, folder, workers=3, executor=executor)  # type: ignore[arg-type]
    assert [p.video is not None for p in made] == [True, True] + [False] * 3 + [True] * count
    assert len({p.video for p in made[5:]}) == count and made[0] == made[1] == made[5]
    assert "no clip was recorded" in (made[2].error or "")
    assert "is missing" in (made[3].error or "")
    assert "could not be re-encoded" in (made[4].error or "")
    folder.finish()
    files = sorted(p.name for p in (tmp_path / "html" / "media").iterdir())
    assert len(files) == 2 * count
    assert all((tmp_path / "html" / str(p.video)).stat().st_size for p in made[5:])


def test_scores_without_thresholds_show_as_scores_with_their_generator(tmp_path: Path) -> None:
    """score-dir's results have no thresholds: no passed/failed columns of 0, no verdict
    badge on every card, and each card names its generator."""
    from pytest_phyjudge.reporting.html import write_html_report

    rows = [
        {"video": "drop", "prompt": "A ball drops.", "generator": "wan", "SA": 4,
         "checks": {"SA": {"score": 4, "raw": '{"SA": 4}'}}},
    ]  # fmt: skip
    index = write_html_report({"meta": {}, "results": rows}, tmp_path / "h", base=tmp_path)
    page = index.read_text()
    assert "<th>passed</th>" not in page and "<th>verdict</th>" not in page
    assert '<span class="badge' not in page and ">scored<" not in page.lower()
    assert '<span class="generator">generator wan</span>' in page
    assert "<td>1</td><td>4.00</td></tr>" in page  # SA: 1 item, mean 4, nothing between
