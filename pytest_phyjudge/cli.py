"""The ``phyjudge`` command: score one video on one axis, like the model's reference script.

Exit codes: 0 scored, 2 usage or bad input, 3 the judge's reply holds no score (the raw
reply is shown), 4 the judge could not be loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from pytest_phyjudge._exceptions import (
    InputError,
    JudgeLoadError,
    JudgeOutputError,
    PhyJudgeError,
    RubricError,
)
from pytest_phyjudge.axes import GENERAL_METRICS, axis_from
from pytest_phyjudge.hub import DEFAULT_ADAPTER
from pytest_phyjudge.video import DEFAULT_FPS, DEFAULT_MAX_PIXELS

EXIT_OK, EXIT_USAGE, EXIT_UNPARSEABLE, EXIT_LOAD = 0, 2, 3, 4


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _add_judge_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("judge")
    group.add_argument(
        "--adapter-dir",
        default=DEFAULT_ADAPTER,
        help=f"adapter folder or hub id (default: {DEFAULT_ADAPTER})",
    )
    group.add_argument("--revision", help="hub revision (branch, tag or commit) of the adapter")
    group.add_argument("--base-model", help="override the adapter config's base model id/folder")
    group.add_argument("--device", help="cuda, cuda:1, cpu, ... (default: cuda if available)")
    group.add_argument("--dtype", help="auto, bfloat16, float16 or float32 (default: auto)")
    group.add_argument("--attn-implementation", help="e.g. sdpa, flash_attention_2, eager")
    group.add_argument(
        "--fps",
        type=_positive_float,
        default=DEFAULT_FPS,
        help=f"frames sampled per second (default: {DEFAULT_FPS})",
    )
    group.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=DEFAULT_MAX_PIXELS,
        help=f"pixels per sampled frame at most (default: {DEFAULT_MAX_PIXELS})",
    )
    group.add_argument(
        "--max-new-tokens",
        type=_positive_int,
        default=64,
        help="tokens generated at most (default: 64)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phyjudge",
        description="Score generated videos for physical plausibility with PhyJudge-9B.",
        epilog="Exit codes: 0 ok, 2 usage or bad input, 3 unparseable judge reply, "
        "4 judge could not be loaded.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    score = commands.add_parser(
        "score",
        help="score one video on one axis and print one JSON line",
        description='Score one video on one axis; prints {"key", "score", "raw"} as one '
        "JSON line, like the reference script.",
    )
    score.add_argument("--video", required=True, help="path of the video file (.mp4)")
    score.add_argument("--caption", required=True, help="the prompt the video was made from")
    axis = score.add_mutually_exclusive_group(required=True)
    axis.add_argument("--law", help="one of the 13 physical laws, e.g. gravity")
    axis.add_argument("--metric", help=f"one of the general metrics: {', '.join(GENERAL_METRICS)}")
    score.add_argument("--criteria", help="replace the law's criterion text in the prompt")
    score.add_argument(
        "--print-prompt",
        action="store_true",
        help="print the rendered system and user prompt before scoring",
    )
    _add_judge_options(score)
    return parser


def _fail(message: str, code: int) -> int:
    print(f"phyjudge: error: {message}", file=sys.stderr)
    return code


def _load(args: argparse.Namespace):  # -> Judge
    from pytest_phyjudge.judges.local import load_judge

    return load_judge(
        args.adapter_dir,
        revision=args.revision,
        base_model=args.base_model,
        device=args.device,
        dtype=args.dtype,
        attn_implementation=args.attn_implementation,
        fps=args.fps,
        max_pixels=args.max_pixels,
        max_new_tokens=args.max_new_tokens,
    )


def _cmd_score(args: argparse.Namespace) -> int:
    from pytest_phyjudge.video import check_video_file, decode_video

    axis = axis_from(law=args.law, metric=args.metric)
    if args.criteria is not None and args.law is None:
        raise InputError("--criteria replaces a law's criterion; it needs --law, not --metric.")
    check_video_file(args.video)
    decode_video(args.video, fps=args.fps, max_pixels=args.max_pixels)  # bad clips fail fast
    judge = _load(args)
    try:
        if args.print_prompt:
            prompt = judge.render(
                args.caption, law=args.law, metric=args.metric, criteria=args.criteria
            )
            print(
                "=== system ===",
                prompt.system,
                "=== user (after the video) ===",
                prompt.user,
                "=== end of prompt ===",
                sep="\n",
                flush=True,
            )
        try:
            judgment = judge.score(
                args.video, args.caption, law=args.law, metric=args.metric, criteria=args.criteria
            )
        except JudgeOutputError as exc:
            print(json.dumps({"key": axis, "score": None, "raw": exc.raw}), flush=True)
            return _fail(f"{exc.reason} The raw reply is in the JSON line above.", EXIT_UNPARSEABLE)
        print(json.dumps(judgment.cli_line()), flush=True)
        return EXIT_OK
    finally:
        judge.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "score":
            return _cmd_score(args)
    except (InputError, RubricError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except JudgeLoadError as exc:
        return _fail(str(exc), EXIT_LOAD)
    except PhyJudgeError as exc:  # pragma: no cover - every subclass is handled above
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    return EXIT_USAGE  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    sys.exit(main())
