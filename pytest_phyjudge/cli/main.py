"""The ``phyjudge`` command: score one video on one axis, like the model's reference script.

Exit codes: 0 scored, 1 a significant regression (``compare --fail-on-regression``), 2 usage
or bad input, 3 the judge's reply holds no score (the raw reply is shown), 4 the judge could
not be loaded, 5 the judge servers gave no answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_phyjudge._exceptions import (
    CacheError,
    InputError,
    JudgeBackendError,
    JudgeLoadError,
    JudgeOutputError,
    PhyJudgeError,
    RubricError,
    VideoError,
)
from pytest_phyjudge.engine.adapter import DEFAULT_ADAPTER
from pytest_phyjudge.engine.axes import GENERAL_METRICS, axis_from, check_law, check_metric
from pytest_phyjudge.engine.judgment import Judgment
from pytest_phyjudge.engine.video import DEFAULT_FPS, DEFAULT_MAX_PIXELS
from pytest_phyjudge.judges.cached import CACHE_MODES
from pytest_phyjudge.judges.loading import SCORING_MODES
from pytest_phyjudge.judges.remote import (
    DEFAULT_CONCURRENCY,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RETRIES,
)
from pytest_phyjudge.judges.server import DEFAULT_MAX_MODEL_LEN, DEFAULT_PORT
from pytest_phyjudge.judges.store import CACHE_DIR_NAME
from pytest_phyjudge.plugin.state import (
    parse_count,
    parse_number,
    parse_positive_float,
    parse_positive_int,
)

if TYPE_CHECKING:
    from pytest_phyjudge.judges.base import Judge
    from pytest_phyjudge.judges.loading import JudgePlan
    from pytest_phyjudge.judges.remote import RemotePlan

#: Where judgments are kept when no folder is given: the one pytest uses from this folder.
DEFAULT_CACHE_DIR = f".pytest_cache/d/{CACHE_DIR_NAME}"

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_UNPARSEABLE, EXIT_LOAD, EXIT_BACKEND = 0, 1, 2, 3, 4, 5


def _confidence(text: str) -> float:
    return parse_number(text, float, lambda v: 0 < v < 1, "a confidence in (0, 1), e.g. 0.95")


def _add_judge_options(parser: argparse.ArgumentParser, *, servers: bool = True) -> None:
    """The judge's options; ``servers``: also those of judging on servers (--url ...)."""
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
        type=parse_positive_float,
        default=DEFAULT_FPS,
        help=f"frames sampled per second (default: {DEFAULT_FPS})",
    )
    group.add_argument(
        "--max-pixels",
        type=parse_positive_int,
        default=DEFAULT_MAX_PIXELS,
        help=f"pixels per sampled frame at most (default: {DEFAULT_MAX_PIXELS})",
    )
    group.add_argument(
        "--max-new-tokens",
        type=parse_positive_int,
        default=64,
        help="tokens generated at most (default: 64)",
    )
    group.add_argument(
        "--scoring",
        choices=SCORING_MODES,
        default="greedy",
        help="greedy (the reference) or distribution (probabilities of the digits 1-5)",
    )
    if not servers:
        return
    remote = parser.add_argument_group("judge servers (instead of a model in this process)")
    remote.add_argument(
        "--url",
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
        help=f"seconds to wait for a reply (default: {DEFAULT_READ_TIMEOUT:.0f})",
    )
    remote.add_argument(
        "--retries",
        type=parse_count,
        default=DEFAULT_RETRIES,
        help=f"retries of a failed request (default: {DEFAULT_RETRIES})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phyjudge",
        description="Score generated videos for physical plausibility with PhyJudge-9B.",
        epilog="Exit codes: 0 ok, 1 significant regression (compare --fail-on-regression), "
        "2 usage or bad input, 3 unparseable judge reply, 4 judge could not be loaded, "
        "5 judge servers gave no answer.",
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

    batch = commands.add_parser(
        "score-dir",
        help="judge every video of a folder against a PhyGround prompt set; write scores.json",
        description="Pair DIR/<id>.mp4 (or DIR/<generator>__<id>.mp4) with the prompts of a "
        "PhyGround prompt set, judge each pair on the general metrics and its laws through the "
        "judgment cache, and write PhyGround's scores.json. Re-running resumes: judgments "
        "already made come from the cache.",
    )
    batch.add_argument("--videos", required=True, help="folder of .mp4 files")
    batch.add_argument("--prompts", required=True, help="PhyGround prompt set (JSON)")
    batch.add_argument("--out", required=True, help="where to write scores.json")
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
    _add_cache_options(batch)
    _add_judge_options(batch)

    merge = commands.add_parser(
        "merge",
        help="fold the LoRA into its base for serving (e.g. with vLLM)",
        description="Merge the adapter into its base model and write a plain safetensors "
        "checkpoint with its processor, chat template, generation config, rubric files and a "
        "provenance file.",
    )
    merge.add_argument("--adapter-dir", default=DEFAULT_ADAPTER, help="adapter folder or hub id")
    merge.add_argument("--revision", help="hub revision of the adapter")
    merge.add_argument("--base-model", help="override the adapter config's base model")
    merge.add_argument("--out", required=True, help="new folder for the merged checkpoint")
    merge.add_argument(
        "--dtype",
        choices=("bfloat16", "float16", "float32"),
        default="bfloat16",
        help="dtype to merge and save in (default: bfloat16)",
    )

    serve_command = commands.add_parser(
        "serve-command",
        help="print the vllm serve line(s) for a merged checkpoint",
        description="Print one 'vllm serve' line per replica for the checkpoint 'phyjudge "
        "merge' wrote, and the pytest line that uses them.",
    )
    serve_command.add_argument("--model", required=True, help="the merged checkpoint folder")
    serve_command.add_argument(
        "--replicas", type=parse_positive_int, default=1, help="servers, one port each (default: 1)"
    )
    serve_command.add_argument(
        "--tensor-parallel",
        type=parse_positive_int,
        default=1,
        help="GPUs per server (default: 1)",
    )
    serve_command.add_argument(
        "--port", type=parse_positive_int, default=DEFAULT_PORT, help="port of the first server"
    )
    serve_command.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve_command.add_argument(
        "--max-model-len",
        type=parse_positive_int,
        default=DEFAULT_MAX_MODEL_LEN,
        help=f"context length (default: {DEFAULT_MAX_MODEL_LEN})",
    )
    serve_command.add_argument(
        "--media-root", help="folder the servers may read videos from (file:// URLs)"
    )

    serve = commands.add_parser(
        "serve",
        help="serve the judge of this process over HTTP (OpenAI-compatible, one at a time)",
        description="Load the judge here and answer /v1/chat/completions like vLLM does, one "
        "request at a time: one GPU shared by many pytest-xdist workers. For throughput, "
        "serve the merged checkpoint with vLLM (see serve-command).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free one)")
    serve.add_argument("--media-root", help="folder clients may name with file:// URLs")
    _add_judge_options(serve, servers=False)

    comparison = commands.add_parser(
        "compare",
        help="compare two scores.json reports axis by axis (e.g. two generator versions)",
        description="Pair the cases two scores.json reports share; print per-axis means, the "
        "mean paired delta B - A with its bootstrap interval and a sign-flip permutation "
        "test, and flag significant regressions.",
    )
    comparison.add_argument("a", metavar="A.json", help="the reference report (the old version)")
    comparison.add_argument("b", metavar="B.json", help="the report to check (the new one)")
    comparison.add_argument(
        "--confidence",
        type=_confidence,
        default=0.95,
        help="level of the intervals; a regression needs p < 1 - confidence (default: 0.95)",
    )
    comparison.add_argument(
        "--fail-on-regression",
        action="store_true",
        help=f"exit with {EXIT_REGRESSION} when an axis regresses significantly",
    )
    comparison.add_argument("--plot", metavar="PNG", help="write a chart of the per-axis means")

    cache = commands.add_parser("cache", help="move recorded judgments between machines")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    export = cache_commands.add_parser("export", help="write every judgment as JSON lines")
    export.add_argument("file", help="output .jsonl file ('-' for standard output)")
    importer = cache_commands.add_parser("import", help="add the judgments of a .jsonl file")
    importer.add_argument("file", help="a file written by 'phyjudge cache export'")
    info = cache_commands.add_parser("info", help="where the cache is and what it holds")
    for sub in (export, importer, info):
        _add_cache_dir(sub)
    return parser


def _add_cache_dir(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--cache",
        default=DEFAULT_CACHE_DIR,
        help=f"cache folder (default: {DEFAULT_CACHE_DIR}, the one pytest uses from here)",
    )


def _add_cache_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("judgment cache")
    _add_cache_dir(group)
    group.add_argument(
        "--cache-mode",
        choices=CACHE_MODES,
        default="use",
        help="use (default), refresh, off, or only (replay: no model is loaded)",
    )


def _fail(message: str, code: int) -> int:
    print(f"phyjudge: error: {message}", file=sys.stderr)
    return code


def _plan(args: argparse.Namespace) -> JudgePlan | RemotePlan:
    from pytest_phyjudge.judges.loading import plan_judge

    if getattr(args, "url", None):
        from pytest_phyjudge.judges.remote import parse_media_root, plan_remote

        return plan_remote(
            args.url,
            identity=args.remote_identity,
            scoring=args.scoring,
            fps=args.fps,
            max_pixels=args.max_pixels,
            concurrency=args.concurrency,
            read_timeout=args.timeout,
            retries=args.retries,
            media_root=None if args.media_root is None else parse_media_root(args.media_root),
        )
    return plan_judge(
        args.adapter_dir,
        revision=args.revision,
        base_model=args.base_model,
        fps=args.fps,
        max_pixels=args.max_pixels,
        max_new_tokens=args.max_new_tokens,
        scoring=args.scoring,
    )


def _load(plan: JudgePlan | RemotePlan, args: argparse.Namespace) -> Judge:
    from pytest_phyjudge.judges.remote import RemotePlan

    if isinstance(plan, RemotePlan):
        return plan.load()
    return plan.load(
        device=args.device, dtype=args.dtype, attn_implementation=args.attn_implementation
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    from pytest_phyjudge.judges.loading import JudgePlan
    from pytest_phyjudge.judges.server import JudgeServer

    plan = _plan(args)
    assert isinstance(plan, JudgePlan)
    judge = _load(plan, args)
    from pytest_phyjudge.judges.remote import API_KEY_ENV

    server = JudgeServer(
        judge,
        host=args.host,
        port=args.port,
        media_root=args.media_root,
        api_key=os.environ.get(API_KEY_ENV) or None,
    )
    print(
        f"serving {judge.identity.describe()} at {server.url} (Ctrl-C stops); use it with: "
        f"pytest --phyjudge-url {server.url}",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.stop()
        judge.close()
    return EXIT_OK  # pragma: no cover - serve_forever returns only on shutdown


def _cmd_serve_command(args: argparse.Namespace) -> int:
    from pytest_phyjudge.judges.server import vllm_serve_commands

    lines = vllm_serve_commands(
        args.model,
        replicas=args.replicas,
        tensor_parallel=args.tensor_parallel,
        port=args.port,
        host=args.host,
        max_model_len=args.max_model_len,
        media_root=args.media_root,
    )
    for line in lines:
        print(line)
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    urls = ",".join(f"http://{host}:{args.port + i}" for i in range(args.replicas))
    media = f" --phyjudge-media-root {args.media_root}" if args.media_root else ""
    print(f"# then, once they answer {urls.split(',')[0]}/v1/models:")
    print(f"# pytest --phyjudge-url {urls}{media} -n {4 * args.replicas}")
    return EXIT_OK


def _cmd_score(args: argparse.Namespace) -> int:
    from pytest_phyjudge.engine.video import check_video_file, sample_frames

    axis = axis_from(law=args.law, metric=args.metric)
    if args.criteria is not None and args.law is None:
        raise InputError("--criteria replaces a law's criterion; it needs --law, not --metric.")
    check_video_file(args.video)
    sample_frames(args.video, fps=args.fps, max_pixels=args.max_pixels)  # bad clips fail fast
    judge = _load(_plan(args), args)
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


def _video_ids(folder: Path) -> dict[str, Path]:
    """Videos by prompt id: the file stem, or what follows ``<generator>__`` in it."""
    ids: dict[str, Path] = {}
    for path in sorted(folder.glob("*.mp4")):
        ids.setdefault(path.stem, path)
        if "__" in path.stem:
            ids.setdefault(path.stem.split("__", 1)[1], path)
    return ids


def _cmd_score_dir(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pytest_phyjudge.judges.cached import CachedJudge
    from pytest_phyjudge.judges.store import JudgmentCache
    from pytest_phyjudge.reporting.scores import VideoResult, build_scores, write_json_atomic
    from pytest_phyjudge.suites.suite import load_prompt_set

    folder = Path(args.videos)
    if not folder.is_dir():
        raise InputError(f"--videos {str(folder)!r} is not a folder of .mp4 files.")
    prompts = load_prompt_set(args.prompts)
    metrics = (
        list(GENERAL_METRICS) if args.metrics is None else [check_metric(m) for m in args.metrics]
    )
    only_laws = None if args.laws is None else {check_law(law) for law in args.laws}
    videos = _video_ids(folder)
    paired = [(p, videos[p["id"]]) for p in prompts if p["id"] in videos]
    used = {path for _, path in paired}
    no_prompt = sorted({p.name for p in videos.values() if p not in used})
    no_video = [p["id"] for p in prompts if p["id"] not in videos]
    if not paired:
        raise InputError(
            f"No video in {str(folder)!r} matches a prompt id of {args.prompts!r}; name the "
            "files <id>.mp4 or <generator>__<id>.mp4 after the prompts' 'video' field."
        )

    plan = _plan(args)
    judge = CachedJudge(
        identity=plan.identity,
        rubric=plan.rubric,
        settings=plan.settings,
        cache=JudgmentCache(args.cache),
        mode=args.cache_mode,
        load=lambda: _load(plan, args),
    )
    meta = {
        "judge": plan.identity.to_dict(),
        "settings": dict(plan.settings),
        "prompts": str(args.prompts),
        "videos": str(folder),
        "rubric_calibrated": plan.rubric.calibrated,
    }
    results: list[VideoResult] = []
    failed_axes = 0
    started = time.monotonic()
    judged = 0

    def judge_one(pair: tuple[dict, Path]) -> VideoResult:
        prompt, path = pair
        laws = [law for law in prompt["laws"] if only_laws is None or law in only_laws]
        result = VideoResult(
            video=prompt["id"],
            prompt=prompt["prompt"],
            physical_laws=laws,
            extra={"file": str(path)},
        )
        try:
            result.outcomes.update(judge.score_many(path, prompt["prompt"], metrics + laws))
        except VideoError as exc:
            result.outcomes.update({axis: exc for axis in metrics + laws})
        return result

    # Against judge servers, several videos are in flight (their axes already run
    # concurrently), enough to keep --concurrency requests going; a local model takes
    # one video at a time. Results come back, and are written, in the prompt set's order.
    in_flight = 1
    if getattr(args, "url", None):
        axes_per_video = max(1, len(metrics) + max((len(p["laws"]) for p, _ in paired), default=0))
        in_flight = max(1, -(-args.concurrency // axes_per_video))
    pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="phyjudge-video")
    bar = tqdm(
        pool.map(judge_one, paired),
        total=len(paired),
        unit="video",
        desc="judging",
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        for result in bar:
            failed_axes += sum(not isinstance(o, Judgment) for o in result.outcomes.values())
            judged += len(result.outcomes)
            results.append(result)
            write_json_atomic(args.out, build_scores(results, meta))  # resumable at any point
            minutes = max(time.monotonic() - started, 1e-9) / 60
            bar.set_postfix(
                judgments_per_min=f"{judged / minutes:.0f}",
                cache_hits=judge.stats.hits,
                failed=failed_axes,
            )
    finally:
        bar.close()
        pool.shutdown(wait=True, cancel_futures=True)
        judge.close()
    print(
        f"wrote {args.out}: {len(results)} videos, {judged} judgments "
        f"({judge.stats.hits} from the cache, {failed_axes} failed)",
        file=sys.stderr,
    )
    if no_prompt:
        print(
            f"videos without a prompt ({len(no_prompt)}): {', '.join(no_prompt)}", file=sys.stderr
        )
    if no_video:
        shown = ", ".join(no_video[:20]) + (" ..." if len(no_video) > 20 else "")
        print(f"prompts without a video ({len(no_video)}): {shown}", file=sys.stderr)
    return EXIT_OK


def _cmd_cache(args: argparse.Namespace) -> int:
    from pytest_phyjudge.judges.store import JudgmentCache

    cache = JudgmentCache(args.cache)
    try:
        if args.cache_command == "export":
            if args.file == "-":
                count = cache.export_jsonl(sys.stdout)
            else:
                with open(args.file, "w", encoding="utf-8") as out:
                    count = cache.export_jsonl(out)
            print(f"exported {count} judgments from {cache.path}", file=sys.stderr)
        elif args.cache_command == "import":
            try:
                with open(args.file, encoding="utf-8") as lines:
                    count = cache.import_jsonl(lines, source=args.file)
            except OSError as exc:
                raise InputError(f"Cannot read {args.file!r} ({exc.strerror}).") from exc
            print(f"imported {count} judgments into {cache.path}", file=sys.stderr)
        else:
            print(f"{cache.path}: {len(cache)} judgments")
    finally:
        cache.close()
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from pytest_phyjudge.regression.compare import compare, read_report, table_lines, write_chart

    comparison = compare(read_report(args.a), read_report(args.b), confidence=args.confidence)
    print("\n".join(table_lines(comparison)), flush=True)
    if args.plot:
        try:
            chart = write_chart(comparison, args.plot)
        except OSError as exc:
            raise InputError(f"Cannot write the chart {args.plot!r} ({exc}).") from exc
        print(f"chart: {chart}", flush=True)
    if args.fail_on_regression and comparison.regressions:
        return EXIT_REGRESSION
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "score":
            return _cmd_score(args)
        if args.command == "score-dir":
            return _cmd_score_dir(args)
        if args.command == "cache":
            return _cmd_cache(args)
        if args.command == "compare":
            return _cmd_compare(args)
        if args.command == "serve-command":
            return _cmd_serve_command(args)
        if args.command == "serve":
            return _cmd_serve(args)
        if args.command == "merge":
            from pytest_phyjudge.engine.merge import merge_adapter

            out = merge_adapter(
                args.adapter_dir,
                args.out,
                revision=args.revision,
                base_model=args.base_model,
                dtype=args.dtype,
            )
            print(f"merged checkpoint written to {out}", file=sys.stderr)
            return EXIT_OK
    except (InputError, RubricError, CacheError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except JudgeLoadError as exc:
        return _fail(str(exc), EXIT_LOAD)
    except JudgeBackendError as exc:
        return _fail(str(exc), EXIT_BACKEND)
    except PhyJudgeError as exc:  # pragma: no cover - every subclass is handled above
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    return EXIT_USAGE  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    sys.exit(main())
