"""The remote backend against real HTTP servers on 127.0.0.1: the tiny judge served by
``JudgeServer`` for parity with the in-process judge, and a scripted judge (canned replies,
no model: it says so in its identity) served with injected faults for the retry, timeout
and circuit-breaker behaviour. Backoff and cooldowns are checked without waiting: an
``httpx.MockTransport`` stands for the servers and a fake clock for time."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pytester_kit import FakeClock

from pytest_phyjudge import JudgeIdentity, JudgeOutputError, Judgment, ScriptedJudge, connect_judge
from pytest_phyjudge._exceptions import JudgeBackendError, JudgeLoadError
from pytest_phyjudge.deploy.server import Exchange, JudgeServer
from pytest_phyjudge.engine.rubric import load_rubric
from pytest_phyjudge.engine.video import decode_video, sampled_clip
from pytest_phyjudge.judges.remote.http import digit_distribution, open_client, post_json
from pytest_phyjudge.judges.remote.judge import (
    RemoteJudge,
    RemotePlan,
    RemoteSettings,
    plan_remote,
)
from pytest_phyjudge.judges.remote.replicas import MAX_BACKOFF, ReplicaPool, backoff_delay
from pytest_phyjudge.judges.settings import JudgeConfig, parse_media_root, parse_urls
from pytest_phyjudge.testing import write_test_video
from pytest_phyjudge.testing.faults import Fault, FaultyJudgeServer

CAPTION = "A ball rolls down a ramp and knocks over a block."
AXES = ["SA", "PTV", "gravity", "collision"]
#: Short timeouts and backoff: every fault below resolves in well under a few seconds.
FAST = {"read_timeout": 1.0, "connect_timeout": 1.0, "retries": 2, "backoff": 0.01}


def _free_port_url() -> str:
    """A URL where nothing listens (a replica that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def clip_2fps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 fps clip: sampling at 2 fps keeps every frame, so even the frame timestamps the
    server writes into the prompt equal the in-process judge's."""
    return write_test_video(tmp_path_factory.mktemp("remote") / "two_fps.mp4", frames=8, fps=2)


@pytest.fixture(scope="module")
def tiny_server(trained_tiny_judge) -> Iterator[JudgeServer]:
    """The format-trained tiny judge served: its replies are decisive, so the served and the
    in-process judge agree token for token (a random judge's long replies hold near-ties that
    float noise between two ways of running the same prompt can flip)."""
    with JudgeServer(trained_tiny_judge) as server:
        yield server


@pytest.fixture
def scripted_server() -> Iterator[FaultyJudgeServer]:
    with FaultyJudgeServer(ScriptedJudge({"*": 4, "gravity": 2}, name="scripted-server")) as server:
        yield server


def _remote(*urls: str, **settings) -> RemoteJudge:
    return connect_judge(list(urls), **{**FAST, **settings})


# --------------------------------------------------------------------------- parity


def _same_outcome(remote, local) -> None:
    assert type(remote) is type(local)
    assert remote.raw == local.raw  # the very same greedy tokens
    if isinstance(local, Judgment):
        assert (remote.score, remote.prompt_sha256, remote.video_sha256) == (
            local.score,
            local.prompt_sha256,
            local.video_sha256,
        )
    else:
        assert isinstance(local, JudgeOutputError) and remote.reason == local.reason


def test_served_tiny_judge_equals_the_in_process_judge(trained_tiny_judge, tiny_server, clip_2fps):
    tiny_judge = trained_tiny_judge
    judge = plan_remote(tiny_server.url).load()
    try:
        assert judge.identity.kind == "tiny"  # a tiny judge stays marked behind a server
        assert judge.identity.adapter_sha256 == tiny_judge.identity.adapter_sha256
        remote = judge.score_many(clip_2fps, CAPTION, AXES)
    finally:
        judge.close()
    local = tiny_judge.score_many(clip_2fps, CAPTION, AXES)
    assert list(remote) == AXES
    for axis in AXES:
        _same_outcome(remote[axis], local[axis])


def test_distribution_scoring_over_http_equals_in_process(
    trained_tiny_adapter, tiny_server, clip_2fps
):
    """The digit probabilities from the server's top log-probabilities (all of the tiny
    vocabulary asked for, so that no digit is cut off) equal the in-process ones."""
    from pytest_phyjudge import load_judge

    local = load_judge(trained_tiny_adapter, device="cpu", scoring="distribution")
    judge = plan_remote(
        tiny_server.url, config=JudgeConfig(scoring="distribution"), top_logprobs=4096
    ).load()
    try:
        remote = judge.score_many(clip_2fps, CAPTION, ["SA", "gravity"])
        expected = local.score_many(clip_2fps, CAPTION, ["SA", "gravity"])
    finally:
        judge.close()
        local.close()
    for axis in ("SA", "gravity"):
        got, want = remote[axis], expected[axis]
        assert isinstance(got, Judgment) and isinstance(want, Judgment)
        assert (got.score, got.raw, got.prompt_sha256) == (want.score, want.raw, want.prompt_sha256)
        assert got.probs == pytest.approx(want.probs, abs=1e-4)
        assert got.expected == pytest.approx(want.expected, abs=1e-4)
        assert got.extra["digit_mass"] == pytest.approx(want.extra["digit_mass"], rel=1e-3)


def test_digit_distribution_from_top_logprobs():
    import math

    top = [(" 4", math.log(0.5)), ("3", math.log(0.25)), ("x", math.log(0.2))]
    probs, mass = digit_distribution(top, "SA")
    assert probs == pytest.approx((0, 0, 1 / 3, 2 / 3, 0)) and mass == pytest.approx(0.75)
    with pytest.raises(JudgeOutputError, match="None of the digits 1-5"):
        digit_distribution([("x", 0.0)], "SA")


def test_file_urls_let_the_server_sample_the_original_clip(
    trained_tiny_judge, synthetic_video, tmp_path
):
    """A 6 fps clip sent as file://: the server samples it itself, exactly like in-process."""
    tiny_judge = trained_tiny_judge
    with JudgeServer(tiny_judge, media_root=synthetic_video.parent) as server:
        judge = _remote(
            server.url,
            read_timeout=120,  # a real (tiny) model on a busy CPU, not a fault
            media_root=parse_media_root(str(synthetic_video.parent)),
        )
        try:
            part = judge.video_part(synthetic_video)
            assert part["video_url"]["url"] == f"file://{synthetic_video.resolve()}"
            remote = judge.score_many(synthetic_video, CAPTION, ["SA", "gravity"])
        finally:
            judge.close()
        # A file outside the media root still goes as data.
        outside = write_test_video(tmp_path / "elsewhere.mp4", frames=4, fps=2)
        assert judge.video_part(outside)["video_url"]["url"].startswith("data:video/mp4;base64,")
    local = tiny_judge.score_many(synthetic_video, CAPTION, ["SA", "gravity"])
    for axis in ("SA", "gravity"):
        _same_outcome(remote[axis], local[axis])


@pytest.mark.local
def test_the_sampled_clip_carries_the_judges_frames_losslessly(synthetic_video, tmp_path):
    decoded = decode_video(synthetic_video)
    sent = tmp_path / "sent.mp4"
    sent.write_bytes(sampled_clip(synthetic_video))
    received = decode_video(sent)
    assert received.metadata["fps"] == 2.0
    assert received.frames.shape == decoded.frames.shape
    assert received.frames.equal(decoded.frames.round())


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    "fault",
    [
        Fault("error", status=500),
        Fault("error", status=503),
        Fault("delay", seconds=3.0),  # past the 1 s read timeout
        Fault("malformed"),
        Fault("drop"),
    ],
    ids=["500", "503", "read-timeout", "malformed-json", "dropped-connection"],
)
def test_a_transient_fault_is_retried_and_succeeds(scripted_server, clip_2fps, fault):
    """Over real HTTP. The delayed reply would still come, 3 s late: one retry and two
    requests show that the client gave up on it at its read timeout instead."""
    scripted_server.faults.add(fault)
    judge = _remote(scripted_server.url)
    try:
        result = judge.score(clip_2fps, CAPTION, law="gravity")
    finally:
        judge.close()
    assert result.score == 2 and result.judge.kind == "scripted"
    assert judge.retried == 1 and scripted_server.requests == 2


