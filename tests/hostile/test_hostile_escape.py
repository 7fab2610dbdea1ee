"""One escape per medium: every output that shows a name from a report, a suite, a cache or
a judge server is fed every string of one hostile list, and no live construct survives
(Markdown images, links, HTML, mentions, forged table cells or headings; terminal escape
sequences; matplotlib mathtext); and a ``GITHUB_STEP_SUMMARY`` that is a pipe or a device
is refused before it is opened."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from PIL import Image
from pytester_kit import Kit
from test_compare import report, run
from test_tables import _check

from pytest_phyjudge.cli.exits import EXIT_OK, fail
from pytest_phyjudge.engine.axes import PHYSICAL_LAWS as LAWS
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.regression.compare import compare, read_report
from pytest_phyjudge.regression.leaderboard import leaderboard
from pytest_phyjudge.reporting.charts import write_forest, write_leaderboard_chart
from pytest_phyjudge.reporting.compare_view import comparison_text
from pytest_phyjudge.reporting.step_summary import SummaryFiles, step_summary, write_step_summary

pytest_plugins = "pytester"

#: Every hostile string, fed to every output.
HOSTILE = [
    "pipe | in | a cell",
    "tick `code` here",
    "```fence```",
    "![x](http://e/p.png)",
    '<img src=x onerror="alert(1)">',
    "[link](javascript:alert(1))",
    "[ref][1]",
    "<http://evil.example/autolink>",
    "<!-- hidden -->",
    "&lt;img src=x&gt; &#64;entities",
    "@org/team and @user",
    "mail me: someone@evil.example",
    "see www.evil.example or https://evil.example/x",
    "**bold** _em_ ~~strike~~ :+1:",
    "\x1b[31mRED\x1b[0m",
    "\x1b]8;;http://evil/\x07link\x1b]8;;\x07",
    "over\rwritten",
    "bell\x07 del\x7f csi\x9b nul\x00 tab\t",
    "bidi \u202eevil\u202c",
    "\n# Heading",
    "line\n| forged | row |\n",
    "> quote",
    "$\\frac{$",
    "$x^2$ and $$y$$",
    "a::b",
    "back\\slash\\",
    "back\\| pipe",
    "flow_dynamics",
    "_leading and trailing_",
    "x" * 3000 + "|" + "y" * 3000,
]
#: Names that also appear where a lone surrogate can travel (JSON reports).
HOSTILE_JSON = [*HOSTILE, "lone \ud800 surrogate"]

#: What must never reach a terminal or Markdown raw: C0 and C1 controls, DEL, bidi controls,
#: line separators, lone surrogates (a newline is allowed between lines, not inside a name).
CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)
#: A code span: a run of backticks (not escaped) up to the next run of the same length.
CODE_SPAN = re.compile(r"(?<![`\\])(`+)(?!`).*?(?<!`)\1(?!`)")
_MD = MarkdownIt("commonmark", {"html": True}).enable("table")
#: Tags our own Markdown makes; anything else (img, a, script, em, ...) came from a name.
OUR_TAGS = {
    "h3", "h4", "p", "strong", "code", "blockquote",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip


class _Page(HTMLParser):
    """The tags of rendered HTML, the text outside them, and the table rows' cell texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.prose: list[str] = []
        self._code = 0
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._code += tag == "code"
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        self._code -= tag == "code"
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if not self._code:
            self.prose.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _cells(line: str) -> int:
    # GFM splits a row on every pipe that is not directly after a backslash.
    return len(re.split(r"(?<!\\)\|", line.strip())) - 2


def assert_inert_markdown(markdown: str, *, rows: int, headings: int = 1) -> _Page:
    """No live construct: only our own tags, ``rows`` table rows of one width, ``headings``
    headings, no mention, autolink, math or control character."""
    assert not CONTROL.search(markdown.replace("\n", "")), "a control character in the Markdown"
    page = _Page()
    page.feed(_MD.render(markdown))
    assert set(page.tags) <= OUR_TAGS, f"live HTML from a name: {set(page.tags) - OUR_TAGS}"
    assert sum(tag in ("h3", "h4") for tag in page.tags) == headings
    assert len(page.rows) == rows, "a name added or removed a table row"
    for table in re.findall(r"(?m)(?:^\|.*\n?)+", markdown):
        widths = {_cells(line) for line in table.splitlines()}
        assert len(widths) == 1, "a name split a table cell"
    assert not re.search(r"@[\w-]", "".join(page.prose)), "an @mention GitHub would link"
    # Code spans are literal on GitHub: no autolink, math or mention inside them.
    prose = CODE_SPAN.sub("", markdown)
    assert not re.search(r"(?<!\\)://|www\.", prose), "a URL GitHub would autolink"
    assert not re.search(r"(?<!\\)\$", prose), "math GitHub would render"
    return page


