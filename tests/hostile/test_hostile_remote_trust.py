"""Judge servers and clients not to be trusted (issue 19, classes 5, 7 and 8): a server that
changes model mid-run or a replica that serves another, a gzip bomb and a reply without end,
JSON nested 200,000 deep (from a server, in /v1/models, in a provenance file, in a request
to ``phyjudge serve``), and ``phyjudge serve`` handed fields of the wrong type or range.
Servers are real ones on 127.0.0.1 where only a socket shows the fault (streaming, encodings),
``httpx.MockTransport`` where the reply's content is all that matters."""

from __future__ import annotations

import base64
import dataclasses
import http.server
import json
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pytester_kit import FakeClock, Kit

from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge import _files as files
from pytest_phyjudge._exceptions import JudgeBackendError, JudgeLoadError
from pytest_phyjudge._files import FileProblem, parse_json
from pytest_phyjudge.deploy import server_http
from pytest_phyjudge.deploy.server import JudgeServer
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.engine.rubric import load_rubric
from pytest_phyjudge.judges.remote import http as judge_http
from pytest_phyjudge.judges.remote.judge import RemoteJudge, RemotePlan, RemoteSettings, plan_remote
from pytest_phyjudge.judges.remote.provenance import ServedJudge, read_provenance
from pytest_phyjudge.judges.settings import JudgeConfig
from pytest_phyjudge.testing import write_test_video
from pytest_phyjudge.testing.faults import Fault, FaultyJudgeServer

URL = "http://judge-a:8000"
OTHER = "http://judge-b:8000"
BODY = {"model": "phyjudge", "messages": []}
DEEP = 200_000
#: The depth cap (``_files.MAX_JSON_DEPTH``), named here so that the module loads on main.
MAX_JSON_DEPTH = 100


def _judge(
    urls: tuple[str, ...],
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
    **remote: float,
) -> RemoteJudge:
    """A greedy remote judge on ``urls``; ``handler`` stands for the servers when given."""
    settings = {"read_timeout": 5.0, "connect_timeout": 2.0, "retries": 0, "backoff": 0.01}
    plan = RemotePlan(
        remote=RemoteSettings(urls=urls, **{**settings, **remote}),
        identity=JudgeIdentity(kind="scripted", adapter="trusted-judge"),
        rubric=load_rubric(None),
        config=JudgeConfig(scoring="greedy"),
        top_logprobs=20,
    )
    if handler is None:
        return plan.load()
    clock = FakeClock()
    return plan.load(transport=httpx.MockTransport(handler), clock=clock, sleep=clock.sleep)


def _reply(model: str | None = "phyjudge", fingerprint: str | None = None) -> httpx.Response:
    reply: dict = {"choices": [{"message": {"content": '{"gravity": 4}'}}]}
    if model is not None:
        reply["model"] = model
    if fingerprint is not None:
        reply["system_fingerprint"] = fingerprint
    return httpx.Response(200, json=reply)


# --------------------------------------------------------------------------- a judge that changes


def test_a_reply_naming_another_model_fails_it_and_every_later_request():
    models = iter(["phyjudge", "phyjudge", "impostor-7b", "phyjudge", "phyjudge"])
    judge = _judge((URL,), lambda request: _reply(next(models)))
    try:
        assert judge.complete(BODY) == judge.complete(BODY) == '{"gravity": 4}'
        errors = []
        for _ in range(3):  # the change, then two requests that must not be believed
            with pytest.raises(JudgeBackendError) as info:
                judge.complete(BODY)
            errors.append(info.value)
        summary = judge.summary()
    finally:
        judge.close()
    for error in errors:
        message = str(error)
        assert "The judge changed mid-run" in message
        assert f"model 'impostor-7b' from {URL}" in message
        assert f"first reply named model 'phyjudge' from {URL}" in message
        assert "trusted-judge" in message and not error.retryable
    # After the change no request is sent: nothing more is attributed to either model.
    assert judge.requests == 3
    assert "THE JUDGE CHANGED MID-RUN" in summary and "'impostor-7b'" in summary