def test_axes_asked_at_once_share_the_wall_time(scripted_server, clip_2fps):
    """A serial server answers 4 axes one after the other; each judgment records its share
    of the wall time, so their seconds add up to the time spent, not 1 + 2 + 3 + 4 waits."""
    scripted_server.faults.always(Fault("delay", seconds=0.05))
    judge = _remote(scripted_server.url, concurrency=4)
    try:
        started = time.perf_counter()
        outcomes = judge.score_many(clip_2fps, CAPTION, ["SA", "PTV", "persistence", "gravity"])
        wall = time.perf_counter() - started
    finally:
        judge.close()
    seconds = [outcome.seconds for outcome in outcomes.values()]
    assert len(set(seconds)) == 1 and sum(seconds) <= wall


def test_a_before_reply_hook_sees_each_chat_request_first(clip_2fps):
    """The server's seam for tests: the hook reads the request and may let the judge answer."""
    seen: list[dict] = []

    def hook(exchange: Exchange) -> bool:
        seen.append(json.loads(exchange.payload))
        return False

    with JudgeServer(ScriptedJudge({"*": 3}, name="hooked"), before_reply=hook) as server:
        judge = _remote(server.url)
        try:
            assert judge.score(clip_2fps, CAPTION, metric="SA").score == 3
        finally:
            judge.close()
    assert [body["model"] for body in seen] == ["phyjudge"] and server.requests == 1