def shown(name: str) -> str:
    """What a name reads as once escaped and rendered: itself, control characters visible
    (``\\n``, ``\\x1b``, ``\\u202e``)."""
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

    def one(char: str) -> str:
        if not CONTROL.match(char):
            return char
        code = ord(char)
        return named.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")

    return "".join(map(one, name))


def assert_plain_terminal(text: str) -> None:
    assert not CONTROL.search(text), f"a control character reached the terminal: {text!r}"


# --------------------------------------------------------------------------- the functions


@pytest.mark.parametrize("name", HOSTILE_JSON)
def test_markdown_text_renders_as_the_text_it_was(name: str) -> None:
    from pytest_phyjudge._escape import markdown_code, markdown_text

    page = assert_inert_markdown(f"| {markdown_text(name)} |\n| --- |", rows=1, headings=0)
    assert page.rows[0][0].replace("\u200b", "") == shown(name).strip()
    code = markdown_code(name, in_table=True)
    page = assert_inert_markdown(f"| {code} |\n| --- |", rows=1, headings=0)
    assert page.rows[0][0].strip() == shown(name).strip()


@pytest.mark.parametrize("name", HOSTILE_JSON)
def test_terminal_and_plot_text_hold_no_control_character(name: str) -> None:
    from pytest_phyjudge._escape import plot_label, terminal_text

    assert_plain_terminal(terminal_text(name))
    assert_plain_terminal(plot_label(name, 40))
    assert terminal_text(terminal_text(name)) == terminal_text(name)
    assert terminal_text("\x1b[31mRED") == "\\x1b[31mRED" and terminal_text("a b") == "a b"


# --------------------------------------------------------------------------- compare, agree


def _reports(
    tmp_path: Path, a_name: str, b_name: str, names: list[str] = HOSTILE_JSON
) -> tuple[Path, Path]:
    """Two reports over the same cases, named (meta.video_model) and judged (the judge's
    adapter) by hostile strings, with each of ``names`` as a case's id. Law names cannot be
    hostile: a report whose law is not one of the judge's axes is refused when it is read."""
    laws = dict.fromkeys(LAWS, 3)
    a = {f"{i:02d} {name}": {"SA": 4, **laws} for i, name in enumerate(names)}
    b = {f"{i:02d} {name}": {"SA": 3, **laws} for i, name in enumerate(names)}
    return (
        report(tmp_path / "a.json", a, judge=a_name, video_model=a_name),
        report(tmp_path / "b.json", b, judge=b_name, video_model=b_name),
    )


@pytest.mark.parametrize("command", ["compare", "agree"])
def test_compare_and_agree_markdown_and_text_are_inert(
    tmp_path: Path, capsys, command: str
) -> None:
    a, b = _reports(tmp_path, "![x](http://e/p.png) @org/team\x1b[2J", "<img src=x>|`\nb`")
    code, out, err = run(capsys, str(a), str(b), "--format", "markdown", command=command)
    assert code == EXIT_OK, err
    axes = 1 + len(LAWS)  # SA and the laws
    page = assert_inert_markdown(out, rows=1 + axes + 1)
    heading = page.text[0]
    assert "![x](http://e/p.png) @\u200borg/team\\x1b[2J (A)" in heading
    assert "<img src=x>|`\\nb` (B)" in heading
    names = {row[0].replace("\u200b", "") for row in page.rows}
    assert set(LAWS) <= {name.replace("\\_", "_") for name in names}
    if command == "agree":  # the compare table's text is checked on the comparison itself
        code, out, err = run(capsys, str(a), str(b), command=command)
        assert code == EXIT_OK
        assert_plain_terminal(out.replace("\n", "") + err.replace("\n", ""))


def test_a_report_whose_law_is_a_hostile_name_is_refused(tmp_path: Path, capsys) -> None:
    """A law's name reaches every table: one that is not a judge's axis never gets there."""
    a = report(tmp_path / "a.json", {"c": {"SA": 4, "![x](http://e/p.png)": 3}})
    code, out, err = run(capsys, str(a), str(a), "--format", "markdown")
    assert code != EXIT_OK and out == ""
    assert "is not one of the judge's axes" in err and "![x](http://e/p.png)" in err


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    a, b = _reports(tmp_path_factory.mktemp("runs"), "$\\frac{$ \x1b]0;A", "$\\frac{$ \x1b[31mB")
    return [read_report(str(a)), read_report(str(b))]


