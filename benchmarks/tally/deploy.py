"""Round 6's deploy surfaces as inputs: ``phyjudge merge`` given an output it would not own
or an adapter whose rubric links out of it; ``phyjudge serve`` given ``file://`` URLs that
name no clip under its media root, JSON with a key twice, reply shapes it cannot give, a GET
carrying a second request, and bodies past its cap; a baseline update over a baseline
another run changed meanwhile, and a baseline in the report's own file.

Clean: a refusal that names the file, folder or field (a 400 for the server), with the
user's files as they were, no secret in what is shown or written, and no recorded entry
lost; never a hang (a pipe opened), a 500, or a silent success.
"""

from __future__ import annotations

import io
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from tally import kit
from tally.model import NotClean, Probe, expect

MERGE = "deploy: phyjudge merge outputs and adapters"
SERVE = "deploy: phyjudge serve file:// URLs and request fields"
BASELINE = "deploy: baseline updates that would lose a file or entries"
REFUSED = expect("returned", names="merged")


def _adapter(folder: Path) -> Path:
    adapter = folder / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "b"}))
    (adapter / "adapter_model.safetensors").write_bytes(b"{}")
    return adapter


def _merge_into(make: Callable[[Path], None]) -> Callable[[Path], str]:
    """``phyjudge merge --out merged`` with ``merged`` made by ``make``; the folder's
    entries must be as they were."""

    def run(folder: Path) -> str:
        from pytest_phyjudge.cli.main import main

        adapter = _adapter(folder)
        out = folder / "merged"
        make(out)
        before = sorted(os.listdir(folder))
        notes = kit.snapshot(out / "notes.txt", out)
        err = io.StringIO()
        with redirect_stdout(io.StringIO()), redirect_stderr(err):
            given = out / "checkpoint" if make is _under_a_file else out
            code = main(["merge", "--adapter-dir", str(adapter), "--out", str(given)])
        if sorted(os.listdir(folder)) != before or kit.changed(notes):
            raise NotClean("the merge changed what the output path held")
        if code == 0:
            raise NotClean("the merge said it wrote over a path it does not own")
        return err.getvalue()

    return run


def _user_files(out: Path) -> None:
    out.mkdir()
    (out / "notes.txt").write_text("mine")


def _under_a_file(out: Path) -> None:
    """``merged`` is a file; the merge is asked for ``merged/checkpoint`` (see below)."""
    out.write_text("a user's file")


def _forged(out: Path) -> None:
    out.mkdir()
    (out / "phyjudge_provenance.json").write_text('{"adapter_sha256": "' + "0" * 64 + '"}')


def _rubric(make: Callable[[Path, Path], None], said: str) -> Callable[[Path], str]:
    """The merge's choice of adapter files to copy, with ``make`` planting one."""

    def run(folder: Path) -> str:
        from pytest_phyjudge.deploy.merge import rubric_files

        adapter = _adapter(folder)
        token = kit.secret(folder)
        make(adapter, folder / "secret.txt")
        try:
            files = rubric_files(adapter)
        except Exception as exc:
            if token in str(exc) or said not in str(exc):
                raise NotClean(f"the refusal does not say {said!r}, or shows the secret") from None
            return str(exc)
        if any(token in text for text in files.values()):
            raise NotClean("a file out of the adapter would be copied into the checkpoint")
        raise NotClean("a rubric file that is not the adapter's own was accepted")

    return run


def _served(name: str, url: Callable[[Path], str] | None = None, raw: bytes | None = None):
    """A chat request to ``phyjudge serve``'s server; clean is a 400 naming the problem."""

    def run(folder: Path) -> str:
        from pytest_phyjudge import ScriptedJudge
        from pytest_phyjudge.deploy.server import JudgeServer

        root = folder / "media"
        root.mkdir()
        (root / "folder.mp4").mkdir()
        (root / "loop.mp4").symlink_to(root / "loop.mp4")
        os.mkfifo(root / "pipe.mp4")
        token = kit.secret(folder)
        (root / "out.mp4").symlink_to(folder / "secret.txt")
        if raw is None:
            content = [{"type": "video_url", "video_url": {"url": url(root)}}]
            content.append({"type": "text", "text": 'Answer {"gravity": <1-5>}'})
            body = {"model": "phyjudge", "messages": [{"role": "user", "content": content}]}
            payload = json.dumps(body).encode()
        else:
            payload = raw
        judge = ScriptedJudge({"*": 4}, name="s")
        with JudgeServer(judge, serial=True, media_root=root) as server:
            request = urllib.request.Request(
                server.url + "/v1/chat/completions", data=payload, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=20) as reply:
                    status, text = reply.status, reply.read().decode()
            except urllib.error.HTTPError as exc:
                status, text = exc.code, exc.read().decode()
        if token in text:
            raise NotClean("the reply shows a file outside the media root")
        if status != 400:
            raise NotClean(f"{name}: HTTP {status}, not a 400 naming the problem: {text[:200]}")
        return text

    return run


def _get_with_body(folder: Path) -> str:
    """A GET to /v1/models whose body is a second request: answered, it was smuggled."""
    import socket

    from pytest_phyjudge import ScriptedJudge
    from pytest_phyjudge.deploy.server import JudgeServer

    inner = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    head = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(inner)
    with JudgeServer(ScriptedJudge({"*": 4}, name="s"), read_timeout=5) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=20) as sock:
            sock.sendall(head + inner)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
    if received.count(b"HTTP/1.1 ") != 1:
        raise NotClean("the GET's body was answered as a second request")
    return received.decode("latin-1")[:200]


