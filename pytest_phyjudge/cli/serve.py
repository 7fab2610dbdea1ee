"""``phyjudge merge``, ``serve-command`` and ``serve``: from an adapter to a served judge."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from pytest_phyjudge.cli.arguments import add_judge_options, judge_settings
from pytest_phyjudge.cli.exits import EXIT_OK
from pytest_phyjudge.judges.settings import DEFAULT_ADAPTER, parse_positive_int
from pytest_phyjudge.judges.vllm import DEFAULT_MAX_MODEL_LEN, DEFAULT_PORT


def add_commands(commands: Any) -> None:
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
    merge.set_defaults(run=run_merge)

    lines = commands.add_parser(
        "serve-command",
        help="print the vllm serve line(s) for a merged checkpoint",
        description="Print one 'vllm serve' line per replica for the checkpoint 'phyjudge "
        "merge' wrote, and the pytest line that uses them.",
    )
    lines.add_argument("--model", required=True, help="the merged checkpoint folder")
    lines.add_argument(
        "--replicas", type=parse_positive_int, default=1, help="servers, one port each (default: 1)"
    )
    lines.add_argument(
        "--tensor-parallel", type=parse_positive_int, default=1, help="GPUs per server (default: 1)"
    )
    lines.add_argument(
        "--port", type=parse_positive_int, default=DEFAULT_PORT, help="port of the first server"
    )
    lines.add_argument("--host", default="127.0.0.1", help="address to listen on")
    lines.add_argument(
        "--max-model-len",
        type=parse_positive_int,
        default=DEFAULT_MAX_MODEL_LEN,
        help=f"context length (default: {DEFAULT_MAX_MODEL_LEN})",
    )
    lines.add_argument("--media-root", help="folder the servers may read videos from (file://)")
    lines.set_defaults(run=run_serve_command)

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
    add_judge_options(serve, servers=False)
    serve.set_defaults(run=run_serve)


def run_merge(args: argparse.Namespace) -> int:
    from pytest_phyjudge.judges.merge import merge_adapter

    out = merge_adapter(
        args.adapter_dir,
        args.out,
        revision=args.revision,
        base_model=args.base_model,
        dtype=args.dtype,
    )
    print(f"merged checkpoint written to {out}", file=sys.stderr)
    return EXIT_OK


def run_serve_command(args: argparse.Namespace) -> int:
    from pytest_phyjudge.judges.vllm import vllm_serve_commands

    for line in vllm_serve_commands(
        args.model,
        replicas=args.replicas,
        tensor_parallel=args.tensor_parallel,
        port=args.port,
        host=args.host,
        max_model_len=args.max_model_len,
        media_root=args.media_root,
    ):
        print(line)
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    urls = ",".join(f"http://{host}:{args.port + i}" for i in range(args.replicas))
    media = f" --phyjudge-media-root {args.media_root}" if args.media_root else ""
    print(f"# then, once they answer {urls.split(',')[0]}/v1/models:")
    print(f"# pytest --phyjudge-url {urls}{media} -n {4 * args.replicas}")
    return EXIT_OK


def run_serve(args: argparse.Namespace) -> int:
    from pytest_phyjudge.judges.factory import build_judge
    from pytest_phyjudge.judges.server import JudgeServer
    from pytest_phyjudge.judges.vllm import API_KEY_ENV

    judge = build_judge(judge_settings(args))
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