@pytest.fixture(scope="module")
def hostile_comparison(hostile_runs: list[Any]) -> Any:
    return compare(*hostile_runs)


def test_compare_text_is_plain(hostile_comparison: Any) -> None:
    lines = comparison_text(hostile_comparison)
    assert_plain_terminal("".join(lines))
    assert lines[0].startswith("A: $\\frac{$ \\x1b]0;A  (")


# --------------------------------------------------------------------------- leaderboard


def test_leaderboard_markdown_and_text_are_inert(tmp_path: Path, capsys) -> None:
    runs = [
        str(report(tmp_path / f"r{i}.json", {"v1": {"SA": 3, "PTV": 3}}, video_model=name))
        for i, name in enumerate(HOSTILE_JSON)
    ]
    code, out, err = run(capsys, *runs, "--format", "markdown", command="leaderboard")
    assert code == EXIT_OK, err
    page = assert_inert_markdown(out, rows=1 + len(HOSTILE_JSON))
    labels = sorted(row[1].replace("\u200b", "") for row in page.rows[1:])
    assert labels == sorted(shown(name.strip()) for name in HOSTILE_JSON)  # labels are stripped
    code, out, err = run(capsys, *runs, command="leaderboard")
    assert code == EXIT_OK
    assert_plain_terminal(out.replace("\n", ""))
    assert len(out.splitlines()) == 1 + len(HOSTILE_JSON) + 2  # head, runs, blank, note


def test_errors_show_control_characters_escaped(capsys) -> None:
    fail("Cannot read 'x\x1b[2Jy.json'\r(bad)\nsecond line", 2)
    err = capsys.readouterr().err
    assert err == "phyjudge: error: Cannot read 'x\\x1b[2Jy.json'\\r(bad)\nsecond line\n"


# --------------------------------------------------------------------------- charts


def test_charts_draw_hostile_names_as_plain_text(
    tmp_path: Path, hostile_runs: list[Any], hostile_comparison: Any
) -> None:
    """``$\\frac{$`` in a run or law name is a label, not a formula; TeX stays off even when
    the user's matplotlib settings turn it on."""
    import matplotlib

    with matplotlib.rc_context({"text.usetex": True}):
        forest = write_forest(hostile_comparison, tmp_path / "forest.png")
        bars = write_leaderboard_chart(leaderboard(hostile_runs), tmp_path / "board.png")
    for chart in (forest, bars):
        with Image.open(chart) as image:
            assert image.format == "PNG" and image.size == (1000, 600)


def test_compare_plot_with_mathtext_in_names_exits_cleanly(tmp_path: Path, capsys) -> None:
    a, b = _reports(tmp_path, "$\\frac{$", "$x^2$", names=["$\\frac{$", "$x^2$"])
    chart = tmp_path / "forest.png"
    code, _, err = run(capsys, str(a), str(b), "--plot", str(chart))
    assert code == EXIT_OK and chart.is_file() and "Traceback" not in err


# --------------------------------------------------------------------------- step summary


def test_step_summary_is_inert(tmp_path: Path) -> None:
    checks = []
    for i, name in enumerate(HOSTILE_JSON):
        check = _check("gravity", 2 if i % 2 else 4)
        judge = JudgeIdentity(kind="scripted", adapter=name)
        judgment = dataclasses.replace(check.judgment, judge=judge)
        checks.append(
            dataclasses.replace(check, nodeid=f"{name}::{i}", judge=judge, judgment=judgment)
        )
    broken = dataclasses.replace(
        checks[0], judgment=None, error="<img src=x>|@org/team: bad", nodeid="t.py::broken"
    )
    checks.append(broken)
    files = SummaryFiles(report=tmp_path / "`x`|@y.json", html=tmp_path / "![i](http://e/)")
    text = "\n".join(step_summary(checks, files))
    failures = sum(not c.passed for c in checks)
    # The axis table (head + gravity) and the failures (head + rows, at most 25 listed).
    assert_inert_markdown(text, rows=2 + 1 + min(failures, 25), headings=2)
    judges = [p for p in text.split("\n") if p.startswith("Judge:")]
    assert len(judges) == len(HOSTILE_JSON)


