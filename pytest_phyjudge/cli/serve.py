"""``phyjudge merge``, ``serve-command`` and ``serve``: from an adapter to a served judge."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.cli.arguments import add_judge_options, judge_settings, warn_if_stand_in
from pytest_phyjudge.cli.exits import EXIT_OK
from pytest_phyjudge.deploy.vllm import (
    DEFAULT_DATA_PARALLEL_RPC_PORT,
    DEFAULT_MAX_MODEL_LEN,
    DEFAULT_PORT,
    LOOPBACK_ADDRESSES,
    WILDCARD_ADDRESSES,
)
from pytest_phyjudge.judges.settings import (
    DEFAULT_ADAPTER,
    parse_listen_port,
    parse_port,
    parse_positive_int,
)


def add_commands(commands: Any) -> None:
    _add_merge(commands)
    _add_serve_command(commands)
    _add_serve(commands)


def _add_merge(commands: Any) -> None:
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


def _add_serve_command(commands: Any) -> None:
    lines = commands.add_parser(
        "serve-command",
        help="print the vllm serve line(s) for a merged checkpoint",
        description="Print the 'vllm serve' line(s) for the checkpoint 'phyjudge merge' wrote, "
        "and the pytest line that uses them. By default one endpoint: vLLM balances its "
        "--data-parallel engines itself, on one node or (--nodes) on several. --replicas "
        "prints separate servers, one port each, instead. Every line serves the model as "
        "'phyjudge' (--served-model-name phyjudge), one video per prompt and no images "
        "(--limit-mm-per-prompt), every frame it is sent kept, since the client already "
        "sampled them (--media-io-kwargs), and --generation-config vllm: vLLM's defaults "
        "for what a request leaves unset, not the checkpoint's sampling defaults.",
    )
    lines.add_argument("--model", required=True, help="the merged checkpoint folder")
    lines.add_argument(
        "--data-parallel",
        type=parse_positive_int,
        help="engines behind one endpoint, over all nodes (vLLM's --data-parallel-size; "
        "default: 1)",
    )
    lines.add_argument(
        "--nodes",
        type=parse_positive_int,
        help="machines the --data-parallel engines are spread over (default: 1)",
    )
    lines.add_argument(
        "--address", help="with --nodes: the head node's address the other nodes can reach"
    )
    lines.add_argument(
        "--rpc-port",
        type=parse_positive_int,
        default=DEFAULT_DATA_PARALLEL_RPC_PORT,
        help=f"with --nodes: the head node's data-parallel RPC port "
        f"(default: {DEFAULT_DATA_PARALLEL_RPC_PORT})",
    )
    lines.add_argument(
        "--replicas",
        type=parse_positive_int,
        help="separate servers, one port each, instead of one data-parallel endpoint",
    )
    lines.add_argument(
        "--tensor-parallel",
        type=parse_positive_int,
        default=1,
        help="GPUs per engine or server (default: 1)",
    )
    lines.add_argument(
        "--port", type=parse_port, default=DEFAULT_PORT, help="port of the (first) server"
    )
    lines.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0: every "
        "address, and the pytest line says HOST for you to fill in)",
    )
    lines.add_argument(
        "--max-model-len",
        type=parse_positive_int,
        default=DEFAULT_MAX_MODEL_LEN,
        help=f"context length (default: {DEFAULT_MAX_MODEL_LEN})",
    )
    lines.add_argument("--media-root", help="folder the servers may read videos from (file://)")
    lines.set_defaults(run=run_serve_command)


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the judge of this process over HTTP (OpenAI-compatible, one at a time)",
        description="Load the judge here and answer /v1/chat/completions like vLLM does, one "
        "request at a time: one GPU shared by many pytest-xdist workers. For throughput, "
        "serve the merged checkpoint with vLLM (see serve-command).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument(
        "--port", type=parse_listen_port, default=DEFAULT_PORT, help="port (0: any free one)"
    )
    serve.add_argument("--media-root", help="folder clients may name with file:// URLs")
    add_judge_options(serve, servers=False)
    serve.set_defaults(run=run_serve)


def run_merge(args: argparse.Namespace) -> int:
    from pytest_phyjudge.deploy.merge import merge_adapter

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
    from pytest_phyjudge.deploy.vllm import vllm_data_parallel_commands, vllm_serve_commands

    common = {
        "tensor_parallel": args.tensor_parallel,
        "port": args.port,
        "host": args.host,
        "max_model_len": args.max_model_len,
        "media_root": args.media_root,
    }
    nodes = args.nodes or 1
    if args.replicas is not None:
        mixed = [
            f
            for f, v in (
                ("--data-parallel", args.data_parallel),
                ("--nodes", args.nodes),
                ("--address", args.address),
            )
            if v is not None
        ]
        if mixed:
            raise InputError(
                "--replicas prints separate endpoints, one port each, but with "
                f"{' and '.join(mixed)} vLLM serves one endpoint and balances it itself. "
                "Use --replicas N alone for "
                "separate servers, or --data-parallel N (with --nodes and --address across "
                "machines) for one endpoint."
            )
        lines = vllm_serve_commands(args.model, replicas=args.replicas, **common)
        servers = args.replicas
        ports = [args.port + i for i in range(servers)]
    else:
        if args.nodes is not None and args.data_parallel is None:
            raise InputError(
                f"--nodes {args.nodes} spreads data-parallel engines over machines: add "
                f"--data-parallel N, the engines over all nodes (a multiple of {args.nodes})."
            )
        lines = vllm_data_parallel_commands(
            args.model,
            data_parallel=args.data_parallel or 1,
            nodes=nodes,
            address=args.address,
            rpc_port=args.rpc_port,
            **common,
        )
        servers = args.data_parallel or 1
        ports = [args.port]
    for line in lines:
        print(line)
    if nodes > 1:
        print(
            f"# run the first line on the head node ({args.address}), each further line on "
            "one more node; only the head node answers HTTP"
        )
    host, notes = _client_host(args.host, head=args.address if nodes > 1 else None)
    urls = [f"http://{host}:{port}" for port in ports]
    media = f" --phyjudge-media-root {args.media_root}" if args.media_root else ""
    for note in notes:
        print(f"# {note}")
    answer = (
        f"it answers {urls[0]}/v1/models"
        if len(urls) == 1
        else (f"each of {', '.join(urls)} answers /v1/models")
    )
    print(f"# then, once {answer}:")
    print(f"# pytest --phyjudge-url {','.join(urls)}{media} -n {4 * servers}")
    return EXIT_OK


def _client_host(listen: str, *, head: str | None) -> tuple[str, list[str]]:
    """The host a pytest machine puts in ``--phyjudge-url`` for servers listening on
    ``listen`` (on the ``head`` node of several), and notes on where that URL works. A
    wildcard listens on every address of the machine but is none a client can dial: the
    suggestion names the head node when it is known, else a placeholder to fill in, never
    127.0.0.1, which reaches the server only from its own machine."""
    if listen in WILDCARD_ADDRESSES:
        if head is not None:
            return _url_host(head), []
        return "HOST", [
            f"HOST: this machine's address as the pytest machine reaches it (--host {listen} "
            "listens on all of them; 127.0.0.1 works on this machine itself)"
        ]
    notes = []
    if head is not None and listen in LOOPBACK_ADDRESSES:
        notes.append(
            f"--host {listen} answers only on the head node: run pytest there, or serve with "
            "--host 0.0.0.0 for other machines"
        )
    return _url_host(listen), notes


def _url_host(host: str) -> str:
    """``host`` as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def run_serve(args: argparse.Namespace) -> int:
    from pytest_phyjudge.deploy.server import JudgeServer
    from pytest_phyjudge.judges.factory import build_judge
    from pytest_phyjudge.judges.remote.contract import API_KEY_ENV

    judge = build_judge(judge_settings(args))
    warn_if_stand_in(judge.identity.kind)
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