def test_a_first_reply_naming_another_model_than_asked_for_fails():
    judge = _judge((URL,), lambda request: _reply("impostor-7b"))
    try:
        for _ in range(2):
            with pytest.raises(JudgeBackendError) as info:
                judge.complete(BODY)
    finally:
        judge.close()
    assert (
        f"answers as another model than the one asked for: a reply named model "
        f"'impostor-7b' from {URL}, where the run asked for model 'phyjudge'"
    ) in str(info.value)
    assert judge.requests == 1 and info.value.urls == (URL,)


def test_a_changed_system_fingerprint_is_a_change():
    fingerprints = iter(["fp_44709d6fcb", "fp_0000000bad"])
    judge = _judge((URL,), lambda request: _reply("phyjudge", next(fingerprints)))
    try:
        judge.complete(BODY)
        with pytest.raises(JudgeBackendError) as info:
            judge.complete(BODY)
    finally:
        judge.close()
    message = str(info.value)
    assert "model 'phyjudge' (system_fingerprint 'fp_0000000bad')" in message
    assert "model 'phyjudge' (system_fingerprint 'fp_44709d6fcb')" in message


def test_a_replica_serving_another_model_is_refused_naming_both_servers():
    def handler(request: httpx.Request) -> httpx.Response:
        # The same name, other weights: the fingerprints tell them apart.
        return _reply("phyjudge", "fp_a" if request.url.host == "judge-a" else "fp_b")

    judge = _judge((URL, OTHER), handler)
    try:
        outcomes = []
        for _ in range(4):
            try:
                outcomes.append(judge.complete(BODY))
            except JudgeBackendError as exc:
                outcomes.append(exc)
    finally:
        judge.close()
    assert outcomes[0] == '{"gravity": 4}'
    errors = [o for o in outcomes if isinstance(o, JudgeBackendError)]
    assert len(errors) == 3  # the first reply sets the model: every later request fails
    assert set(errors[0].urls) == {URL, OTHER}
    message = str(errors[0])
    assert f"(system_fingerprint 'fp_a') from {URL}" in message
    assert f"(system_fingerprint 'fp_b') from {OTHER}" in message


SUITE = """
suite: changing
videos: clips/{id}.mp4
defaults: {metrics: [SA, PTV]}
cases:
  - id: fall
    prompt: A ball falls onto a table.
    laws: [gravity]
  - id: roll
    prompt: A ball rolls down a ramp.
    laws: [gravity, collision]
"""


def test_a_server_that_changes_model_mid_run_is_named_in_the_report(pytester, kit: Kit):
    kit.suite(SUITE, name="changing")
    kit.videos(["fall", "roll"], frames=4, fps=2)
    judge = ScriptedJudge({"*": 4}, name="served-scripted")
    with FaultyJudgeServer(judge) as server:
        server.faults.add(Fault("delay"), times=3)  # three honest replies
        server.faults.always(Fault("model", model="impostor-7b"))
        result = pytester.runpytest(
            "--phyjudge-url",
            server.url,
            "--phyjudge-concurrency",
            "1",
            "--phyjudge-report",
            "out/scores.json",
            "-p",
            "no:cacheprovider",
        )
    result.assert_outcomes(passed=3, failed=4)
    result.stdout.fnmatch_lines(["*THE JUDGE CHANGED MID-RUN*impostor-7b*"])
    checks = [c for video in kit.report()["results"] for c in video["checks"].values()]
    errors = [c["error"] for c in checks if c.get("error")]
    assert len(errors) == 4
    for error in errors:
        assert "The judge changed mid-run" in error and "'impostor-7b'" in error
        assert f"model 'phyjudge' from {server.url}" in error