def test_a_server_that_keeps_failing_fails_the_item_clearly(scripted_server, clip_2fps):
    scripted_server.faults.always(Fault("error", status=500))
    judge = _remote(scripted_server.url, breaker_threshold=10)
    try:
        results = judge.score_many(clip_2fps, CAPTION, ["SA"])
    finally:
        judge.close()
    error = results["SA"]
    assert isinstance(error, JudgeBackendError)
    assert "after 3 attempts" in str(error) and "HTTP 500" in str(error)
    assert scripted_server.url in str(error) and error.urls == (scripted_server.url,)
    assert scripted_server.requests == 3  # 1 + 2 retries, no more


def test_a_4xx_is_not_retried(scripted_server, clip_2fps):
    judge = _remote(scripted_server.url, model="not-the-judge")
    try:
        with pytest.raises(JudgeBackendError, match=r"HTTP 400.*not retried"):
            judge.score(clip_2fps, CAPTION, metric="SA")
    finally:
        judge.close()
    assert scripted_server.requests == 1


def test_one_replica_down_the_other_answers_everything(scripted_server, clip_2fps):
    down = _free_port_url()
    # /v1/models is asked of every replica; the one that answers names the judge.
    plan = plan_remote([down, scripted_server.url], **FAST, breaker_threshold=2)
    judge = plan.load()
    try:
        for _ in range(3):
            results = judge.score_many(clip_2fps, CAPTION, AXES)
            assert all(isinstance(r, Judgment) for r in results.values())
    finally:
        judge.close()
    dead, alive = judge.pool.replicas
    assert dead.served == 0 and dead.failures >= 2 and dead.open_until > judge.pool.clock()
    assert alive.served == 3 * len(AXES)
    assert "connection failed" in dead.last_error


def test_every_replica_down_fails_fast_naming_the_urls(clip_2fps):
    """Once both breakers are open, requests fail without a connection or a wait; after
    the cooldown a replica is tried again."""
    clock, calls = FakeClock(), []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        raise httpx.ConnectError("connection refused", request=request)

    judge = _mock_judge(refuse, clock, breaker_threshold=2, breaker_cooldown=30)
    try:
        with pytest.raises(JudgeBackendError, match="after 3 attempts") as first:
            judge.complete(BODY)
        # One replica failed twice (its breaker opened), the other once.
        assert sorted(first.value.urls) == list(MOCK_URLS)
        with pytest.raises(JudgeBackendError, match="Every judge server is down"):
            judge.complete(BODY)  # the other fails again: the retry finds none left
        tried, waited = len(calls), list(clock.sleeps)
        assert tried == 4
        rest = judge.score_many(clip_2fps, CAPTION, AXES)
        assert (len(calls), clock.sleeps) == (tried, waited)  # no request, no waiting
        for error in rest.values():
            assert isinstance(error, JudgeBackendError)
            assert "Every judge server is down" in str(error)
            assert "connection failed (ConnectError" in str(error)
            assert all(url in str(error) for url in MOCK_URLS)
        clock.advance(30)
        with pytest.raises(JudgeBackendError):
            judge.complete(BODY)
        assert len(calls) > tried  # the cooldown is over: the servers are asked again
    finally:
        judge.close()


def test_requests_go_to_the_replica_with_fewest_outstanding():
    pool = ReplicaPool(["http://a", "http://b", "http://c"], threshold=2, cooldown=60)
    a = pool.acquire()
    b = pool.acquire()
    c = pool.acquire()
    assert {a.url, b.url, c.url} == {"http://a", "http://b", "http://c"}
    pool.release(b)
    assert pool.acquire() is b  # the only one with nothing outstanding
    pool.release(a, "HTTP 500")
    pool.release(c, "HTTP 500")
    pool.release(b)
    # a and c failed once each; b is idle and healthy.
    assert pool.acquire() is b


