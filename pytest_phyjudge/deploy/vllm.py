"""The ``vllm serve`` lines for a merged checkpoint, as plain text: printing them needs no vLLM."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.judges.remote.contract import API_KEY_ENV, PROVENANCE_FILE, SERVED_MODEL_NAME

DEFAULT_PORT = 8000
#: vLLM's own default --data-parallel-rpc-port, printed so every node names the same one.
DEFAULT_DATA_PARALLEL_RPC_PORT = 29550
#: Addresses a server may listen on but no other node can dial.
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
#: Addresses only the serving machine itself can dial.
LOOPBACK_ADDRESSES = ("127.0.0.1", "localhost", "::1")
MAX_PORT = 65535
#: Enough for about a minute of video at 2 fps and 360x640, the prompt and the reply.
DEFAULT_MAX_MODEL_LEN = 32768


def check_merged_checkpoint(folder: Path) -> None:
    """Refuse what vLLM cannot serve as the judge: an adapter, or a folder that is not a
    checkpoint written by ``phyjudge merge``."""
    if (folder / "adapter_config.json").is_file():
        raise InputError(
            f"{str(folder)!r} is a LoRA adapter; vLLM cannot serve it on Qwen3.5's packed "
            "projections. Merge it first: phyjudge merge --adapter-dir "
            f"{shlex.quote(str(folder))} --out merged/, then serve merged/."
        )
    if not (folder / "config.json").is_file():
        raise InputError(
            f"{str(folder)!r} holds no config.json: give the folder that 'phyjudge merge' "
            "wrote (the merged checkpoint)."
        )
    if not (folder / PROVENANCE_FILE).is_file():
        raise InputError(
            f"{str(folder)!r} has no {PROVENANCE_FILE}, so clients could not tell which judge "
            "it is; serve a checkpoint written by 'phyjudge merge'."
        )


def vllm_serve_argv(
    folder: Path,
    *,
    port: int,
    host: str,
    tensor_parallel: int,
    max_model_len: int,
    media_root: str | Path | None,
    listen: bool = True,
) -> list[str]:
    """One server's ``vllm serve`` arguments: one video per prompt and no images, every
    frame of the clip it is sent kept (the client already sampled it). ``listen=False``
    leaves out the address and port, for a headless node that runs no API server."""
    argv = ["vllm", "serve", str(folder.resolve()), "--served-model-name", SERVED_MODEL_NAME]
    if listen:
        argv += ["--host", host, "--port", str(port)]
    argv += [
        "--tensor-parallel-size",
        str(tensor_parallel),
        "--max-model-len",
        str(max_model_len),
        "--limit-mm-per-prompt",
        json.dumps({"image": 0, "video": 1}),
        "--media-io-kwargs",
        json.dumps({"video": {"num_frames": -1}}),
        "--generation-config",
        "vllm",
    ]
    if media_root is not None:
        argv += ["--allowed-local-media-path", str(Path(media_root).resolve())]
    return argv


def vllm_serve_commands(
    model: str | Path,
    *,
    replicas: int = 1,
    tensor_parallel: int = 1,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    max_model_len: int = DEFAULT_MAX_MODEL_LEN,
    media_root: str | Path | None = None,
) -> list[str]:
    """One ``vllm serve`` line per replica for the merged checkpoint in ``model``.

    Replica ``i`` listens on ``port + i`` and owns GPUs ``i*tp .. i*tp + tp - 1``. Each
    accepts one video per prompt (no images), keeps every frame of the clip it is sent
    (the client already sampled it), and, with ``media_root``, may read videos from there.
    """
    folder = Path(model)
    check_merged_checkpoint(folder)
    if replicas < 1 or tensor_parallel < 1:
        raise InputError("--replicas and --tensor-parallel must be at least 1.")
    check_port(port + replicas - 1, f"--port {port} with --replicas {replicas} (one port each)")
    lines = []
    for i in range(replicas):
        gpus = ",".join(str(g) for g in range(i * tensor_parallel, (i + 1) * tensor_parallel))
        argv = vllm_serve_argv(
            folder,
            port=port + i,
            host=host,
            tensor_parallel=tensor_parallel,
            max_model_len=max_model_len,
            media_root=media_root,
        )
        lines.append(_with_api_key(f"CUDA_VISIBLE_DEVICES={gpus} " + shlex.join(argv)))
    return lines


def _with_api_key(line: str) -> str:
    if os.environ.get(API_KEY_ENV):  # named, never printed: the shell expands it
        line += f' --api-key "${API_KEY_ENV}"'
    return line


def check_port(port: int, what: str) -> None:
    if not 1 <= port <= MAX_PORT:
        raise InputError(
            f"{what} needs port {port}, but a port is a number from 1 to {MAX_PORT}; "
            "choose a smaller one."
        )


def vllm_data_parallel_commands(
    model: str | Path,
    *,
    data_parallel: int = 1,
    nodes: int = 1,
    address: str | None = None,
    rpc_port: int = DEFAULT_DATA_PARALLEL_RPC_PORT,
    tensor_parallel: int = 1,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    max_model_len: int = DEFAULT_MAX_MODEL_LEN,
    media_root: str | Path | None = None,
) -> list[str]:
    """The ``vllm serve`` lines of one endpoint that vLLM balances over ``data_parallel``
    engines of ``tensor_parallel`` GPUs each, spread evenly over ``nodes`` machines.

    The first line is the head node: it runs the API server on ``host:port`` and its share
    of the ranks. Each further line is one more node, ``--headless`` (engines only), which
    joins the head at ``address:rpc_port`` and owns the ranks from its start rank on.
    """
    folder = Path(model)
    check_merged_checkpoint(folder)
    if data_parallel < 1 or nodes < 1 or tensor_parallel < 1:
        raise InputError("--data-parallel, --nodes and --tensor-parallel must be at least 1.")
    check_port(port, f"--port {port}")
    check_port(rpc_port, f"--rpc-port {rpc_port}")
    if nodes == 1 and address is not None:
        raise InputError(
            f"--address {address} is used only with --nodes 2 or more: it is where the other "
            "nodes reach the head node. Leave it out for one machine, or add --nodes N."
        )
    if nodes > 1:
        if address is None:
            raise InputError(
                f"--nodes {nodes} needs --address HOST: the head node's address that the "
                "other nodes can reach (vLLM's --data-parallel-address)."
            )
        if any(c.isspace() or not c.isprintable() for c in address):
            raise InputError(
                f"--address {address!r} holds spaces or control characters; give the head "
                "node's IP address or host name alone."
            )
        if address in WILDCARD_ADDRESSES:
            raise InputError(
                f"--address {address!r} is a listening wildcard, not an address the other "
                "nodes can reach the head node at; give the head node's IP address or name."
            )
        if data_parallel % nodes:
            raise InputError(
                f"--data-parallel {data_parallel} does not divide evenly over --nodes {nodes}: "
                "each node runs the same number of ranks, so give a multiple of --nodes "
                f"(e.g. --data-parallel {nodes * max(1, data_parallel // nodes)})."
            )
    local = data_parallel // nodes
    lines = []
    for node in range(nodes):
        argv = vllm_serve_argv(
            folder,
            port=port,
            host=host,
            tensor_parallel=tensor_parallel,
            max_model_len=max_model_len,
            media_root=media_root,
            listen=node == 0,
        )
        if node > 0:
            argv.append("--headless")
        if data_parallel > 1:
            argv += ["--data-parallel-size", str(data_parallel)]
        if nodes > 1:
            argv += ["--data-parallel-size-local", str(local)]
            if node > 0:
                argv += ["--data-parallel-start-rank", str(node * local)]
            argv += ["--data-parallel-address", str(address), "--data-parallel-rpc-port"]
            argv.append(str(rpc_port))
        line = shlex.join(argv)
        lines.append(_with_api_key(line) if node == 0 else line)
    return lines