# --------------------------------------------------------------------------- replies without end


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Answers every request with ``answer(handler)``, set per test."""

    protocol_version = "HTTP/1.0"
    answer: Callable[[http.server.BaseHTTPRequestHandler], None]

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[Callable[[Callable[..., None]], str]]:
    """Start a server answering with the function given; returns its URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(answer: Callable[..., None]) -> str:
        handler = type("Hostile", (_Hostile,), {"answer": answer})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _peak_while(action: Callable[[], object]) -> tuple[object, int]:
    """What ``action`` returned or raised, and the peak of Python's memory meanwhile."""
    tracemalloc.start()
    try:
        try:
            outcome: object = action()
        except Exception as exc:
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_is_cut_at_the_cap_and_memory_stays_under_it(monkeypatch, encoding):
    monkeypatch.setattr(judge_http, "MAX_REPLY_BYTES", 2**20, raising=False)
    with FaultyJudgeServer(ScriptedJudge({"*": 4}, name="bomber")) as server:
        # 64 MiB inflated from about 64 KB: the cap (1 MiB) is a sixty-fourth of it.
        server.faults.always(Fault("bomb", size=64 * 2**20, encoding=encoding))
        judge = _judge((server.url,))
        try:
            error, peak = _peak_while(lambda: judge.complete(BODY))
        finally:
            judge.close()
    assert isinstance(error, JudgeBackendError), error
    assert f"The judge server at {server.url} sent a reply larger than 1 MiB once decoded" in str(
        error
    )
    assert judge.requests == 1  # not retried: a bomb is no passing fault
    assert peak < 6 * 2**20, f"{peak / 2**20:.1f} MiB held for a 1 MiB cap"


def test_a_reply_announcing_more_than_the_cap_is_refused_before_it_is_read(hostile):
    def announce(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(500 * 2**20))
        handler.end_headers()
        handler.wfile.write(b"{")  # and nothing more: reading on would wait for ever
        handler.wfile.flush()
        time.sleep(3)

    judge = _judge((hostile(announce),), read_timeout=30.0)
    started = time.monotonic()
    try:
        with pytest.raises(JudgeBackendError, match=r"sent a reply larger than 16 MiB"):
            judge.complete(BODY)
    finally:
        judge.close()
    assert time.monotonic() - started < 2.5


