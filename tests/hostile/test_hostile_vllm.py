"""serve-command on vLLM's own data parallelism (issue 11, class 5): one endpoint for many
GPUs, a head node and headless nodes across machines, and the mixes it must refuse."""

from __future__ import annotations

import json
import shlex

import pytest
from test_cli import run_cli


def _split(line: str) -> tuple[list[str], dict[str, str], set[str]]:
    """The argv of a ``vllm serve`` line, its valued flags, and its bare flags."""
    argv = shlex.split(line)
    assert argv[:2] == ["vllm", "serve"], line
    flags: dict[str, str] = {}
    bare: set[str] = set()
    rest = argv[3:]
    while rest:
        name, *rest = rest
        if rest and not rest[0].startswith("--"):
            flags[name], *rest = rest
        else:
            bare.add(name)
    return argv, flags, bare


def _serve_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("vllm serve")]


def test_data_parallel_on_one_node_is_one_endpoint(capsys, merged_dir):
    code, out, err = run_cli(
        capsys,
        "serve-command",
        "--model",
        str(merged_dir),
        "--data-parallel",
        "4",
        "--tensor-parallel",
        "2",
        "--port",
        "9000",
    )
    assert code == 0, err
    (line,) = _serve_lines(out)
    argv, flags, bare = _split(line)
    assert argv[2] == str(merged_dir.resolve())
    assert flags["--data-parallel-size"] == "4"
    assert flags["--tensor-parallel-size"] == "2"
    assert flags["--port"] == "9000" and flags["--served-model-name"] == "phyjudge"
    assert json.loads(flags["--limit-mm-per-prompt"]) == {"image": 0, "video": 1}
    assert "--headless" not in bare and "--data-parallel-address" not in flags
    pytest_line = out.strip().splitlines()[-1]
    assert "--phyjudge-url http://127.0.0.1:9000 " in pytest_line
    assert "," not in pytest_line.split("--phyjudge-url ", 1)[1].split(" ", 1)[0]


def test_data_parallel_across_nodes_prints_a_head_and_headless_lines(
    capsys, merged_dir, monkeypatch
):
    monkeypatch.setenv("PHYJUDGE_API_KEY", "not-printed")
    code, out, err = run_cli(
        capsys,
        "serve-command",
        "--model",
        str(merged_dir),
        "--nodes",
        "3",
        "--data-parallel",
        "6",
        "--address",
        "10.0.0.5",
        "--rpc-port",
        "13345",
        "--host",
        "0.0.0.0",
    )
    assert code == 0, err
    assert "not-printed" not in out
    head, *others = _serve_lines(out)
    assert len(others) == 2
    _, flags, bare = _split(head)
    assert "--headless" not in bare and "--data-parallel-start-rank" not in flags
    assert flags["--data-parallel-size"] == "6" and flags["--data-parallel-size-local"] == "2"
    assert flags["--data-parallel-address"] == "10.0.0.5"
    assert flags["--data-parallel-rpc-port"] == "13345"
    assert flags["--api-key"] == "$PHYJUDGE_API_KEY"
    for rank, line in zip(("2", "4"), others, strict=True):
        _, flags, bare = _split(line)
        assert "--headless" in bare
        assert flags["--data-parallel-start-rank"] == rank
        assert flags["--data-parallel-size"] == "6" and flags["--data-parallel-size-local"] == "2"
        assert flags["--data-parallel-address"] == "10.0.0.5"
        assert flags["--data-parallel-rpc-port"] == "13345"
        assert "--port" not in flags and "--api-key" not in flags  # no API server there
    assert "--phyjudge-url http://10.0.0.5:8000 " in out.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--replicas", "2", "--data-parallel", "2"], "--replicas prints separate endpoints"),
        (["--replicas", "2", "--nodes", "2"], "--replicas prints separate endpoints"),
        (["--nodes", "2", "--data-parallel", "4"], "--address HOST"),
        (["--nodes", "2", "--data-parallel", "3", "--address", "h"], "divide evenly"),
        (["--nodes", "2", "--address", "h"], "--data-parallel N"),
        (["--data-parallel", "2", "--address", "h"], "only with --nodes 2 or more"),
        (["--nodes", "2", "--data-parallel", "4", "--address", "0.0.0.0"], "reach the head"),
        (["--data-parallel", "2", "--port", "70000"], "1 to 65535"),
        (["--nodes", "2", "--data-parallel", "2", "--address", "h\n--x"], "control characters"),
    ],
)
def test_mixed_or_impossible_layouts_are_refused_clearly(capsys, merged_dir, extra, expected):
    code, out, err = run_cli(capsys, "serve-command", "--model", str(merged_dir), *extra)
    assert code == 2
    assert out == ""
    assert expected in err and "Traceback" not in err
