"""``phyjudge score`` (one video, one axis, like the reference script) and ``phyjudge
score-dir`` (a folder of videos against a PhyGround prompt set, through the cache).

Threat model (writing): a clip's file name, which anyone may choose, names its generator,
and that name becomes part of a results file's name beside ``--out`` and of the lines
printed. So a generator's name is used as it is only when plain, else in a safe form with a
hash (two generators never share a file, even on a disk that ignores case); it is printed
escaped; and a file beside ``--out`` that is not a results file of ours (a user's file, a
symlink, a pipe) is refused before any clip is judged, never overwritten."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from pytest_phyjudge._escape import terminal_lines, terminal_text
from pytest_phyjudge._exceptions import InputError, JudgeOutputError
from pytest_phyjudge._outputs import file_part
from pytest_phyjudge.cli.arguments import (
    add_cache_options,
    add_groups,
    add_judge_options,
    judge_settings,
    warn_if_stand_in,
)
from pytest_phyjudge.cli.exits import EXIT_OK, EXIT_UNPARSEABLE, fail
from pytest_phyjudge.engine.axes import GENERAL_METRICS, axis_from, check_law, check_metric
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.judges.factory import build_judge
from pytest_phyjudge.scores.writer import is_earlier_results
from pytest_phyjudge.suites.model import is_case_id


def add_commands(commands: Any) -> None:
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
    add_judge_options(score)
    score.set_defaults(run=run_score)

    batch = commands.add_parser(
        "score-dir",
        help="judge every video of a folder against a PhyGround prompt set; write scores.json",
        description="Pair DIR/<id>.mp4 (or DIR/<generator>__<id>.mp4) with the prompts of a "
        "PhyGround prompt set, judge each pair on the general metrics and its laws through the "
        "judgment cache, and write PhyGround's scores.json. Re-running resumes: judgments "
        "already made come from the cache. Clips of several generators "
        "(<generator>__<id>.mp4) go to one file per generator beside --out "
        "(scores.<generator>.json).",
    )
    add_pairing_arguments(batch, out="where to write scores.json")
    batch.add_argument(
        "--laws",
        nargs="+",
        metavar="LAW",
        help="judge only these laws (of those each prompt lists)",
    )
    batch.add_argument(
        "--metrics",
        nargs="*",
        metavar="METRIC",
        help=f"general metrics to judge (default: {' '.join(GENERAL_METRICS)})",
    )
    add_groups(batch, ("batch",))
    add_cache_options(batch)
    add_judge_options(batch)
    batch.set_defaults(run=run_score_dir)


def _print_prompt(judge: Judge, args: argparse.Namespace) -> None:
    prompt = judge.render(args.caption, law=args.law, metric=args.metric, criteria=args.criteria)
    print(
        "=== system ===",
        terminal_lines(prompt.system),
        "=== user (after the video) ===",
        terminal_lines(prompt.user),
        "=== end of prompt ===",
        sep="\n",
        flush=True,
    )


def run_score(args: argparse.Namespace) -> int:
    from pytest_phyjudge.engine.video import check_video_file, sample_frames

    axis = axis_from(
        law=args.law, metric=args.metric, as_metric="--metric {name}", as_law="--law {name}"
    )
    if args.criteria is not None and args.law is None:
        raise InputError("--criteria replaces a law's criterion; it needs --law, not --metric.")
    check_video_file(args.video)
    settings = judge_settings(args)
    # A clip the judge cannot read fails here, before minutes of loading a model.
    sample_frames(args.video, fps=settings.fps, max_pixels=settings.max_pixels)
    judge = build_judge(settings)
    # A stand-in's line says so itself (a real judge's line is the reference script's).
    notice = warn_if_stand_in(judge.identity.kind)
    stand_in = {} if notice is None else {"stand_in": notice}
    try:
        if args.print_prompt:
            _print_prompt(judge, args)
        try:
            judgment = judge.score(
                args.video, args.caption, law=args.law, metric=args.metric, criteria=args.criteria
            )
        except JudgeOutputError as exc:
            line = {"key": axis, "score": None, "raw": exc.raw, **stand_in}
            print(json.dumps(line), flush=True)
            return fail(f"{exc.reason} The raw reply is in the JSON line above.", EXIT_UNPARSEABLE)
        print(json.dumps({**judgment.cli_line(), **stand_in}), flush=True)
        return EXIT_OK
    finally:
        judge.close()


#: A clip named ``<generator>__<id>.mp4`` is that generator's clip of prompt ``id``.
GENERATOR_SEPARATOR = "__"
#: (prompt, clip) pairs.
Pairs = list[tuple[dict[str, Any], Path]]


def pair_clips(
    folder: Path, prompts: list[dict[str, Any]]
) -> tuple[dict[str | None, Pairs], list[Path]]:
    """The folder's clips paired with their prompts, by generator (None: no generator in the
    name), in the prompt set's order; and the clips that match no prompt."""
    by_id = {p["id"]: p for p in prompts}
    order = {p["id"]: i for i, p in enumerate(prompts)}
    groups: dict[str | None, Pairs] = {}
    stray: list[Path] = []
    for path in sorted(folder.glob("*.mp4")):
        generator, sep, rest = path.stem.partition(GENERATOR_SEPARATOR)
        if path.stem in by_id:
            generator, prompt_id = None, path.stem
        elif sep and rest in by_id and is_case_id(generator):
            # The generator names a results file (scores.<generator>.json) and is printed and
            # stored: a name of letters, digits, '_', '.' and '-' only, like an id. Any other
            # (control characters, bytes that are not UTF-8, nothing) leaves the clip unpaired.
            prompt_id = rest
        else:
            stray.append(path)
            continue
        groups.setdefault(generator, []).append((by_id[prompt_id], path))
    for pairs in groups.values():
        pairs.sort(key=lambda pair: order[pair[0]["id"]])
    return groups, stray