def test_a_reply_without_length_is_cut_at_the_cap(hostile, monkeypatch):
    monkeypatch.setattr(judge_http, "MAX_REPLY_BYTES", 2**20, raising=False)

    def endless(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()  # no length: the body ends when the connection does
        block = b" " * 65536
        try:
            for _ in range(64):  # 4 MiB
                handler.wfile.write(block)
        except OSError:
            pass  # the client hung up at its cap

    judge = _judge((hostile(endless),))
    try:
        error, peak = _peak_while(lambda: judge.complete(BODY))
    finally:
        judge.close()
    assert isinstance(error, JudgeBackendError)
    assert "sent a reply larger than 1 MiB once decoded" in str(error)
    assert peak < 4 * 2**20


def test_an_encoding_the_client_did_not_ask_for_is_refused_by_name(hostile):
    def brotli(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Encoding", "br")
        handler.send_header("Content-Length", "4")
        handler.end_headers()
        handler.wfile.write(b"\x8b\x01\x80{")

    url = hostile(brotli)
    judge = _judge((url,))
    try:
        with pytest.raises(JudgeBackendError) as info:
            judge.complete(BODY)
    finally:
        judge.close()
    assert f"The judge server at {url} sent its reply in the 'br' encoding" in str(info.value)


# --------------------------------------------------------------------------- nesting without end


def test_json_is_refused_past_the_depth_cap_and_brackets_in_strings_do_not_count():
    assert files.MAX_JSON_DEPTH == MAX_JSON_DEPTH
    deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(FileProblem) as info:
        parse_json(deep)
    assert info.value.reason == f"is nested too deeply to read (more than {MAX_JSON_DEPTH} levels)"
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None
    assert parse_json(json.dumps({"a": "[{" * 5000, "b": [[1]]})) == {"a": "[{" * 5000, "b": [[1]]}


def test_deep_json_from_a_judge_server_is_one_message():
    with FaultyJudgeServer(ScriptedJudge({"*": 4}, name="deep")) as server:
        server.faults.always(Fault("deep", size=DEEP))
        judge = _judge((server.url,))
        try:
            with pytest.raises(JudgeBackendError) as info:
                judge.complete(BODY)
        finally:
            judge.close()
    message = str(info.value)
    assert server.url in message
    assert (
        f"malformed reply: it is nested too deeply to read (more than {MAX_JSON_DEPTH}" in message
    )


def test_deep_json_from_v1_models_is_one_message(hostile):
    def models(handler: http.server.BaseHTTPRequestHandler) -> None:
        body = b'{"data": ' + b"[" * DEEP + b"]" * DEEP + b"}"
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    url = hostile(models)
    with pytest.raises(JudgeLoadError) as info:
        plan_remote(url, read_timeout=5.0)
    assert f"{url} (malformed reply: it is nested too deeply to read" in str(info.value)


def test_a_deep_provenance_file_is_one_message(tmp_path):
    file = tmp_path / "phyjudge_provenance.json"
    file.write_text("[" * DEEP + "]" * DEEP)
    with pytest.raises(JudgeLoadError) as info:
        read_provenance(file)
    assert f"{str(file)!r} is nested too deeply to read" in str(info.value)


# --------------------------------------------------------------------------- phyjudge serve


def _post(server: JudgeServer, payload: bytes, **headers: str) -> tuple[int, str]:
    """POST ``payload`` as it is over a real socket; the status and the error message."""
    reply = httpx.post(
        server.url + "/v1/chat/completions",
        content=payload,
        headers={"Content-Type": "application/json", **headers},
        timeout=10.0,
    )
    message = reply.json().get("error", {}).get("message", "") if reply.content else ""
    return reply.status_code, message


@pytest.fixture(scope="module")
def strict_server() -> Iterator[JudgeServer]:
    """One server for every malformed request (a server takes half a second to stop)."""
    with JudgeServer(ScriptedJudge({"*": 4}, name="strict"), serial=False) as server:
        yield server


TEXT = [{"role": "user", "content": [{"type": "text", "text": 'Answer {"gravity": <1-5>}'}]}]


def _with(**fields: object) -> bytes:
    return json.dumps({"model": "phyjudge", "messages": TEXT, **fields}).encode()


def _message(message: object) -> bytes:
    return json.dumps({"messages": [message]}).encode()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (_with(temperature=[1]), "the request field 'temperature' must be the number 0, not [1]"),
        (_with(temperature=0.7), "'temperature' must be 0 (this server decodes greedily only)"),
        (_with(temperature="0"), "'temperature' must be the number 0, not \"0\""),
        (
            _with()[:-1] + b', "max_tokens": 1e400}',
            "'max_tokens' must be a whole number from 1 to 4096, not Infinity",
        ),
        (_with(max_tokens="64"), "'max_tokens' must be a whole number from 1 to 4096, not \"64\""),
        (_with(max_tokens=0), "'max_tokens' must be a whole number from 1 to 4096, not 0"),
        (_with(max_tokens=2.5), "'max_tokens' must be a whole number"),
        (_with(max_tokens=True), "'max_tokens' must be a whole number"),
        (_with(top_logprobs=-1), "'top_logprobs' must be a whole number from 0 to 4096"),
        (_with(logprobs="yes"), "'logprobs' must be true or false, not \"yes\""),
        (_with(continue_final_message=1), "'continue_final_message' must be true or false"),
        (_with(model=5), "'model' must be a string, not 5"),
        (_with(model="gpt-4o"), "'model' must be 'phyjudge' (the model this server serves)"),
        (json.dumps({"messages": "hi"}).encode(), "'messages' must be a list of messages"),
        (json.dumps({"messages": []}).encode(), "'messages' must be a list of messages"),
        (json.dumps({}).encode(), "'messages' must be a list of messages (objects"),
        (_message(5), "'messages[0]' must be an object with a 'role' and 'content', not 5"),
        (_message({"role": 5, "content": "x"}), "'messages[0].role' must be 'system' or"),
        (_message({"role": "tool", "content": "x"}), "'messages[0].role' must be"),
        (_message({"role": "user", "content": 5}), "'messages[0].content' must be a string or"),
        (
            _message({"role": "user", "content": [{"type": "image_url"}]}),
            '\'messages[0].content[0]\' must be a part of type "text" or "video_url"',
        ),
        (
            _message({"role": "user", "content": [{"type": "text", "text": 5}]}),
            "'messages[0].content[0].text' must be a string, not 5",
        ),
        (
            _message({"role": "user", "content": [{"type": "video_url", "video_url": "data:x"}]}),
            "'messages[0].content[0].video_url' must be an object {\"url\":",
        ),
        (
            _message({"role": "user", "content": [{"type": "video_url", "video_url": {"url": 5}}]}),
            "'messages[0].content[0].video_url' must be an object",
        ),
        (b"[]", "the request body must be a JSON object, not []"),
        (b"{", "the request body is not valid JSON"),
        (b'{"messages": "\xff"}', "the request body is not UTF-8 text"),
        (b"[" * DEEP + b"]" * DEEP, "the request body is nested too deeply to read"),
    ],
)
def test_serve_answers_a_malformed_field_with_400_naming_it(strict_server, payload, expected):
    status, message = _post(strict_server, payload)
    assert status == 400, message
    assert expected in message
    assert "Error" not in message  # no bare Python exception


