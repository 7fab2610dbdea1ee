"""Markdown, terminal and matplotlib outputs fed hostile names (issue 19, item 3): run names,
law names, labels, suite, case and judge names in ``compare``/``agree``/``leaderboard``
(Markdown, text, ``--plot``) and in the ``GITHUB_STEP_SUMMARY`` a pytest run appends; and
that summary's file being a FIFO, a folder or a full device.

Clean: no live Markdown construct of the name (image, link, raw HTML, mention, a table
row broken by ``|``, a line begun by a newline), no raw terminal control byte, no
traceback, no hang. A refusal naming the thing is as clean as escaped output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tally import kit
from tally.model import NotClean, Probe, expect
from tally.probes import cli

MD = "Markdown: compare/agree/leaderboard"
TERM = "terminal and plots: hostile names"
SUMMARY = "Markdown: GITHUB_STEP_SUMMARY"
ANY = expect("returned", "error")

HOSTILE: dict[str, str] = {
    "image": "![p](https://evil.example/pixel.png)",
    "html_img": '<img src="https://evil.example/p.png">',
    "link": "[click me](https://evil.example/login)",
    "mention": "@octo-org/admins",
    "pipe": "a|b|c",
    "newline": "x\n# INJECTED heading",
    "comment": "<!-- the rest is hidden",
    "backtick_breakout": "x` ![p](https://evil.example/p.png) `y",
    "escape": "\x1b[2J\x1b]8;;https://evil.example\x07click\x1b]8;;\x07",
}
ESC = "\x1b[31mRED\x1b[0m\x1b]0;title\x07\r\x08"
MATH = {"frac": r"$\frac{$", "unknown_command": r"$\notacommand$", "dollars": "$$$ x"}


def _run_file(name: str, law: str = "gravity", shift: int = 0) -> dict[str, Any]:
    rows = []
    for i, video in enumerate("abcd"):
        score = 1 + (i + shift) % 5
        rows.append(
            {
                "video": video,
                "SA": score,
                "PTV": 3,
                "persistence": 1 + (i * 2 + shift) % 5,
                "physical": {"laws": {law: {"score": score}}},
            }
        )
    return {"meta": {"video_model": name}, "results": rows}


def _files(folder: Path, run: str, law: str) -> tuple[str, str]:
    a, b = folder / "A.json", folder / "B.json"
    a.write_text(json.dumps(_run_file(run, law)), encoding="utf-8")
    b.write_text(json.dumps(_run_file("other run", law, shift=1)), encoding="utf-8")
    return str(a), str(b)


def _command(
    command: str, where: str, value: str, fmt: str, extra: tuple[str, ...] = ()
) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        run_name = value if where == "run" else "runA"
        law = value if where == "law" else "gravity"
        a, b = _files(folder, run_name, law)
        labels = ("--label", value, "--label", "runB") if where == "label" else ()
        more = [str(folder / "plot.png") if e == "@plot" else e for e in extra]
        return cli(command, a, b, "--format", fmt, *labels, *more)(folder)

    return run


def _md_check(folder: Path, text: str) -> str | None:
    """Markdown output must be inert. A command that refused its input (exit 2) wrote no
    Markdown: its message is terminal text, which must hold no raw control character (it
    may quote the refused name, as any error names the thing it refuses)."""
    if text.startswith("exit 2\n"):
        return kit.raw_controls(text)
    return kit.live_markdown(text)


def _term_check(folder: Path, text: str) -> str | None:
    return kit.raw_controls(text)


def _plot_check(folder: Path, text: str) -> str | None:
    if text.startswith("exit 0") and not (folder / "plot.png").is_file():
        return "exit 0 but no plot written"
    return None


def markdown_commands() -> Iterator[Probe]:
    for command in ("compare", "agree", "leaderboard"):
        places = ("run", "law") if command != "leaderboard" else ("run", "label")
        for where in places:
            for name, value in HOSTILE.items():
                run = _command(command, where, value, "markdown")
                yield Probe(MD, f"md_{command}_{where}_{name}", run, ANY, _md_check, 20.0)
        for where in ("run", "law", "label"):
            if command == "leaderboard" and where == "law":
                continue
            run = _command(command, where, ESC, "text")
            yield Probe(TERM, f"text_{command}_{where}_escape", run, ANY, _term_check, 20.0)
    for command, where in (("compare", "run"), ("compare", "law"), ("leaderboard", "run")):
        for name, value in MATH.items():
            run = _command(command, where, value, "text", ("--plot", "@plot"))
            yield Probe(TERM, f"plot_{command}_{where}_{name}", run, ANY, _plot_check, 30.0)


# --------------------------------------------------------------------------- step summary

SUMMARY_JUDGES = """
from pytest_phyjudge import ScriptedJudge

