"""``phyjudge canary record`` and ``phyjudge canary check``: record how a trusted judge
answers a few clips, then check that a judge still answers like it (behaviour, not labels)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_phyjudge._escape import terminal_text
from pytest_phyjudge._exceptions import InputError, describe_error
from pytest_phyjudge._files import write_json_atomic
from pytest_phyjudge._words import counted
from pytest_phyjudge.canary.compare import Tolerances
from pytest_phyjudge.canary.model import (
    CanaryFile,
    CanaryItem,
    check_canary_out,
    read_canaries,
    relative_clip,
    verified_clips,
)
from pytest_phyjudge.canary.record import Ask, observe
from pytest_phyjudge.cli.arguments import add_groups, add_judge_options, judge_settings
from pytest_phyjudge.cli.exits import EXIT_DRIFT, EXIT_OK
from pytest_phyjudge.cli.score import add_pairing_arguments, check_out_location, paired_clips
from pytest_phyjudge.engine.axes import GENERAL_METRICS, check_axis, is_law
from pytest_phyjudge.engine.video import sha256_file
from pytest_phyjudge.judges.settings import parse_number

TOLERANCES_HELP = (
    "On the same judge, settings and device the replies repeat exactly (the tiny judge, "
    "recorded and checked on one machine: agreement 1.0, differences 0.0); across GPUs or "
    "dtypes float noise moves expected scores by hundredths and flips only nearly tied "
    "digits. So the defaults are tight but not zero; each applies to every axis and to all "
    "items pooled."
)


def add_commands(commands: Any) -> None:
    canary = commands.add_parser(
        "canary",
        help="record how a trusted judge answers a few clips; check a judge still answers so",
        description="Judge canaries: 'record' judges a few clips on a judge you trust, "
        "greedy and with the digit distribution, and writes them to a JSON file; 'check' "
        "judges them afresh (never from the cache) and compares the behaviour.",
    )
    sub = canary.add_subparsers(dest="canary_command", required=True, metavar="COMMAND")
    record = sub.add_parser(
        "record",
        help="judge a folder's clips on a trusted judge and write canaries.json",
        description="Pair DIR's clips with a PhyGround prompt set as score-dir does, judge "
        "each (clip, axis) greedy and with the digit distribution (the cache off), and write "
        "the replies, the probabilities of 1-5, the clips' and prompts' sha256, the settings, "
        "and what the judge says of itself. The clips are named relative to --out's folder, "
        "which must hold them. Both scorings are recorded whatever --scoring says.",
    )
    add_pairing_arguments(record, out="where to write the canary file (JSON)")
    record.add_argument(
        "--axes",
        nargs="+",
        metavar="AXIS",
        help=f"axes to judge: metrics on every clip, laws on the clips whose prompt lists them "
        f"(default: {' '.join(GENERAL_METRICS)} and each prompt's laws)",
    )
    record.add_argument(
        "--limit",
        type=_positive_int,
        metavar="N",
        help="record only the first N clips (in the prompt set's order)",
    )
    add_judge_options(record)
    record.set_defaults(run=run_record)

    check = sub.add_parser(
        "check",
        help="judge the canaries afresh and compare the behaviour with the record",
        description="Judge the canaries afresh (the cache off) after checking every clip's "
        "sha256, and compare per axis and pooled: greedy digit agreement, mean |difference| "
        "of expected scores, largest total-variation distance between digit distributions. "
        "Exit 0 when the behaviour holds (a new identity is a note), 7 on drift, 2 for a "
        "canary clip missing or changed or a bad canary file. Both scorings are judged "
        "whatever --scoring says. " + TOLERANCES_HELP,
    )
    check.add_argument("canaries", help="the canary file 'canary record' wrote")
    add_groups(check, ("canary",))  # the tolerances, from the one option table
    add_judge_options(check)
    check.set_defaults(run=run_check)


def _positive_int(value: str) -> int:
    return parse_number(value, int, lambda n: n >= 1, "a whole number of at least 1")


def _asks(args: argparse.Namespace) -> list[Ask]:
    """What to record: score-dir's pairing, then each clip's axes."""
    _, groups, _ = paired_clips(args.videos, args.prompts)
    pairs = [
        pair for _, group in sorted(groups.items(), key=lambda g: g[0] or "") for pair in group
    ]
    if args.limit is not None:
        pairs = pairs[: args.limit]
    chosen = None if args.axes is None else [check_axis(a) for a in args.axes]
    metrics = list(GENERAL_METRICS) if chosen is None else [a for a in chosen if not is_law(a)]
    asks = []
    for prompt, path in pairs:
        laws = [law for law in prompt["laws"] if chosen is None or law in chosen]
        asks.extend(Ask(path, prompt["prompt"], axis) for axis in dict.fromkeys(metrics + laws))
    if not asks:
        raise InputError(
            "No (clip, axis) to record: --axes names only laws that no paired prompt lists."
        )
    return asks


def run_record(args: argparse.Namespace) -> int:
    out = Path(args.out)
    check_out_location(out)
    check_canary_out(out)
    asks = _asks(args)
    names = {ask.clip: relative_clip(out, ask.clip) for ask in asks}
    digests = {clip: sha256_file(clip) for clip in names}
    seen = observe(judge_settings(args), asks, clock=time.monotonic)
    items = tuple(
        CanaryItem(
            clip=names[ask.clip],
            clip_sha256=digests[ask.clip],
            caption=ask.caption,
            axis=ask.axis,
            prompt_sha256=answer.prompt_sha256,
            reading=answer.reading,
        )
        for ask, answer in zip(asks, seen.answers, strict=True)
    )
    created = datetime.now(UTC).isoformat(timespec="seconds")
    document = CanaryFile(setup=seen.setup, items=items, created=created)
    try:
        write_json_atomic(out, document.to_dict())
    except OSError as exc:
        raise InputError(f"Cannot write --out {str(out)!r} ({describe_error(exc)}).") from exc
    print(
        f"wrote {terminal_text(str(out))}: {counted(len(items), 'canary')} "
        f"({counted(len(digests), 'clip')}) on "
        f"{terminal_text(seen.setup.describe())}; {counted(seen.calls, 'judge call')} in "
        f"{seen.seconds:.1f} s",
        file=sys.stderr,
    )
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    canaries = read_canaries(args.canaries)
    clips = verified_clips(args.canaries, canaries)
    asks = [Ask(clips[item.clip], item.caption, item.axis) for item in canaries.items]
    seen = observe(judge_settings(args), asks, clock=time.monotonic)
    verdict = seen.compared_with(
        canaries, Tolerances(args.max_disagree, args.max_mean_diff, args.max_tv)
    )
    print("\n".join(verdict.table_lines()))
    for note in verdict.notes():
        print(f"note: {terminal_text(note)}")
    print(f"cost: {counted(seen.calls, 'judge call')} in {seen.seconds:.1f} s")
    print(terminal_text(verdict.line()))
    return EXIT_OK if verdict.holds else EXIT_DRIFT
