"""What the project writes, attacked from outside (round 5): report folders whose manifest
was forged to claim a user's file, outputs named so that one lands on another, judge-server
credentials that must never reach a report or a printed line, generator names made of a
clip's file name (``..``, ESC, OSC 8 links, names alike but for case), and charts written
through a symlink or into a pipe."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import httpx
import pytest
from pytester_kit import Kit

from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge._exceptions import JudgeBackendError
from pytest_phyjudge._outputs import MANIFEST
from pytest_phyjudge.cli.main import main
from pytest_phyjudge.cli.score import generator_file_parts
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.engine.rubric import load_rubric
from pytest_phyjudge.judges.remote.judge import RemotePlan, RemoteSettings
from pytest_phyjudge.judges.settings import JudgeConfig, hide_credentials, parse_urls
from pytest_phyjudge.testing import write_test_video
from pytest_phyjudge.testing.faults import FaultyJudgeServer

SUITE = """
suite: writers
videos: clips/{id}.mp4
defaults: {metrics: [SA]}
cases:
  - id: fall
    prompt: A ball falls onto a table.
    laws: [gravity]
"""

PASSWORD = "S3CRET-PASSWORD-5f1c"
ESC = "\x1b"


def _scores(folder: Path) -> Path:
    """A scores.json of one case, no clip and no sheet (the report still has a page)."""
    row = {"video": "fall", "prompt": "A ball falls.", "physical_laws": ["gravity"], "SA": 4}
    path = folder / "scores.json"
    path.write_text(json.dumps({"meta": {}, "results": [row]}))
    return path


def _report(scores: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["report", str(scores), "--html", str(out)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _forge(site: Path, **files: str | None) -> None:
    """Add ``files`` (name -> sha256 or None) to the folder's manifest, as anyone could."""
    manifest = json.loads((site / MANIFEST).read_text())
    manifest["files"].update(files)
    (site / MANIFEST).write_text(json.dumps(manifest))


# --------------------------------------------------------------------------- forged manifests


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("notes.txt", b"the user's notes\n"),
        ("index.html", b"<!doctype html><p>the user's own page</p>\n"),
        ("assets/report.css", b"body { color: teal }\n"),
        ("sheets/talk-0123456789abcdef.png", b"a sheet-like name, not a PNG\n"),
        ("media/0123456789abcdef0123-v1.mp4", b"a preview-like name, not a clip\n"),
    ],
)
@pytest.mark.parametrize("digest", ["none", "sha256"])
def test_a_manifest_forged_to_list_a_users_file_never_loses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, data: bytes, digest: str
) -> None:
    """A manifest that lists the user's file (with no digest, or with its real sha256) does
    not make it ours: the rerun refuses the folder naming the file, and the file is intact."""
    scores, site = _scores(tmp_path), tmp_path / "site"
    assert _report(scores, site, capsys)[0] == 0
    user = site / name
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_bytes(data)
    _forge(site, **{name: None if digest == "none" else hashlib.sha256(data).hexdigest()})
    code, text = _report(scores, site, capsys)
    assert user.read_bytes() == data
    assert code == 2 and name.rsplit("/", 1)[-1] in text


@pytest.mark.parametrize("name", [".diary.phyjudge-partial", "media/.talk.mp4.phyjudge-partial"])
def test_a_users_file_named_like_a_leftover_temporary_file_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Leftovers of an interrupted write are swept, by their exact form (a random part
    included): a user's file that only ends like one is not ours to delete."""
    scores, site = _scores(tmp_path), tmp_path / "site"
    assert _report(scores, site, capsys)[0] == 0
    user = site / name
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text("the user's\n")
    _report(scores, site, capsys)
    assert user.read_text() == "the user's\n"