def make():
    return ScriptedJudge({{"*": 2}}, name={name!r})
"""


def _summary(where: str, value: str) -> Callable[[Path], str]:
    """A pytest run whose suite, case or judge is named ``value``, with a summary file;
    its items fail (score 2 under 3), so every name is shown."""

    def run(folder: Path) -> str:
        kit.suite(
            folder,
            cases=("a", value if where == "case" else "b"),
            suite_name=value if where == "suite" else None,
        )
        judge = value if where == "judge" else "scripted-tally"
        (folder / "judges.py").write_text(SUMMARY_JUDGES.format(name=judge), encoding="utf-8")
        summary = folder / "summary.md"
        summary.write_text("", encoding="utf-8")
        env = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"}
        code, out = kit.run_pytest(folder, "--phyjudge-judge", "judges:make", env=env)
        problem = kit.raw_controls(out.replace("\r\n", "\n"))
        if problem:
            raise NotClean(f"pytest's terminal output: {problem}")
        text = summary.read_text(encoding="utf-8", errors="replace")
        problem = kit.live_markdown(text)
        if problem:
            raise NotClean(f"the step summary: {problem}")
        return f"exit {code}\n{out}"

    return run


def _summary_target(make: Callable[[Path], str]) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        kit.suite(folder, cases=("a",))
        env = {"GITHUB_STEP_SUMMARY": make(folder), "GITHUB_ACTIONS": "true"}
        code, out = kit.run_pytest(folder, "--phyjudge-judge", "judges:make", env=env, limit=20)
        if "INTERNALERROR" in out or "Traceback" in out:
            raise NotClean(f"traceback in the session: {kit_last(out)}")
        return f"exit {code}\n{out}"

    return run


def kit_last(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def _fifo(folder: Path) -> str:
    os.mkfifo(folder / "summary.fifo")
    return str(folder / "summary.fifo")


def _dir(folder: Path) -> str:
    (folder / "summary.d").mkdir()
    return str(folder / "summary.d")


def _under_file(folder: Path) -> str:
    (folder / "afile").write_text("x")
    return str(folder / "afile" / "summary.md")


def summaries() -> Iterator[Probe]:
    chosen = ("image", "html_img", "mention", "pipe", "newline", "escape")
    for where in ("suite", "case", "judge"):
        for name in chosen if where != "case" else ("image", "mention", "escape"):
            value = HOSTILE[name].replace("/", "_") if where == "case" else HOSTILE[name]
            probe = _summary(where, value)
            yield Probe(SUMMARY, f"summary_{where}_{name}", probe, ANY, None, 40.0)
    for name, make in (
        ("fifo", _fifo),
        ("folder", _dir),
        ("under_a_file", _under_file),
        ("dev_full", lambda f: "/dev/full"),
    ):
        yield Probe(SUMMARY, f"summary_target_{name}", _summary_target(make), ANY, None, 30.0)


def markdown_probes() -> list[Probe]:
    return [*markdown_commands(), *summaries()]
