"""``phyjudge serve-command``, ``phyjudge serve`` and ``phyjudge score --url``."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

import httpx
from test_cli import run_cli

from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge.deploy.server import JudgeServer
from pytest_phyjudge.testing.faults import Fault, FaultyJudgeServer

CAPTION = "A ball falls onto a table."


def test_serve_command_prints_one_vllm_line_per_replica(capsys, merged_dir, tmp_path):
    code, out, _ = run_cli(
        capsys,
        "serve-command",
        "--model",
        str(merged_dir),
        "--replicas",
        "2",
        "--tensor-parallel",
        "2",
        "--port",
        "9000",
        "--media-root",
        str(tmp_path),
    )
    assert code == 0
    first, second, *hint = out.strip().splitlines()
    for line, gpus, port in ((first, "0,1", "9000"), (second, "2,3", "9001")):
        env, *argv = shlex.split(line)
        assert env == f"CUDA_VISIBLE_DEVICES={gpus}"
        assert argv[:3] == ["vllm", "serve", str(merged_dir.resolve())]
        flags = dict(zip(argv[3::2], argv[4::2], strict=True))
        assert flags["--served-model-name"] == "phyjudge"
        assert flags["--port"] == port and flags["--tensor-parallel-size"] == "2"
        assert json.loads(flags["--limit-mm-per-prompt"]) == {"image": 0, "video": 1}
        assert json.loads(flags["--media-io-kwargs"]) == {"video": {"num_frames": -1}}
        assert flags["--allowed-local-media-path"] == str(tmp_path.resolve())
        assert int(flags["--max-model-len"]) >= 16384
    assert "--phyjudge-url http://127.0.0.1:9000,http://127.0.0.1:9001" in hint[-1]


def test_serve_command_suggests_a_url_pytest_can_dial(capsys, merged_dir):
    """A wildcard --host is no address to dial: the pytest line names the head node of
    several, else HOST with a note on what to put there, never 127.0.0.1; IPv6 in brackets."""

    def hint(*args: str) -> list[str]:
        code, out, _ = run_cli(capsys, "serve-command", "--model", str(merged_dir), *args)
        assert code == 0
        return [line for line in out.splitlines() if line.startswith("#")]

    lines = hint("--host", "0.0.0.0", "--replicas", "2")
    assert lines[-1] == "# pytest --phyjudge-url http://HOST:8000,http://HOST:8001 -n 8"
    assert lines[0].startswith("# HOST: this machine's address")
    assert not any("http://127.0.0.1" in line for line in lines)
    lines = hint("--host", "0.0.0.0", "--nodes", "2", "--data-parallel", "4", "--address", "gpu1")
    assert "only the head node answers HTTP" in lines[0]
    assert lines[-2:] == [
        "# then, once it answers http://gpu1:8000/v1/models:",
        "# pytest --phyjudge-url http://gpu1:8000 -n 16",
    ]
    lines = hint("--nodes", "2", "--data-parallel", "2", "--address", "gpu1")
    assert "--host 127.0.0.1 answers only on the head node" in lines[1]
    assert hint("--host", "fd00::5")[-1] == "# pytest --phyjudge-url http://[fd00::5]:8000 -n 4"


def test_serve_command_help_names_every_vllm_flag_it_prints(capsys, merged_dir, tmp_path):
    """The help (and the generated CLI reference) tells what the printed lines set: each vLLM
    flag is either one of serve-command's own options or named in its description."""
    from pytest_phyjudge.deploy.vllm import vllm_serve_argv

    own = {  # vLLM's flag -> serve-command's option that sets it
        "--host": "--host",
        "--port": "--port",
        "--tensor-parallel-size": "--tensor-parallel",
        "--max-model-len": "--max-model-len",
        "--allowed-local-media-path": "--media-root",
    }
    argv = vllm_serve_argv(
        merged_dir, port=8000, host="h", tensor_parallel=1, max_model_len=9, media_root=tmp_path
    )
    code, out, _ = run_cli(capsys, "serve-command", "--help")
    assert code == 0
    described = " ".join(out.split("options:")[0].split())
    for flag in (arg for arg in argv if arg.startswith("--")):
        assert own.get(flag, flag) in (out if flag in own else described), flag
    assert "--generation-config vllm" in described


def test_serve_command_refuses_an_unmerged_adapter(capsys, tiny_adapter):
    code, _, err = run_cli(capsys, "serve-command", "--model", str(tiny_adapter))
    assert code == 2
    assert "LoRA adapter" in err and "phyjudge merge" in err


def test_score_over_http_prints_the_reference_line(capsys, tmp_path, synthetic_video):
    judge = ScriptedJudge({"gravity": 5}, name="cli-scripted")
    with FaultyJudgeServer(judge) as server:
        server.faults.add(Fault("error", status=502))
        args = ["score", "--video", str(synthetic_video), "--caption", CAPTION, "--law", "gravity"]
        code, out, _ = run_cli(capsys, *args, "--url", server.url)
        assert code == 0
        line = json.loads(out)
        assert "a scripted test stand-in" in line.pop("stand_in")  # the server's judge is
        assert line == {"key": "gravity", "score": 5, "raw": '{"gravity": 5}'}
        assert server.requests == 2  # the 502 was retried

        server.faults.always(Fault("error", status=500))
        code, out, err = run_cli(capsys, *args, "--url", server.url, "--retries", "0")
        assert code == 5
        assert "gave no answer after 1 attempts" in err and server.url in err