def _bodies_at_once(folder: Path) -> str:
    """Two clients' bodies at once past the server's cap on bodies held (set small here):
    the second must be told to wait (429), not read into memory beside the first."""
    import socket
    import time

    from pytest_phyjudge import ScriptedJudge
    from pytest_phyjudge.deploy.server import JudgeServer

    held = b"{" + b" " * 798 + b"}"
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\n\r\n"
    with JudgeServer(ScriptedJudge({"*": 4}, name="s"), serial=False, read_timeout=5) as server:
        server.max_body_bytes = 1000
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=20) as first:
            first.sendall(head + held[:10])
            time.sleep(0.3)
            with socket.create_connection((host, int(port)), timeout=20) as second:
                second.sendall(head + held)
                reply = second.recv(200).decode("latin-1")
            first.sendall(held[10:])
    if not reply.startswith("HTTP/1.1 429"):
        raise NotClean(f"a second body past the cap was read: {reply[:60]!r}")
    return reply


def _changed_meanwhile(made: bool) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from pytest_phyjudge.regression.baseline import Entry, load_baseline, write_baseline
        from pytest_phyjudge.regression.baseline_update import BaselineRequest, update_baseline

        judge = {"kind": "scripted", "adapter": "scripted:s"}
        path = folder / "baseline.json"
        if made:
            write_baseline(path, judge, {("s", "a", "gravity"): Entry(3.0)})
        base = load_baseline(path)
        write_baseline(path, judge, {("s", "b", "gravity"): Entry(5.0)})  # another run
        run_entries = {("s", "c", "gravity"): Entry(4.0)}
        request = BaselineRequest(update=True)
        update = update_baseline(base, run_entries, judge, request, complete=True)
        if ("s", "b", "gravity") not in load_baseline(path).entries:
            raise NotClean("the other run's entry was lost from the baseline")
        if not update.write_failed:
            raise NotClean("the update was refused but the run would pass")
        return update.refusal or ""

    return run


def _report_is_baseline(folder: Path) -> str:
    """``--phyjudge-report`` and ``--phyjudge-baseline`` naming one file, with an update:
    whichever is written last replaces the other."""
    kit.suite(folder, cases=("a",))
    code, out = kit.run_pytest(
        folder,
        *("--phyjudge-judge", "judges:make", "--phyjudge-update-baseline"),
        *("--phyjudge-report", "same.json", "--phyjudge-baseline", "same.json"),
    )
    if code == 0:
        raise NotClean("the run passed with the report and the baseline in one file")
    return out


def deploy_probes() -> list[Probe]:
    merges = [
        ("merge into a folder of the user's files", _user_files),
        ("merge into a folder with a forged provenance file", _forged),
        ("merge into a file", lambda out: out.write_text("a user's file")),
        ("merge into a FIFO", lambda out: os.mkfifo(out)),
        ("merge into a dangling symlink", lambda out: out.symlink_to(out.parent / "nowhere")),
        ("merge into a symlink loop", lambda out: out.symlink_to(out)),
        ("merge into a folder under a file", _under_a_file),
    ]
    served = [
        ("file:// URL naming a folder", lambda root: f"file://{root}/folder.mp4"),
        ("file:// URL naming a symlink loop", lambda root: f"file://{root}/loop.mp4"),
        ("file:// URL naming a FIFO", lambda root: f"file://{root}/pipe.mp4"),
        ("file:// URL naming a missing file", lambda root: f"file://{root}/missing.mp4"),
        ("file:// URL with a NUL byte", lambda root: f"file://{root}/a%00b.mp4"),
        ("file:// URL naming another host", lambda root: f"file://evil.example{root}/x.mp4"),
        ("file:// URL linked out of the root", lambda root: f"file://{root}/out.mp4"),
        ("file:// URL with ../ out of the root", lambda root: f"file://{root}/../secret.txt"),
    ]
    messages = b'"messages": [{"role": "user", "content": "hi"}]'
    bodies = [  # (name, start of the body, what the refusal must name)
        (
            "JSON model key twice, served name last",
            b'{"model": "x", "model": "phyjudge", ',
            "twice",
        ),
        (
            "JSON model key twice, served name first",
            b'{"model": "phyjudge", "model": "x", ',
            "twice",
        ),
        ("stream: true (a reply that is not streamed)", b'{"stream": true, ', "'stream'"),
        ("n: 5 (one reply instead of five)", b'{"n": 5, ', "'n'"),
    ]
    return [
        *(Probe(MERGE, name, _merge_into(make), REFUSED) for name, make in merges),
        Probe(
            MERGE,
            "adapter infer.py linked out of the snapshot",
            _rubric(lambda a, s: (a / "infer.py").symlink_to(s), "link out"),
            expect("returned", names="infer.py"),
        ),
        Probe(
            MERGE,
            "adapter template that is a FIFO",
            _rubric(lambda a, s: os.mkfifo(a / "subq+human.yaml"), "pipe"),
            expect("returned", names="subq+human.yaml"),
        ),
        *(Probe(SERVE, name, _served(name, url), expect("returned")) for name, url in served),
        *(
            Probe(
                SERVE,
                name,
                _served(name, raw=head + messages + b"}"),
                expect("returned", names=said),
            )
            for name, head, said in bodies
        ),
        Probe(SERVE, "GET whose body is a second request", _get_with_body, expect("returned")),
        Probe(SERVE, "two bodies at once past the cap", _bodies_at_once, expect("returned")),
        Probe(
            BASELINE,
            "update over a baseline another run updated",
            _changed_meanwhile(True),
            expect("returned", names="changed"),
        ),
        Probe(
            BASELINE,
            "update over a baseline another run created",
            _changed_meanwhile(False),
            expect("returned", names="changed"),
        ),
        Probe(
            BASELINE,
            "report and baseline in one file",
            _report_is_baseline,
            expect("returned", names="--phyjudge-baseline"),
        ),
    ]