def add_pairing_arguments(parser: argparse.ArgumentParser, *, out: str) -> None:
    """``--videos DIR --prompts SET --out FILE``, as ``paired_clips`` reads them
    (``score-dir`` and ``canary record``)."""
    parser.add_argument("--videos", required=True, help="folder of .mp4 files")
    parser.add_argument("--prompts", required=True, help="PhyGround prompt set (JSON)")
    parser.add_argument("--out", required=True, help=out)


def paired_clips(
    videos: str | Path, prompt_set: str | Path
) -> tuple[list[dict[str, Any]], dict[str | None, Pairs], list[Path]]:
    """``--videos`` and ``--prompts`` read and paired (``score-dir`` and ``canary record``):
    the prompts, the clips paired with them by generator, and the clips that match none. An
    InputError when the folder is none or no clip matches a prompt."""
    from pytest_phyjudge.suites import load_prompt_set

    folder = Path(videos)
    if not folder.is_dir():
        raise InputError(f"--videos {str(folder)!r} is not a folder of .mp4 files.")
    prompts = load_prompt_set(prompt_set)
    groups, stray = pair_clips(folder, prompts)
    if not groups:
        raise InputError(
            f"No video in {str(folder)!r} matches a prompt id of {str(prompt_set)!r}; name the "
            "files <id>.mp4 or <generator>__<id>.mp4 after the prompts' 'video' field."
        )
    return prompts, groups, stray


def results_files(
    out: Path, groups: dict[str | None, Pairs], order: dict[str, int]
) -> list[tuple[str | None, Pairs, Path]]:
    """Where each generator's results go: ``out`` when the clips are one generator's (or
    name none); else one file per generator beside it (``scores.<generator>.json``), as
    PhyGround keeps them, so that each result keeps its generator and no clip is dropped for
    sharing its prompt with another's. Clips named without a generator go to ``out``."""
    if len(groups) == 1:
        ((name, pairs),) = groups.items()
        return [(name, sorted(pairs, key=lambda pair: order[pair[0]["id"]]), out)]
    parts = generator_file_parts([name for name in groups if name is not None])
    return [
        (
            name,
            pairs,
            out if name is None else out.with_name(f"{out.stem}.{parts[name]}{out.suffix}"),
        )
        for name, pairs in sorted(groups.items(), key=lambda item: item[0] or "")
    ]


