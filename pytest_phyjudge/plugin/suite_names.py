"""The hint for a YAML suite that pytest does not collect because of its name: without it a
newcomer's ``real.yaml`` is silently skipped (``collected 0 items``, or pytest's bare "not
found" when it was named on the command line).

Threat model: reads the names of the files pytest walks and, only when a run collected no
test, the first few kilobytes of at most a few unmatched ``.yaml`` files of the folders given
(the user's own checkout); writes one warning line per file to the terminal, the path escaped
for it; never collects, opens for writing or imports anything."""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

from pytest_phyjudge._escape import terminal_text

YAML_SUFFIXES = (".yaml", ".yml")
#: A top-level key that only a suite has at the start of a line.
_SUITE_KEY = re.compile(r"^(?:cases|suite)\s*:", re.MULTILINE)
#: How much of an unmatched file is read, and how many files, for the summary's hint.
PEEK_BYTES = 16_384
PEEK_FILES = 20

_EXPLICIT = pytest.StashKey[frozenset[Path]]()
_UNMATCHED = pytest.StashKey[list[Path]]()


def _explicit(config: pytest.Config) -> frozenset[Path]:
    """The files named on the command line (resolved, ``::`` selections dropped)."""
    if _EXPLICIT not in config.stash:
        base = Path(config.invocation_params.dir)
        named = {(base / str(arg).split("::")[0]).resolve() for arg in config.args}
        config.stash[_EXPLICIT] = frozenset(named)
    return config.stash[_EXPLICIT]


def unmatched_message(path: Path, globs: tuple[str, ...]) -> str:
    """The warning for ``path``, a YAML file that no suite pattern matches."""
    stem = path.name.rsplit(".", 1)[0]
    return (
        f"phyjudge: {terminal_text(str(path))} is not collected as a suite: its name matches "
        f"none of the suite patterns ({', '.join(globs)}; ini phyjudge_suite_glob). Rename it "
        f"to {terminal_text(stem)}.phyjudge.yaml, or add a pattern that matches it to "
        "phyjudge_suite_glob."
    )


def _say(config: pytest.Config, line: str) -> None:
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        terminal.write_line(line, yellow=True, bold=True)


def note_uncollected(config: pytest.Config, path: Path, globs: tuple[str, ...]) -> None:
    """A YAML file the suite patterns do not match: warned about at once when it was named
    on the command line (pytest then stops with "not found"), else kept for the summary."""
    if path.suffix not in YAML_SUFFIXES or any(fnmatch(path.name, g) for g in globs):
        return
    if path.resolve() in _explicit(config):
        _say(config, unmatched_message(path, globs))
    else:
        config.stash.setdefault(_UNMATCHED, []).append(path)


def _looks_like_suite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(PEEK_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return False
    return _SUITE_KEY.search(head) is not None


def summary_hints(config: pytest.Config, globs: tuple[str, ...]) -> list[str]:
    """For a run that collected nothing: a line for each YAML file walked that looks like a
    suite (a top-level ``cases:`` or ``suite:``) but is not named like one."""
    found = config.stash.get(_UNMATCHED, [])[:PEEK_FILES]
    return [unmatched_message(path, globs) for path in found if _looks_like_suite(path)]
