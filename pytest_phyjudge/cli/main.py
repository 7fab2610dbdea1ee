"""The ``phyjudge`` command: one parser, one module per command group, one place where
errors become exit codes (see ``exits``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pytest_phyjudge._exceptions import (
    CacheError,
    InputError,
    JudgeBackendError,
    JudgeLoadError,
    PhyJudgeError,
    RubricError,
)
from pytest_phyjudge.cli import cache, canary, compare, leaderboard, report, score, serve
from pytest_phyjudge.cli.arguments import parse_command_line
from pytest_phyjudge.cli.exits import (
    EPILOG,
    EXIT_BACKEND,
    EXIT_INTERRUPTED,
    EXIT_LOAD,
    EXIT_USAGE,
    fail,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phyjudge",
        description="Score generated videos for physical plausibility with PhyJudge-9B.",
        epilog=EPILOG,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (score, serve, compare, leaderboard, report, cache, canary):
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_command_line(build_parser(), argv)
    try:
        return int(args.run(args))
    except (InputError, RubricError, CacheError) as exc:
        return fail(str(exc), EXIT_USAGE)
    except JudgeLoadError as exc:
        return fail(str(exc), EXIT_LOAD)
    except JudgeBackendError as exc:
        return fail(str(exc), EXIT_BACKEND)
    except PhyJudgeError as exc:  # pragma: no cover - every subclass is handled above
        return fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