def test_phyjudge_serve_runs_the_tiny_judge_over_http(trained_tiny_adapter, synthetic_video):
    """The console command end to end: a real server process with the format-trained tiny
    judge, whose replies parse, greedy and with distribution scoring."""
    command = [sys.executable, "-m", "pytest_phyjudge.cli.main", "serve", "--port", "0"]
    command += ["--adapter-dir", str(trained_tiny_adapter), "--device", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "serving" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
            assert line or process.poll() is None, "phyjudge serve exited"
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        models = httpx.get(f"{url}/v1/models", timeout=10).json()
        assert models["data"][0]["id"] == "phyjudge"
        assert models["data"][0]["phyjudge"]["kind"] == "tiny"
        assert "THESE SCORES ARE MEANINGLESS" in models["data"][0]["stand_in"]
        score_args = ["--video", str(synthetic_video), "--caption", CAPTION, "--metric", "SA"]
        code = subprocess.run(
            [*command[:3], "score", "--url", url, *score_args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert code.returncode == 0, code.stderr
        greedy = json.loads(code.stdout.splitlines()[-1])
        assert greedy["key"] == "SA" and greedy["raw"] == f'{{"SA": {greedy["score"]}}}'
        # The tiny judge behind the server: the line says its score is meaningless.
        assert "a tiny test stand-in" in greedy["stand_in"] and greedy["stand_in"] in code.stderr
        # Distribution scoring over HTTP: a score from the digits among the 20 likeliest.
        dist = subprocess.run(
            [*command[:3], "score", "--url", url, "--scoring", "distribution", *score_args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        line = json.loads(dist.stdout.splitlines()[-1])
        assert dist.returncode == 0, dist.stderr
        assert line["key"] == "SA" and 1 <= line["score"] <= 5
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


class _HoldUntil:
    """A ``before_reply`` hook that holds each request until ``count`` requests are held at
    once (or, once, ``deadline`` seconds pass), then lets every request through: how many a
    client keeps in flight is then measured without depending on how threads are scheduled."""

    def __init__(self, count: int, deadline: float = 20.0) -> None:
        self.count, self.deadline = count, deadline
        self.held = self.most = 0
        self.gave_up = False
        self._changed = threading.Condition()

    def __call__(self, exchange: object) -> bool:
        with self._changed:
            self.held += 1
            self.most = max(self.most, self.held)
            self._changed.notify_all()
            done = lambda: self.most >= self.count or self.gave_up  # noqa: E731
            if not self._changed.wait_for(done, timeout=self.deadline):
                self.gave_up = True  # the client keeps fewer in flight: fail soon, not late
                self._changed.notify_all()
            self.held -= 1
        return False  # the judge answers


def test_score_dir_over_http_keeps_several_videos_in_flight(capsys, tmp_path):
    """A scripted judge served in parallel, each request held until 6 are in flight: with
    --concurrency 6 and 2 axes a video, requests of 3 videos overlap; the report keeps the
    prompt set's order, and a second run comes from the cache without any request."""
    from pytest_phyjudge.testing import write_test_video

    videos = tmp_path / "videos"
    ids = [f"clip_{i}" for i in range(6)]
    for i, name in enumerate(ids):
        write_test_video(videos / f"{name}.mp4", frames=4, fps=2, seed=i)
    prompts = tmp_path / "prompts.json"
    entries = [
        {"video": n, "prompt": f"Ball {n} falls.", "physical_laws": ["gravity"]} for n in ids
    ]
    prompts.write_text(json.dumps({"prompts": entries}))
    out = tmp_path / "scores.json"
    judge = ScriptedJudge({"*": 4, "gravity": 2}, name="dir-scripted")
    hold = _HoldUntil(6)
    with JudgeServer(judge, serial=False, before_reply=hold) as server:
        args = ["score-dir", "--videos", str(videos), "--prompts", str(prompts)]
        args += ["--out", str(out), "--metrics", "SA", "--cache", str(tmp_path / "cache")]
        code, _, err = run_cli(capsys, *args, "--url", server.url, "--concurrency", "6")
        assert code == 0, err
        assert server.requests == 12
        assert hold.most == server.max_in_flight == 6  # 3 videos' axes at once
        report = json.loads(out.read_text())
        assert [r["video"] for r in report["results"]] == ids
        assert all(
            r["SA"] == 4 and r["physical"]["laws"]["gravity"]["score"] == 2
            for r in report["results"]
        )
        code, _, err = run_cli(capsys, *args, "--url", server.url)
        assert code == 0 and server.requests == 12 and "12 from the cache" in err


def test_serve_command_names_the_api_key_without_printing_it(capsys, merged_dir, monkeypatch):
    monkeypatch.setenv("PHYJUDGE_API_KEY", "s3cret")
    code, out, _ = run_cli(capsys, "serve-command", "--model", str(merged_dir))
    assert code == 0
    assert out.splitlines()[0].endswith('--api-key "$PHYJUDGE_API_KEY"')
    assert "s3cret" not in out