def test_the_breaker_opens_after_consecutive_failures_and_closes_on_success():
    clock = FakeClock()
    pool = ReplicaPool(["http://a"], threshold=2, cooldown=30, clock=clock)
    replica = pool.acquire()
    pool.release(replica, "HTTP 502")
    pool.release(pool.acquire(), "HTTP 502")
    with pytest.raises(JudgeBackendError, match=r"down: http://a \(HTTP 502, tried again in 30 s"):
        pool.acquire()
    clock.advance(29.5)
    with pytest.raises(JudgeBackendError, match="tried again in 0 s"):
        pool.acquire()  # still cooling down
    clock.advance(0.5)
    pool.release(pool.acquire(), "HTTP 502")  # half-open: one more failure leaves it out
    with pytest.raises(JudgeBackendError, match="Every judge server is down"):
        pool.acquire()
    clock.advance(30)
    pool.release(pool.acquire())  # half-open: one success closes it
    assert replica.failures == 0 and pool.acquire() is replica


# --------------------------------------------------------------------------- no waiting


MOCK_URLS = ("http://judge-a:8000", "http://judge-b:8000")
BODY = {"model": "phyjudge", "messages": []}


def _raising(error: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("injected", request=request)

    return handler


def _reply(text: str) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"message": {"content": text}}]})


def _mock_judge(
    handler: Callable[[httpx.Request], httpx.Response],
    clock: FakeClock,
    *,
    urls: tuple[str, ...] = MOCK_URLS,
    **remote: float,
) -> RemoteJudge:
    """A remote judge whose servers are ``handler`` and whose time is ``clock``."""
    plan = RemotePlan(
        remote=RemoteSettings(urls=urls, **{**FAST, **remote}),
        identity=JudgeIdentity(kind="scripted", adapter="mock-transport"),
        rubric=load_rubric(None),
        config=JudgeConfig(scoring="greedy"),
        top_logprobs=20,
    )
    return plan.load(transport=httpx.MockTransport(handler), clock=clock, sleep=clock.sleep)


def test_every_transient_fault_is_retried_after_a_doubling_backoff():
    """A 503, a read timeout, a dropped connection, a reply that is not JSON, one without
    choices, then an answer: six attempts, five waits of 0.5, 1, 2, 4 and 8 s."""
    faults: list[Callable[[httpx.Request], httpx.Response]] = [
        lambda r: httpx.Response(503, text="busy"),
        _raising(httpx.ReadTimeout),
        _raising(httpx.RemoteProtocolError),  # what a dropped connection gives
        lambda r: httpx.Response(200, content=b'{"choices": [{"message": '),
        lambda r: httpx.Response(200, json={"choices": []}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return faults.pop(0)(request) if faults else _reply('{"gravity": 4}')

    clock = FakeClock()
    judge = _mock_judge(
        handler, clock, urls=MOCK_URLS[:1], retries=5, backoff=0.5, breaker_threshold=10
    )
    try:
        assert judge.complete(BODY) == '{"gravity": 4}'
    finally:
        judge.close()
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert (judge.requests, judge.retried) == (6, 5)
    (replica,) = judge.pool.replicas
    assert replica.served == 1 and replica.failures == 0  # the answer closes the count
    assert replica.last_error == "malformed reply (IndexError: list index out of range)"


def test_the_backoff_stops_growing_at_its_ceiling():
    assert [backoff_delay(n, 0.5) for n in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]
    assert backoff_delay(10, 0.5) == MAX_BACKOFF


def test_the_attempts_run_out_with_every_failure_named():
    clock = FakeClock()
    judge = _mock_judge(
        lambda r: httpx.Response(502), clock, retries=2, backoff=1, breaker_threshold=10
    )
    try:
        with pytest.raises(JudgeBackendError) as info:
            judge.complete(BODY)
    finally:
        judge.close()
    message = str(info.value)
    assert "after 3 attempts" in message and message.count("HTTP 502") == 3
    assert sorted(info.value.urls) == list(MOCK_URLS) and clock.sleeps == [1, 2]


def test_a_refusal_is_not_retried_and_does_not_count_against_the_replica():
    clock = FakeClock()
    judge = _mock_judge(lambda r: httpx.Response(400, text="unknown model"), clock)
    try:
        with pytest.raises(JudgeBackendError, match=r"HTTP 400: 'unknown model'.*not retried"):
            judge.complete(BODY)
    finally:
        judge.close()
    assert judge.requests == 1 and clock.sleeps == []
    assert all(r.failures == 0 for r in judge.pool.replicas)


def test_httpx_errors_become_backend_errors_caused_by_them():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = open_client(connect_timeout=1, read_timeout=1, transport=httpx.MockTransport(refuse))
    with client, pytest.raises(JudgeBackendError) as info:
        post_json(client, MOCK_URLS[0], "/v1/chat/completions", BODY)
    assert info.value.retryable and info.value.urls == MOCK_URLS[:1]
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert str(info.value) == "connection failed (ConnectError: connection refused)"


# --------------------------------------------------------------------------- identity


def _provenance_dir(adapter: Path) -> Path:
    """A stand-in for a merged checkpoint folder: only its provenance and rubric files."""
    import shutil

    from pytest_phyjudge.engine.adapter import file_sha256
    from pytest_phyjudge.judges.remote.contract import PROVENANCE_FILE

    folder = adapter.parent / "merged-provenance"
    folder.mkdir(exist_ok=True)
    for name in ("subq+human.yaml", "infer.py"):
        shutil.copyfile(adapter / name, folder / name)
    record = {
        "adapter": str(adapter),
        "revision": None,
        "adapter_sha256": file_sha256(adapter / "adapter_model.safetensors"),
        "base": str(adapter.parent / "base"),
        "kind": "tiny",
    }
    (folder / PROVENANCE_FILE).write_text(json.dumps(record))
    return folder


def test_identity_from_the_provenance_needs_no_server(tiny_adapter, tiny_judge):
    plan = plan_remote(_free_port_url(), identity=_provenance_dir(tiny_adapter))
    assert plan.identity.adapter_sha256 == tiny_judge.identity.adapter_sha256
    assert plan.rubric.calibrated  # the merged folder's rubric files are used
    assert plan.settings["max_new_tokens"] == 64 and plan.settings["scoring"] == "greedy"


def test_replicas_serving_different_judges_are_refused(scripted_server):
    with (
        JudgeServer(ScriptedJudge({"*": 1}, name="another-judge")) as other,
        pytest.raises(JudgeLoadError, match="do not serve the same judge"),
    ):
        plan_remote([scripted_server.url, other.url], **FAST)


def test_no_server_answering_is_a_load_error_with_the_way_out():
    url = _free_port_url()
    with pytest.raises(JudgeLoadError, match=r"No judge server answered.*remote-identity"):
        plan_remote(url, **FAST)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://h:8000", ("http://h:8000",)),
        ("http://h:8000/v1/, http://g:8001", ("http://h:8000", "http://g:8001")),
        ("http://h:8000,http://h:8000", ("http://h:8000",)),
    ],
)
def test_urls_are_normalised(text, expected):
    assert parse_urls(text) == expected


