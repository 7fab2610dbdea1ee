"""The ``vllm serve`` lines for a merged checkpoint, as plain text: printing them needs no vLLM."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.judges.merge import PROVENANCE_FILE

#: The name the judge is served under (vLLM's ``--served-model-name``, and ``phyjudge serve``'s).
SERVED_MODEL_NAME = "phyjudge"
#: The servers' API key (vLLM's --api-key), read from the environment, never from a flag.
API_KEY_ENV = "PHYJUDGE_API_KEY"
DEFAULT_PORT = 8000
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
) -> list[str]:
    """One replica's ``vllm serve`` arguments: one video per prompt and no images, every
    frame of the clip it is sent kept (the client already sampled it)."""
    argv = [
        "vllm",
        "serve",
        str(folder.resolve()),
        "--served-model-name",
        SERVED_MODEL_NAME,
        "--host",
        host,
        "--port",
        str(port),
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
        line = f"CUDA_VISIBLE_DEVICES={gpus} " + shlex.join(argv)
        if os.environ.get(API_KEY_ENV):  # named, never printed: the shell expands it
            line += f' --api-key "${API_KEY_ENV}"'
        lines.append(line)
    return lines