def test_terminal_and_job_summary_of_a_hostile_run(
    pytester: pytest.Pytester, kit: Kit, monkeypatch
) -> None:
    """A suite file and a judge whose names hold escape sequences and Markdown: the pytest
    terminal summary shows them escaped, the job summary inert."""
    kit.conftest({"gravity": 2, "*": 4}, name="\x1b[31mjudge\x1b[0m ![p](http://e/p.png) @team")
    kit.suite(
        "videos: clips/{id}.mp4\ncases:\n  - id: fall\n    prompt: A ball falls.\n"
        "    laws: [gravity]\n",
        name="evil\x1b]0;title\x07\x1b[2K",
    )
    kit.clip("fall")
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest("-p", "no:warnings")
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    section = out[out.index("= phyjudge =") :].split("\n=")[0]  # pytest's own lines follow
    assert_plain_terminal(section.replace("\n", ""))
    assert "judge: \\x1b[31mjudge\\x1b[0m ![p](http://e/p.png) @team (scripted)" in section
    assert "evil\\x1b]0;title\\x07\\x1b[2K.phyjudge.yaml::fall::gravity" in section
    assert_inert_markdown(summary.read_text(), rows=2 + 3 + 2, headings=2)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_step_summary_refuses_a_fifo_without_opening_it(tmp_path: Path, monkeypatch) -> None:
    fifo = tmp_path / "summary.fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(fifo))
    found: list[str | None] = []
    caught: list[Any] = []

    def write() -> None:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            found.append(write_step_summary([_check("gravity", 4)], None, None))
        caught.append(seen)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(5)
    if writer.is_alive():  # blocked opening the pipe: open its other end to let it go
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        writer.join(5)
        os.close(reader)
        pytest.fail("writing the job summary into a FIFO hung the run's end")
    assert found[0] is not None and "is a pipe, not a file" in found[0]
    assert len(caught[0]) == 1 and "no CI job summary" in str(caught[0][0].message)


@pytest.mark.parametrize("target", ["/dev/null", "folder"])
def test_a_device_or_folder_summary_warns_once_and_the_run_passes(
    pytester: pytest.Pytester, kit: Kit, monkeypatch, target: str
) -> None:
    kit.conftest()
    kit.suite("videos: clips/{id}.mp4\ncases:\n  - id: fall\n    prompt: p\n    laws: [gravity]\n")
    kit.clip("fall")
    if target == "folder":
        target = str(pytester.mkdir("folder"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", target)
    result = pytester.runpytest()
    assert result.ret == 0
    result.assert_outcomes(passed=4)
    kind = "a device" if target == "/dev/null" else "a folder"
    assert result.stdout.str().count(f"CI job summary NOT written: cannot append to {target}") == 1
    assert f"is {kind}, not a file" in result.stdout.str()


def test_a_judge_servers_words_in_a_failure_are_escaped(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    """A judge server's error text is quoted in the item's failure: its escape sequences
    are shown, not run."""
    kit.conftest(
        extra="\nfrom pytest_phyjudge._exceptions import JudgeBackendError\n"
        "def _fails(axis, caption, video):\n"
        "    raise JudgeBackendError('server says \\x1b[2J\\x1b[31mall good\\r')\n"
        "JUDGE.replies = _fails\n"
    )
    kit.suite("videos: clips/{id}.mp4\ncases:\n  - id: fall\n    prompt: p\n    laws: [gravity]\n")
    kit.clip("fall")
    result = pytester.runpytest("-p", "no:warnings", "-rf")
    assert result.ret != 0
    out = result.stdout.str()
    assert "\x1b" not in out and "\r" not in out
    assert "server says \\x1b[2J\\x1b[31mall good\\r" in out


def test_cache_info_shows_a_records_judge_name_escaped(tmp_path: Path, capsys) -> None:
    from pytest_phyjudge.judges.cache.record import JudgeRecord
    from pytest_phyjudge.judges.cache.store import JudgmentCache
    from pytest_phyjudge.judges.scripted import ScriptedJudge

    cache = JudgmentCache(tmp_path / "cache")
    identity = JudgeIdentity(kind="remote", adapter="\x1b[2J\x1b[32mPhyJudge-9B\r")
    cache.add_judge(JudgeRecord(identity=identity, rubric=ScriptedJudge({"*": 4}).rubric))
    cache.close()
    code, out, _ = run(capsys, "info", "--cache", str(tmp_path / "cache"), command="cache")
    assert code == EXIT_OK
    assert "judge: \\x1b[2J\\x1b[32mPhyJudge-9B\\r (remote)" in out
    assert_plain_terminal(out.replace("\n", ""))
