"""The options every judging command shares, and the JudgeSettings they make: the command
line's side of the one judge factory (pytest's side is ``plugin/options.py``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_phyjudge.engine.judgment import stand_in_notice
from pytest_phyjudge.judges.options import (
    BY_NAME,
    CLI_SURFACE,
    GROUP_TITLES,
    Group,
    JudgeOption,
    options_in,
    settings_from,
)
from pytest_phyjudge.judges.settings import CACHE_DIR_NAME, JudgeSettings

#: Where judgments are kept when no folder is given: the one pytest uses from this folder.
DEFAULT_CACHE_DIR = f".pytest_cache/d/{CACHE_DIR_NAME}"


def add_judge_options(parser: argparse.ArgumentParser, *, servers: bool = True) -> None:
    """The judge's options; ``servers``: also those of judging on servers (--url ...)."""
    add_groups(parser, ("judge", "servers") if servers else ("judge",))


def add_groups(parser: argparse.ArgumentParser, groups: tuple[Group, ...]) -> None:
    """The option table's settings of ``groups``, each group under its title."""
    for name in groups:
        group = parser.add_argument_group(GROUP_TITLES[name])
        for option in options_in([name]):
            _add(group, option)


def _add(parser: argparse.ArgumentParser | argparse._ArgumentGroup, option: JudgeOption) -> None:
    """One setting of the table as the command takes it: same parser, help and default."""
    if option.cli_flag is None:
        return
    default = DEFAULT_CACHE_DIR if option.name == "cache" else option.default
    shown = option
    if option.name == "cache":
        shown = replace(option, shown_default=f"{DEFAULT_CACHE_DIR}, the one pytest uses from here")
    typed: dict[str, Any] = {"type": option.parse} if option.parse else {}
    parser.add_argument(
        option.cli_flag,
        default=default,
        metavar=option.metavar,
        help=shown.help_on(CLI_SURFACE),
        **typed,
    )


def add_cache_dir(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    _add(parser, BY_NAME["cache"])


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    add_groups(parser, ("cache",))


def judge_settings(args: argparse.Namespace) -> JudgeSettings:
    """The JudgeSettings of parsed arguments (commands without a cache get none), naming the
    command's flags in their messages. ``--judge tiny`` is built in the factory's folder
    under the system's temp folder: a command writes nothing into the current folder that
    its flags do not name (``.pytest_cache/`` is pytest's)."""
    fixed: dict[str, Any] = {}
    if not hasattr(args, "cache_mode"):
        fixed["cache_mode"] = "off"
    return settings_from(_given(args), CLI_SURFACE, **fixed)


def _given(args: argparse.Namespace) -> Callable[[JudgeOption], Any]:
    def given(option: JudgeOption) -> Any:
        if option.cli_flag is None:
            return None
        value = getattr(args, option.cli_flag[2:].replace("-", "_"), None)
        return Path(value) if option.path and value is not None else value

    return given


def warn_if_stand_in(kind: str) -> str | None:
    """One line on stderr when the judge is a stand-in (tiny, scripted): its JSON looks just
    like a real judge's, and a newcomer cannot tell a broken install from meaningless scores
    (pytest's header and the HTML report say the same). Returns the notice, which the
    command's JSON carries as ``stand_in`` (None for a real judge)."""
    notice = stand_in_notice(kind)
    if notice is not None:
        print(f"phyjudge: warning: {notice}", file=sys.stderr, flush=True)
    return notice


def parse_command_line(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> argparse.Namespace:
    """Parse like ``parse_args``, but an unknown argument is reported by the subcommand that
    was given it, with that subcommand's usage (argparse leaves it to the top-level parser,
    whose usage only lists the commands), naming the commands that do take it."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        chosen, name = _chosen(parser, args)
        message = f"unrecognized arguments: {' '.join(extra)}"
        for flag in dict.fromkeys(e.split("=", 1)[0] for e in extra if e.startswith("--")):
            takers = [n for n, sub in _commands(parser) if flag in sub._option_string_actions]
            if takers:
                message += f"; {flag} is an option of {', '.join(takers)}, not of {name}"
        chosen.error(message)
    return args


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _chosen(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Any, str]:
    """The deepest (sub)command parser the arguments chose, and its name (``cache export``)."""
    names: list[str] = []
    while (action := _subcommands(parser)) is not None:
        picked = getattr(args, action.dest, None)
        if picked not in action.choices:
            break
        names.append(picked)
        parser = action.choices[picked]
    return parser, " ".join(names) or parser.prog


def _commands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    action = _subcommands(parser)
    return [] if action is None else list(action.choices.items())
