"""MkDocs hook: the reference pages' tables, rendered from the code when the site is built.

A reference page holds its prose and a marker (``<!-- phyjudge:options -->``,
``<!-- phyjudge:cli -->``, ``<!-- phyjudge:exit-codes -->``); this hook puts in its place
what the code declares: the pytest parser with the plugin's options and ini keys, the
``phyjudge`` command's argparse parsers (every subcommand, walked), and the exit codes of
``cli/exits.py``. Nothing is copied by hand, so the pages cannot fall behind the code.
``tests/test_docs.py`` imports this file to check that every option and command is listed.
"""

from __future__ import annotations

import argparse
import ast
import html
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

from _pytest.config.argparsing import Parser

from pytest_phyjudge.cli import exits
from pytest_phyjudge.cli.main import build_parser
from pytest_phyjudge.judges.options import JUDGE_OPTIONS, options_markdown
from pytest_phyjudge.plugin.options import add_options

MARKER = re.compile(r"<!--\s*phyjudge:([a-z-]+)\s*-->")


def _cell(text: str) -> str:
    """Text as one Markdown table cell: no HTML, no column break, no line break."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{text}`".replace("|", "\\|")


# -- pytest: options and ini keys -------------------------------------------------------------


def pytest_parser() -> Parser:
    """A pytest parser holding the plugin's options and ini keys, as ``pytest_addoption``
    declares them."""
    parser = Parser(_ispytest=True)
    add_options(parser)
    return parser


def pytest_options(parser: Parser) -> Iterator[Any]:
    """The plugin's pytest options (pytest's ``Argument`` objects)."""
    for group in parser._groups:
        if group.name == "phyjudge":
            yield from group.options


def options_page() -> str:
    """Every pytest option and ini key, and each judge setting's ``phyjudge`` flag."""
    parser = pytest_parser()
    judge_flags = {o.pytest_flag for o in JUDGE_OPTIONS}
    # The judge settings' tables, as the option table renders them (without its title).
    judge_part = options_markdown().split("\n## ", 1)[1]
    lines = ["## " + judge_part.rstrip(), "", "## The run's own options", ""]
    lines += [
        "Thresholds, reports and baselines: options of the pytest run (the `phyjudge` command "
        "takes its own flags for these; see [the command line](cli.md)).",
        "",
        "| pytest | ini | value | what it does |",
        "|---|---|---|---|",
    ]
    for option in pytest_options(parser):
        flag = option.names()[0]
        if flag in judge_flags:
            continue
        ini = option.dest if option.dest in parser._inidict else ""
        metavar = option.attrs().get("metavar") or ""
        lines.append(
            f"| {_code(flag)} | {_code(ini) if ini else ''} | "
            f"{_code(metavar) if metavar else ''} | {_cell(option.attrs().get('help', ''))} |"
        )
    flagged = {o.dest for o in pytest_options(parser)}
    ini_only = [(name, spec) for name, spec in parser._inidict.items() if name not in flagged]
    lines += [
        "",
        "## Ini keys without a flag",
        "",
        "| ini | type | what it does |",
        "|---|---|---|",
    ]
    for name, spec in ini_only:
        help_text, kind = spec[0], spec[1]
        lines.append(f"| {_code(name)} | {_code(str(kind))} | {_cell(help_text)} |")
    return "\n".join(lines) + "\n"


# -- the phyjudge command -----------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str]]:
    """(name, one-line help) of a parser's subcommands, in the order ``--help`` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield choice.dest, choice.help or ""


def _child(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


def commands(
    parser: argparse.ArgumentParser | None = None, prefix: str = "phyjudge"
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """Every command (``phyjudge score``, ``phyjudge cache export``, ...) with its help and
    parser, groups before their own subcommands."""
    parser = parser or build_parser()
    for name, help_text in _subcommands(parser):
        child = _child(parser, name)
        yield f"{prefix} {name}", help_text, child
        yield from commands(child, f"{prefix} {name}")


def _value(action: argparse.Action) -> str:
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return "|".join(str(c) for c in action.choices)
    if action.nargs == 0:
        return ""
    return action.metavar if isinstance(action.metavar, str) else action.dest.upper()


def _default(action: argparse.Action) -> str:
    default = action.default
    if default in (None, False, argparse.SUPPRESS) or action.nargs == 0 or default == []:
        return ""
    return str(default)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    # argparse's own expansion of %(default)s and the like.
    return parser._get_formatter()._expand_help(action)


def _arguments_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for group in parser._action_groups:
        for action in group._group_actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            name = ", ".join(action.option_strings) or (
                action.metavar if isinstance(action.metavar, str) else action.dest
            )
            value = _value(action)
            default = _default(action)
            rows.append(
                f"| {_code(name)} | {_code(value) if value else ''} | "
                f"{_code(default) if default else ''} | {_cell(_help(parser, action))} |"
            )
    if not rows:
        return []
    return ["| argument | value | default | what it does |", "|---|---|---|---|", *rows, ""]


def cli_page() -> str:
    """Every ``phyjudge`` command: its usage, what it does, and each argument."""
    top = build_parser()
    lines = [
        "| command | what it does |",
        "|---|---|",
        *(f"| [{_code(name)}](#{_anchor(name)}) | {_cell(h)} |" for name, h, _ in commands(top)),
        "",
    ]
    for name, help_text, parser in commands(top):
        level = "#" * (name.count(" ") + 1)
        lines += [f"{level} {name}", ""]
        lines += ["```text", _usage(parser), "```", ""]
        description = parser.description or help_text
        if description:
            lines += [_cell(description), ""]
        lines += _arguments_table(parser)
    return "\n".join(lines)


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage line(s) at a fixed width, whatever the terminal building the site."""
    formatter = argparse.HelpFormatter(parser.prog, width=88)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _anchor(heading: str) -> str:
    """The id Python-Markdown's toc gives a heading of plain words."""
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", heading).strip().lower())


# -- exit codes ---------------------------------------------------------------------------------


def exit_codes() -> list[tuple[int, str, str]]:
    """(code, constant, meaning) of ``cli/exits.py``: each ``EXIT_*`` constant and the ``#:``
    comment above it."""
    source = inspect.getsource(exits)
    lines = source.splitlines()
    found = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if not name.startswith("EXIT_"):
            continue
        comment = []
        row = node.lineno - 2
        while row >= 0 and lines[row].lstrip().startswith("#:"):
            comment.insert(0, lines[row].lstrip()[2:].strip())
            row -= 1
        found.append((getattr(exits, name), name, " ".join(comment)))
    return found


def exit_codes_page() -> str:
    lines = ["| code | constant | meaning |", "|---|---|---|"]
    for code, name, meaning in exit_codes():
        lines.append(f"| {code} | {_code(name)} | {_cell(meaning)} |")
    return "\n".join(lines) + "\n"


PAGES: dict[str, Callable[[], str]] = {
    "options": options_page,
    "cli": cli_page,
    "exit-codes": exit_codes_page,
}


def render(markdown: str) -> str:
    """``markdown`` with each marker replaced by its generated part; an unknown marker is an
    error, so a typo cannot leave a page silently empty."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PAGES:
            raise ValueError(f"unknown reference marker {match.group(0)!r}; known: {list(PAGES)}")
        return PAGES[name]()

    return MARKER.sub(fill, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs' hook: fill the markers of every page."""
    return render(markdown)
