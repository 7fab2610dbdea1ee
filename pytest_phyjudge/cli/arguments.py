"""The options every judging command shares, and the JudgeSettings they make: the command
line's side of the one judge factory (pytest's side is ``plugin/options.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_phyjudge.judges.settings import (
    CACHE_DIR_NAME,
    CACHE_MODES,
    DEFAULT_ADAPTER,
    DEFAULT_BATCH_CLIPS,
    DEFAULT_CONCURRENCY,
    DEFAULT_FPS,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RETRIES,
    DEVICES_HELP,
    DTYPES,
    SCORING_MODES,
    TINY,
    TINY_DIR_NAME,
    JudgeSettings,
    parse_count,
    parse_device,
    parse_dtype,
    parse_judge_spec,
    parse_max_pixels,
    parse_media_root,
    parse_positive_float,
    parse_positive_int,
    parse_url_list,
)

#: Where judgments are kept when no folder is given: the one pytest uses from this folder.
DEFAULT_CACHE_DIR = f".pytest_cache/d/{CACHE_DIR_NAME}"
#: Where ``--judge tiny`` is built: the folder pytest's ``--phyjudge-judge tiny`` uses too.
TINY_FOLDER = f".pytest_cache/d/{TINY_DIR_NAME}"


def add_judge_options(parser: argparse.ArgumentParser, *, servers: bool = True) -> None:
    """The judge's options; ``servers``: also those of judging on servers (--url ...)."""
    group = parser.add_argument_group("judge")
    group.add_argument(
        "--adapter-dir",
        default=DEFAULT_ADAPTER,
        help=f"adapter folder or hub id (default: {DEFAULT_ADAPTER})",
    )
    group.add_argument("--revision", help="hub revision (branch, tag or commit) of the adapter")
    group.add_argument("--base-model", help="override the adapter config's base model id/folder")
    group.add_argument(
        "--judge",
        type=parse_judge_spec,
        metavar="SPEC",
        help=f"'{TINY}' (a tiny test judge on the CPU, for dry runs: its scores are "
        "meaningless) or 'package.module:factory' instead of the adapter",
    )
    group.add_argument(
        "--device", type=parse_device, help=f"{DEVICES_HELP} (default: cuda if available)"
    )
    group.add_argument(
        "--dtype", type=parse_dtype, help=f"{', '.join(DTYPES)} (default: auto)", metavar="DTYPE"
    )
    group.add_argument("--attn-implementation", help="e.g. sdpa, flash_attention_2, eager")
    group.add_argument(
        "--threads",
        type=parse_positive_int,
        metavar="N",
        help="CPU threads for torch (default: torch's, one per core; 1 is faster where other "
        "processes share the cores)",
    )
    group.add_argument(
        "--fps",
        type=parse_positive_float,
        default=DEFAULT_FPS,
        help=f"frames sampled per second (default: {DEFAULT_FPS})",
    )
    group.add_argument(
        "--max-pixels",
        type=parse_max_pixels,
        default=DEFAULT_MAX_PIXELS,
        help=f"pixels per sampled frame at most (default: {DEFAULT_MAX_PIXELS})",
    )
    group.add_argument(
        "--max-new-tokens",
        type=parse_positive_int,
        default=DEFAULT_MAX_NEW_TOKENS,
        help=f"tokens generated at most (default: {DEFAULT_MAX_NEW_TOKENS})",
    )
    group.add_argument(
        "--scoring",
        choices=SCORING_MODES,
        default="greedy",
        help="greedy (the reference) or distribution (probabilities of the digits 1-5)",
    )
    if servers:
        _add_server_options(parser)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    remote = parser.add_argument_group("judge servers (instead of a model in this process)")
    remote.add_argument(
        "--url",
        type=parse_url_list,
        help="OpenAI-compatible judge servers, URL[,URL...] (vLLM serving the merged "
        "checkpoint, or 'phyjudge serve')",
    )
    remote.add_argument(
        "--remote-identity",
        metavar="PATH",
        help="the merged checkpoint (or its provenance file) the servers run (default: asked "
        "from /v1/models)",
    )
    remote.add_argument(
        "--media-root",
        type=parse_media_root,
        metavar="DIR[=SERVED]",
        help="send videos under DIR as file:// URLs: the servers share the filesystem",
    )
    remote.add_argument(
        "--concurrency",
        type=parse_positive_int,
        default=DEFAULT_CONCURRENCY,
        help=f"requests in flight (default: {DEFAULT_CONCURRENCY})",
    )
    remote.add_argument(
        "--timeout",
        type=parse_positive_float,
        default=DEFAULT_READ_TIMEOUT,
        help=f"seconds to wait for a server's whole reply (default: {DEFAULT_READ_TIMEOUT:.0f})",
    )
    remote.add_argument(
        "--retries",
        type=parse_count,
        default=DEFAULT_RETRIES,
        help=f"retries of a failed request (default: {DEFAULT_RETRIES})",
    )


def add_cache_dir(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--cache",
        default=DEFAULT_CACHE_DIR,
        help=f"cache folder (default: {DEFAULT_CACHE_DIR}, the one pytest uses from here)",
    )


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("judgment cache")
    add_cache_dir(group)
    group.add_argument(
        "--cache-mode",
        choices=CACHE_MODES,
        default="use",
        help="use (default), refresh, off, or only (replay: no model is loaded)",
    )
    group.add_argument(
        "--identity",
        metavar="FILE",
        help="with --cache-mode only: replay the judge named in FILE (written by 'phyjudge "
        "cache export'), with no adapter or server here",
    )


def judge_settings(args: argparse.Namespace) -> JudgeSettings:
    """The JudgeSettings of parsed arguments (commands without a cache get none)."""
    cache = getattr(args, "cache", None)
    identity = getattr(args, "identity", None)
    remote_identity = getattr(args, "remote_identity", None)
    return JudgeSettings(
        adapter=args.adapter_dir,
        revision=args.revision,
        base_model=args.base_model,
        judge=args.judge,
        device=args.device,
        dtype=args.dtype,
        attn_implementation=args.attn_implementation,
        scoring=args.scoring,
        fps=args.fps,
        max_pixels=args.max_pixels,
        max_new_tokens=args.max_new_tokens,
        cache_dir=None if cache is None else Path(cache),
        cache_mode=getattr(args, "cache_mode", "off"),
        identity_file=None if identity is None else Path(identity),
        url=getattr(args, "url", None) or (),
        remote_identity=None if remote_identity is None else Path(remote_identity),
        media_root=getattr(args, "media_root", None),
        concurrency=getattr(args, "concurrency", DEFAULT_CONCURRENCY),
        timeout=getattr(args, "timeout", DEFAULT_READ_TIMEOUT),
        retries=getattr(args, "retries", DEFAULT_RETRIES),
        batch_clips=getattr(args, "batch_clips", DEFAULT_BATCH_CLIPS),
        tiny_folder=Path(TINY_FOLDER),
        threads=args.threads,
    )