def test_a_rerun_still_replaces_and_prunes_its_own_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check of what is ours keeps reruns working: a preview of an earlier run that this
    one does not need is pruned."""
    scores, site = _scores(tmp_path), tmp_path / "site"
    clip = write_test_video(tmp_path / "fall.mp4", frames=4)
    data = json.loads(scores.read_text())
    data["results"][0]["video_path"] = str(clip)
    scores.write_text(json.dumps(data))
    assert _report(scores, site, capsys)[0] == 0
    first = sorted(p.name for p in (site / "media").iterdir())
    assert len(first) == 2
    data["results"][0]["video_path"] = None
    scores.write_text(json.dumps(data))
    assert _report(scores, site, capsys)[0] == 0
    assert not (site / "media").exists() or not list((site / "media").iterdir())


@pytest.mark.parametrize(
    "report", ["out/.phyjudge-manifest.json", "out/index.html", "out/assets/report.css", "out"]
)
def test_a_report_named_as_a_file_of_the_html_folder_is_refused_before_judging(
    pytester: pytest.Pytester, kit: Kit, report: str
) -> None:
    """``--phyjudge-report`` naming the HTML folder's manifest, page or asset (or the folder
    itself) would lose one output to the other: a usage error before anything is judged."""
    kit.conftest({"*": 4})
    kit.suite(SUITE)
    kit.clip("fall")
    result = pytester.runpytest("--phyjudge-report", report, "--phyjudge-html", "out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--phyjudge-report*--phyjudge-html*"])
    assert not (pytester.path / "out").exists()


# --------------------------------------------------------------------------- credentials


def test_credentials_in_a_server_url_are_kept_apart_from_the_url() -> None:
    (url,) = parse_urls(f"https://alice:{PASSWORD}@judge.example:8443/v1/")
    assert str(url) == "https://judge.example:8443"
    assert url.auth == ("alice", PASSWORD)
    assert PASSWORD not in json.dumps([url]) and PASSWORD not in f"{url} {url!s}"
    assert parse_urls([url])[0].auth == ("alice", PASSWORD)  # parsed again: kept
    shown = hide_credentials(f"--phyjudge-url=http://bob:{PASSWORD}@h:1,https://c@h2")
    assert PASSWORD not in shown and "bob" not in shown and "h:1" in shown


def test_credentials_are_sent_as_basic_auth_and_never_shown_in_errors() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(503, json={"error": "overloaded"})

    urls = parse_urls(f"http://alice:{PASSWORD}@judge-a:8000")
    plan = RemotePlan(
        remote=RemoteSettings(
            urls=urls, read_timeout=5.0, connect_timeout=2.0, retries=0, backoff=0.01
        ),
        identity=JudgeIdentity(kind="scripted", adapter="trusted-judge"),
        rubric=load_rubric(None),
        config=JudgeConfig(scoring="greedy"),
        top_logprobs=20,
    )
    judge = plan.load(transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(JudgeBackendError) as raised:
            judge.complete({"model": "phyjudge", "messages": []})
    finally:
        judge.close()
    assert seen and seen[0] == httpx.BasicAuth("alice", PASSWORD)._auth_header
    assert PASSWORD not in str(raised.value) and "judge-a:8000" in str(raised.value)


def test_credentials_of_a_server_url_reach_no_report_summary_or_line(
    pytester: pytest.Pytester, kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL is in the failures, scores.json (settings, command line), the HTML report and
    the CI summary, always without its user name and password."""
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    kit.suite(SUITE)
    kit.clip("fall")
    url = f"http://alice:{PASSWORD}@127.0.0.1:9"
    args = ("--phyjudge-retries", "0", "--phyjudge-timeout", "2")
    result = pytester.runpytest(
        f"--phyjudge-url={url}", *args, "--phyjudge-report", "out/scores.json",
        "--phyjudge-html", "site", "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(failed=2)
    assert PASSWORD not in result.stdout.str() + result.stderr.str()
    assert "127.0.0.1:9" in (pytester.path / "out" / "scores.json").read_text()
    for path in [*pytester.path.joinpath("site").rglob("*"), pytester.path / "out/scores.json"]:
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    assert PASSWORD not in summary.read_text()


def test_a_server_url_with_credentials_judges_and_keeps_them_out_of_the_report(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    """The URL without its credentials still reaches the server: the run judges, and the
    report names the server without them."""
    kit.suite(SUITE)
    kit.videos(["fall"], frames=4, fps=2)
    with FaultyJudgeServer(ScriptedJudge({"*": 4}, name="served-scripted")) as server:
        url = server.url.replace("http://", f"http://alice:{PASSWORD}@")
        result = pytester.runpytest(
            "--phyjudge-url", url, "--phyjudge-report", "out/scores.json", "-p", "no:cacheprovider"
        )
    result.assert_outcomes(passed=2)
    report = (pytester.path / "out" / "scores.json").read_text()
    assert PASSWORD not in report + result.stdout.str() and server.url in report


def test_a_bad_server_url_is_refused_without_its_password(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    kit.suite(SUITE)
    result = pytester.runpytest(f"--phyjudge-url=ftp://alice:{PASSWORD}@judge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--phyjudge-url" in result.stderr.str()
    assert PASSWORD not in result.stdout.str() + result.stderr.str()


# --------------------------------------------------------------------------- generator names


def test_generator_names_become_safe_distinct_file_names() -> None:
    names = ["alpha", "..", "", f"a{ESC}]8;;http://e{ESC}\\L", "a b", "a_b", "A", "a", "x\u202e"]
    parts = generator_file_parts(names)
    assert parts["alpha"] == "alpha"  # plain names stay as the docs show them
    assert len({p.casefold() for p in parts.values()}) == len(names)
    for part in parts.values():
        assert part.isascii() and part.isprintable() and "/" not in part
        assert part.strip(".") and not part.startswith(".")


JUDGES = """
from pytest_phyjudge import ScriptedJudge

def make():
    return ScriptedJudge({"*": 4}, name="scripted-writers")
"""


def test_score_dir_names_results_files_safely_and_prints_no_control(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clips named by hostile generators: a name that is no plain name is no generator (its
    clips are listed, escaped, among those without a prompt); names alike but for case get
    a results file each, none lost to another; the progress bar prints no ESC of theirs."""
    (tmp_path / "writers_judges.py").write_text(JUDGES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    prompts = {"prompts": [{"video": "x", "prompt": "A ball falls.", "physical_laws": []}]}
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    hostile = [f"g{ESC}]8;;evil{ESC}\\CLICK", f"b\r{ESC}[2K", ".."]
    plain = ["A", "a"]
    for seed, generator in enumerate([*hostile, *plain]):
        write_test_video(tmp_path / "v" / f"{generator}__x.mp4", frames=2, seed=seed)
    args = ["score-dir", "--videos", "v", "--prompts", "prompts.json", "--out", "o/scores.json"]
    code = main([*args, "--judge", "writers_judges:make", "--cache-mode", "off"])
    err = capsys.readouterr().err
    assert code == 0
    written = sorted(os.listdir(tmp_path / "o"))
    assert len(written) == len(plain)
    assert all(n.isascii() and n.isprintable() and not n.startswith("scores...") for n in written)
    assert ESC not in err and "\r\x1b" not in err
    found = {json.loads((tmp_path / "o" / n).read_text())["meta"]["generator"] for n in written}
    assert found == set(plain)


# --------------------------------------------------------------------------- charts


def _board_files(folder: Path) -> tuple[str, str]:
    rows = [{"video": v, "prompt": "p", "physical_laws": [], "SA": 4} for v in ("a", "b")]
    for name in ("one", "two"):
        (folder / f"{name}.json").write_text(json.dumps({"meta": {}, "results": rows}))
    return str(folder / "one.json"), str(folder / "two.json")


def test_a_chart_refuses_a_symlink_instead_of_writing_through_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = tmp_path / "elsewhere.txt"
    kept.write_text("the user's file\n")
    (tmp_path / "chart.png").symlink_to(kept)
    code = main(["leaderboard", *_board_files(tmp_path), "--plot", str(tmp_path / "chart.png")])
    err = capsys.readouterr().err
    assert code == 2 and "chart.png" in err and "symlink" in err
    assert kept.read_text() == "the user's file\n"  # neither written through nor replaced
    assert (tmp_path / "chart.png").is_symlink()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_chart_into_a_pipe_is_refused_before_it_is_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(tmp_path / "chart.png")
    code = main(["leaderboard", *_board_files(tmp_path), "--plot", str(tmp_path / "chart.png")])
    err = capsys.readouterr().err
    assert code == 2 and "chart.png" in err and "pipe" in err


@pytest.mark.parametrize("kind", ["user_file", "symlink"])
def test_score_dir_never_overwrites_a_file_beside_out_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """``scores.<generator>.json`` is a name the user never gave: an existing file there
    that is not a results file of ours (or a symlink) is refused before any clip is judged;
    one of an earlier run is replaced."""
    (tmp_path / "writers_judges.py").write_text(JUDGES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    prompts = {"prompts": [{"video": "x", "prompt": "A ball falls.", "physical_laws": []}]}
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    for seed, generator in enumerate(["alpha", "beta"]):
        write_test_video(tmp_path / "v" / f"{generator}__x.mp4", frames=2, seed=seed)
    args = ["score-dir", "--videos", "v", "--prompts", "prompts.json", "--out", "o/scores.json"]
    args += ["--judge", "writers_judges:make", "--cache-mode", "off"]
    assert main(args) == 0  # an earlier run: its files are replaced by the next
    assert main(args) == 0
    kept = tmp_path / "mine.json"
    kept.write_text('{"the user": "own"}\n')
    target = tmp_path / "o" / "scores.beta.json"
    target.unlink()
    if kind == "symlink":
        target.symlink_to(kept)
    else:
        target.write_bytes(kept.read_bytes())
    before = target.read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    assert "scores.beta.json" in capsys.readouterr().err
    assert target.read_bytes() == before and kept.read_text() == '{"the user": "own"}\n'


# --------------------------------------------------------------------------- Markdown references


@pytest.mark.parametrize("name", ["fixes #123", "org/repo#7", "GH-#42 and #1"])
def test_an_issue_reference_in_a_name_renders_as_text_not_a_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """GitHub turns ``#123`` in a comment into a link to issue 123 (and lists the comment on
    that issue): a run's name in ``leaderboard --format markdown`` shows the number, but
    never as ``#`` right before a digit in the rendered text."""
    from markdown_it import MarkdownIt

    one, two = _board_files(tmp_path)
    code = main(["leaderboard", one, two, "--label", name, "--label", "b", "--format", "markdown"])
    out = capsys.readouterr().out
    assert code == 0
    html = MarkdownIt("commonmark").enable("table").render(out)
    text = re.sub(r"<[^>]+>", "", html).replace("&#8203;", "\u200b")
    assert not re.search(r"#\d", text)
    assert name.replace("#", "#\u200b") in text


@pytest.mark.parametrize("name", ["chart.svg", "chart.pdf", "chart"])
def test_a_chart_under_a_name_that_is_no_png_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code = main(["leaderboard", *_board_files(tmp_path), "--plot", str(tmp_path / name)])
    err = capsys.readouterr().err
    assert code == 2 and name in err and ".png" in err
    assert not (tmp_path / name).exists()