#: A generator's name that is its own part of a results file name as it is.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


def generator_file_parts(names: list[str]) -> dict[str, str]:
    """Each generator's part of its results file's name (``scores.<part>.json``): its name
    when that is plain (``alpha``; pairing already lists any other clip among those without
    a prompt), else a safe form of it with a hash of the whole name, as for names alike but
    for case, so that no two generators share a file on a disk that ignores case (and a
    caller passing any name gets a safe one). InputError if two still share one."""
    folded: dict[str, int] = {}
    for name in names:
        folded[name.casefold()] = folded.get(name.casefold(), 0) + 1
    parts: dict[str, str] = {}
    for name in names:
        plain = _PLAIN_NAME.fullmatch(name) and folded[name.casefold()] == 1
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        parts[name] = name if plain else f"{file_part(name, 40)}-{digest}"
    taken: dict[str, str] = {}
    for name, part in parts.items():
        other = taken.setdefault(part.casefold(), name)
        if other != name:
            raise InputError(
                f"The clips of generators {terminal_text(repr(other))} and "
                f"{terminal_text(repr(name))} would share one results file "
                f"(scores.{terminal_text(part)}.json); rename one generator's clips."
            )
    return parts


def check_results_files(files: list[tuple[str | None, Pairs, Path]], out: Path) -> None:
    """Refuse, before any clip is judged, a results file (``--out`` itself, or a
    generator's beside it) that exists and is not a results file of ours: a user's file, a
    symlink, a pipe. A results file of an earlier run is replaced (a rerun)."""
    for generator, _pairs, path in files:
        if not is_earlier_results(path):
            raise InputError(
                f"{terminal_text(repr(str(path)))}, where the clips of generator "
                f"{terminal_text(repr(generator))} go, exists and is not a results file "
                "pytest-phyjudge wrote: it is never overwritten. Move it away, or choose "
                "another --out."
            )


def check_out_location(out: Path) -> None:
    """Refuse an ``--out`` that can never be written, before any video is judged: a folder
    in its place, or a regular file where one of its parent folders should be."""
    if out.is_dir():
        raise InputError(
            f"--out {str(out)!r} is a folder; give the path of the JSON file to write, "
            f"e.g. {str(out / 'scores.json')!r}."
        )
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise InputError(
            f"--out {str(out)!r} cannot be written: {str(parent)!r} is a file, not a folder. "
            "Point --out at a file inside a folder you can write to."
        )


def run_score_dir(args: argparse.Namespace) -> int:
    from pytest_phyjudge.cli.batch import BatchRun

    metrics = (
        list(GENERAL_METRICS)
        if args.metrics is None
        else [check_metric(m, as_law="--laws {name}") for m in args.metrics]
    )
    only_laws = (
        None
        if args.laws is None
        else {check_law(law, as_metric="--metrics {name}") for law in args.laws}
    )
    check_out_location(Path(args.out))
    prompts, groups, stray = paired_clips(args.videos, args.prompts)
    run = BatchRun(args, judge_settings(args), metrics, only_laws)
    try:
        order = {prompt["id"]: i for i, prompt in enumerate(prompts)}
        files = results_files(Path(args.out), groups, order)
        check_results_files(files, Path(args.out))
        for generator, pairs, out in files:
            run.judge_all(pairs, out, generator=generator)
    finally:
        run.close()
    if stray:
        names = terminal_text(", ".join(p.name for p in stray))
        print(
            f"videos without a prompt ({len(stray)}): {names} (a clip is named <id>.mp4, or "
            "<generator>__<id>.mp4 with a generator of letters, digits, '_', '.' and '-')",
            file=sys.stderr,
        )
    judged = {prompt["id"] for pairs in groups.values() for prompt, _ in pairs}
    no_video = [p["id"] for p in prompts if p["id"] not in judged]
    if no_video:
        shown = ", ".join(map(terminal_text, no_video[:20])) + (
            " ..." if len(no_video) > 20 else ""
        )
        print(f"prompts without a video ({len(no_video)}): {shown}", file=sys.stderr)
    return EXIT_OK