@pytest.mark.parametrize("text", ["h:8000", "ftp://h", ",", "http://", "http://[::1"])
def test_bad_urls_say_how_to_write_one(text):
    with pytest.raises(Exception, match="http://HOST:PORT"):
        parse_urls(text)


def test_a_media_root_seen_elsewhere_by_the_servers(tiny_adapter, tmp_path):
    clip = write_test_video(tmp_path / "shared" / "runs" / "a b.mp4", frames=4, fps=2)
    root = parse_media_root(f"{tmp_path / 'shared'}=/mnt/clips/")
    assert root == ((tmp_path / "shared").resolve(), "/mnt/clips")
    plan = plan_remote(_free_port_url(), identity=_provenance_dir(tiny_adapter), media_root=root)
    judge = plan.load()
    try:
        assert judge.video_part(clip)["video_url"]["url"] == "file:///mnt/clips/runs/a%20b.mp4"
        assert plan.settings["transport"] == "file"
    finally:
        judge.close()


def test_an_api_key_from_the_environment(monkeypatch, clip_2fps):
    judge = ScriptedJudge({"*": 3}, name="keyed")
    with JudgeServer(judge, api_key="s3cret") as server:
        monkeypatch.delenv("PHYJUDGE_API_KEY", raising=False)
        with pytest.raises(JudgeLoadError, match="401"):
            plan_remote(server.url, **FAST)
        monkeypatch.setenv("PHYJUDGE_API_KEY", "s3cret")
        remote = _remote(server.url)
        try:
            assert remote.score(clip_2fps, CAPTION, metric="SA").score == 3
        finally:
            remote.close()


def test_a_judge_that_crashes_on_the_server_is_a_500_not_a_hang_up(clip_2fps):
    def broken(axis: str, caption: str, video: Path) -> int:
        raise ZeroDivisionError("scripted bug")

    with JudgeServer(ScriptedJudge(broken, name="broken"), serial=False) as server:
        judge = _remote(server.url, retries=1)
        try:
            error = judge.score_many(clip_2fps, CAPTION, ["SA"])["SA"]
        finally:
            judge.close()
    assert isinstance(error, JudgeBackendError) and "HTTP 500" in str(error)
    assert server.requests == 2