def test_serve_compares_the_api_key_in_constant_time_as_bytes(monkeypatch, tmp_path):
    compared: list[tuple[object, object]] = []
    real = server_http.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(server_http.hmac, "compare_digest", spy)
    key = "clé-ключ-🔑"  # a key beyond ASCII works as the client sends it: UTF-8
    clip = write_test_video(tmp_path / "clip.mp4", frames=4, fps=2)
    url = "data:video/mp4;base64," + base64.b64encode(Path(clip).read_bytes()).decode()
    messages = [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}}]}]
    messages[0]["content"].append(TEXT[0]["content"][0])
    body = json.dumps({"messages": messages, "stream": False, "n": 1}).encode()
    with JudgeServer(ScriptedJudge({"*": 4}, name="keyed"), serial=False, api_key=key) as server:
        good = httpx.post(
            server.url + "/v1/chat/completions",
            content=body,
            headers={"Authorization": f"Bearer {key}".encode()},
            timeout=10.0,
        )
        wrong, _ = _post(server, body, Authorization="Bearer cle")
    assert good.status_code == 200, good.text
    assert good.json()["choices"][0]["message"]["content"] == '{"gravity": 4}'
    assert wrong == 401
    assert compared and all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in compared)


def _models(adapter: str) -> httpx.Response:
    entry = {"id": "phyjudge", "phyjudge": {"adapter": adapter, "kind": "scripted"}}
    return httpx.Response(200, json={"object": "list", "data": [entry]})


def test_a_server_whose_models_list_another_judge_mid_run_fails_the_later_cases(tmp_path):
    """Replies name only the model; /v1/models says which judge stands behind the name. It
    is asked again before each case: once it lists another adapter, that case and every
    later one fail, naming both judges, and no further chat request is sent."""
    listed = iter(["trusted-judge", "trusted-judge", "swapped-adapter"])
    chats = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return _models(next(listed, "swapped-adapter"))
        chats.append(request)
        return _reply("phyjudge")

    judge = _judge((URL,), handler)
    identity = judge.plan.identity
    judge.plan = dataclasses.replace(judge.plan, served=ServedJudge("phyjudge", identity, None))
    video = write_test_video(tmp_path / "clip.mp4")
    try:
        results = [judge.score_many(video, "A ball falls.", ["gravity"]) for _ in range(3)]
        summary = judge.summary()
    finally:
        judge.close()
    assert [type(r["gravity"]).__name__ for r in results] == [
        "Judgment",
        "Judgment",
        "JudgeBackendError",
    ]
    message = str(results[2]["gravity"])
    assert "The judge changed mid-run" in message and f"server at {URL}" in message
    assert "swapped-adapter" in message and "trusted-judge" in message
    assert len(chats) == 2 and "THE JUDGE CHANGED MID-RUN" in summary


def test_a_server_naming_a_folder_that_is_no_adapter_gets_no_rubric_read_from_it(
    tmp_path: Path,
) -> None:
    """/v1/models' ``rubric_dir`` is read on this machine, and the rubric's text goes back
    to the server in every prompt: only an adapter snapshot's folder is taken."""
    from pytest_phyjudge.judges.remote.provenance import served_judge

    home = tmp_path / "home"
    home.mkdir()
    (home / "subq+human.yaml").write_text("a private file that is no rubric\n")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")

    def models(root: str) -> dict:
        entry = {"adapter": "judge", "kind": "scripted", "rubric_dir": root}
        return {"data": [{"id": "phyjudge", "phyjudge": entry}]}

    for root in (str(home), "/", str(tmp_path / "missing"), "a\0b"):
        assert served_judge(models(root), URL).rubric_dir is None
    assert served_judge(models(str(adapter)), URL).rubric_dir == adapter
