"""What the outcome checks and the new probes share: secrets to leak, snapshots of a user's
files, pytest sessions in a child under a memory cap, a judge server of our own, and the
tests for live Markdown, live HTML and raw terminal controls.

Every check here returns why the outcome is NOT clean, or None; none depends on the
wording of a message, a new flag's name or the name of a file a fix might choose.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html.parser
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tally.model import Hung

GB = 1024**3

# --------------------------------------------------------------------------- secrets


def secret(folder: Path, name: str = "secret.txt") -> str:
    """Write a file holding a unique token (outside any output folder); return the token."""
    token = f"SECRET-{uuid.uuid4()}"
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"password={token}\n", encoding="utf-8")
    return token


def _data_urls(data: bytes) -> Iterator[bytes]:
    for found in re.finditer(rb"data:[^,\"'\s]*;base64,([A-Za-z0-9+/=]+)", data):
        with contextlib.suppress(ValueError):
            yield base64.b64decode(found.group(1) + b"==")


def leak(token: str, text: str, *roots: Path) -> str | None:
    """Where ``token`` was found: in the printed text, or in any file under ``roots``
    (as bytes, or inside a base64 data: URL)."""
    needle = token.encode()
    if token in text:
        return "a secret's bytes were printed"
    for root in roots:
        for path in _files(root):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if needle in data or any(needle in d for d in _data_urls(data)):
                return f"a secret's bytes were copied into {path.relative_to(root.parent)}"
    return None


def _files(root: Path) -> Iterator[Path]:
    if not root.exists() or root.is_symlink():
        return
    for dirpath, _dirs, files in os.walk(root):
        for file in files:
            path = Path(dirpath) / file
            if path.is_file() and not path.is_symlink():
                yield path


def too_big(root: Path, limit: int = 50 * 2**20) -> str | None:
    """An output folder holding more than ``limit`` bytes (a huge input copied in)."""
    total = sum(p.stat().st_size for p in _files(root))
    return f"the output folder holds {total // 2**20} MiB" if total > limit else None


# --------------------------------------------------------------------------- user files


def snapshot(*paths: Path) -> dict[Path, bytes | None]:
    """The bytes of each file (None where there is none), to compare after the run."""
    return {p: p.read_bytes() if p.is_file() else None for p in paths}


def changed(before: dict[Path, bytes | None]) -> str | None:
    """The first of the user's files deleted or changed since ``snapshot``."""
    for path, data in before.items():
        now = path.read_bytes() if path.is_file() else None
        if data is not None and now is None:
            return f"the user's file {path.name} was deleted"
        if now != data:
            return f"the user's file {path.name} was changed"
    return None


def user_files(folder: Path, *rels: str) -> list[Path]:
    """Make a user's files (distinct bytes each) at ``rels`` under ``folder``."""
    made = []
    for rel in rels:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"the user's own {rel} {uuid.uuid4()}\n".encode() * 3)
        made.append(path)
    return made


# --------------------------------------------------------------------------- media checks

_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LIVE_MD = (
    (re.compile(r"(?<!\\)!(?<!\\)\["), "an image ![...]"),
    (re.compile(r"(?<!\\)\[[^\]\n]*(?<!\\)\]\("), "a link [...](...)"),
    (
        re.compile(
            r"(?<![\\])<\s*(?!br\s*/?>)(img|a|script|iframe|details|svg|!--|/?[a-z]+[\s>])",
            re.I,
        ),
        "raw HTML",
    ),
    (re.compile(r"(?<![\w\\`&;/])@[A-Za-z][\w-]*(?:/[\w-]+)?"), "a live @mention"),
)


def live_markdown(text: str, marker: str = "INJECTED") -> str | None:
    """A construct of a hostile name that is live in GitHub Markdown: an image, a link,
    raw HTML, a mention, a table row whose cells a ``|`` broke, a line a newline began,
    or a terminal control byte. Code spans are text, so they are left out first."""
    if err := raw_controls(text):
        return err
    for line in text.splitlines():
        if line.lstrip().startswith(("# " + marker, "#" + marker, marker)):
            return f"a name's newline started a line of its own: {line[:60]!r}"
    plain = "\n".join(_CODE_SPAN.sub("", line) for line in text.splitlines())
    for pattern, what in _LIVE_MD:
        if found := pattern.search(plain):
            at = plain[max(0, found.start() - 20) : found.end() + 20]
            return f"live Markdown ({what}): {at!r}"
    return broken_table(text)


def _cells(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def broken_table(text: str) -> str | None:
    """A Markdown table whose rows do not all have the header's number of cells."""
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2 and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", block[1]):
            want = _cells(block[0])
            for row in block[2:]:
                if _cells(row) != want:
                    return f"a name's '|' broke a table row: {row[:80]!r}"
        block = []
    return None


_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")


def raw_controls(text: str) -> str | None:
    """A raw terminal control (ESC, CR, backspace, CSI ...) in text meant for a terminal."""
    found = _CONTROLS.search(text)
    return f"a raw control byte {found.group(0)!r} reached the output" if found else None


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            value = re.sub(r"[\s\x00-\x1f]", "", value or "").lower()
            if name in ("href", "src", "poster", "action", "formaction", "xlink:href", "data"):
                if value.startswith(("javascript:", "vbscript:", "data:text/html")):
                    self.problems.append(f'live {name}="{value[:40]}" on <{tag}>')
                if name != "href" and value.startswith(("http:", "https:", "//")):
                    self.problems.append(f'<{tag} {name}="{value[:40]}"> fetches from the web')
            if name.startswith("on") and "xss" in value:
                self.problems.append(f"an injected {name}= handler on <{tag}>")
        if tag in ("script", "iframe", "object", "embed") and any(
            "xss" in (v or "").lower() for _n, v in attrs
        ):
            self.problems.append(f"an injected <{tag}>")


def live_html(root: Path) -> str | None:
    """A live ``javascript:``/``data:text/html`` URL, a fetch from the web, or an
    injected handler or tag, in any HTML file under ``root``."""
    for path in _files(root):
        if path.suffix.lower() not in (".html", ".htm", ".svg"):
            continue
        parser = _Tags()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        if parser.problems:
            return f"{path.name}: {parser.problems[0]}"
    return None


# --------------------------------------------------------------------------- processes


def _cap(gb: float) -> Callable[[], None]:
    def limit() -> None:
        size = int(gb * GB)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return limit


MEMORY_SIGNS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")


def run_child(
    argv: list[str],
    folder: Path,
    *,
    env: dict[str, str] | None = None,
    limit: float = 30.0,
    memory_gb: float = 2.5,
) -> tuple[int, str]:
    """Run ``argv`` in ``folder``: its exit status and output. Past ``limit`` seconds it is
    killed and Hung is raised; a peak resident size over ``memory_gb`` (measured by
    ``/usr/bin/time``), or a death by signal or MemoryError, raises MemoryError (a crash the
    tally counts). A hard address-space cap of 12 GB keeps the machine safe."""
    full = {**os.environ, **(env or {})}
    full["PYTHONPATH"] = os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])
    peak_file = folder / f".peak-{uuid.uuid4().hex}"
    timed = ["/usr/bin/time", "-f", "%M", "-o", str(peak_file), *argv]
    proc = subprocess.Popen(
        timed if Path("/usr/bin/time").exists() else argv,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full,
        start_new_session=True,
        preexec_fn=_cap(12.0),
    )
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise Hung(f"{' '.join(argv[2:5])} ... still running after {limit:.0f} s") from None
    text = out.decode("utf-8", "replace")
    peak = 0.0
    with contextlib.suppress(OSError, ValueError):
        peak = int(peak_file.read_text().split()[-1]) / 2**20  # KiB -> GiB
        peak_file.unlink()
    if peak > memory_gb:
        raise MemoryError(f"the child peaked at {peak:.1f} GiB resident (limit {memory_gb} GiB)")
    died = proc.returncode < 0 or "Command terminated by signal" in text
    if died or any(sign in text for sign in MEMORY_SIGNS):
        raise MemoryError(f"the child died (status {proc.returncode}):\n{text[-2000:]}")
    return proc.returncode, text


def run_pytest(
    folder: Path, *args: str, env: dict[str, str] | None = None, limit: float = 30.0
) -> tuple[int, str]:
    """A pytest session with the plugin in ``folder`` (no colour, no other plugins)."""
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"]
    argv += ["-p", "pytest_phyjudge.plugin.hooks", "--color=no", "-q", *args]
    env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_ADDOPTS": "", **(env or {})}
    env.setdefault("GITHUB_STEP_SUMMARY", "")
    return run_child(argv, folder, env=env, limit=limit)


def phyjudge(folder: Path, *args: str, limit: float = 30.0) -> tuple[int, str]:
    """``phyjudge ARGS`` in a child process under the memory cap."""
    code = "import sys; from pytest_phyjudge.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return run_child([sys.executable, "-c", code, *args], folder, limit=limit)


# --------------------------------------------------------------------------- a project

JUDGES = """
from pytest_phyjudge import ScriptedJudge

def make():
    return ScriptedJudge({"*": 4}, name="scripted-tally")
"""


def clips(folder: Path, *names: str) -> None:
    """Small real clips, distinct bytes each (the report re-encodes them)."""
    from pytest_phyjudge.testing import write_test_video

    (folder / "v").mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(names):
        write_test_video(folder / "v" / f"{name}.mp4", seed=seed, frames=6)


def suite(
    folder: Path,
    name: str = "s",
    cases: tuple[str, ...] = ("a", "b"),
    laws: str = "gravity",
    suite_name: str | None = None,
) -> Path:
    """A suite file of ``cases`` (clips made under v/), and the scripted judge beside it."""
    clips(folder, *cases)
    (folder / "judges.py").write_text(JUDGES, encoding="utf-8")
    lines = [f"suite: {json.dumps(suite_name or name)}", "videos: v/{id}.mp4", "cases:"]
    for case in cases:
        lines += [f"  - id: {json.dumps(case)}", "    prompt: A ball falls.", f"    laws: [{laws}]"]
    path = folder / f"{name}.phyjudge.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


_TEMPLATE: dict[str, Any] = {}


def scores_template(scratch: Path) -> dict[str, Any]:
    """A real scores.json (two cases, contact sheets), made once per child by pytest."""
    if "data" not in _TEMPLATE:
        where = scratch / "_template"
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        suite(where)
        _code, _out = run_pytest(
            where, "--phyjudge-judge", "judges:make", "--phyjudge-report", "r/scores.json"
        )
        data = json.loads((where / "r" / "scores.json").read_text(encoding="utf-8"))
        _TEMPLATE.update(data=data, folder=where)
    return json.loads(json.dumps(_TEMPLATE["data"]))


def write_scores(folder: Path, change: Callable[[dict[str, Any]], Any] | None = None) -> Path:
    """scores.json in ``folder`` from the template (its sheets copied beside it), after
    ``change(data)`` edits it in place (or returns a replacement)."""
    data = scores_template(folder.parent)
    src = _TEMPLATE["folder"] / "r"
    for sheets in src.iterdir():
        if sheets.is_dir():
            shutil.copytree(sheets, folder / sheets.name, dirs_exist_ok=True)
    if change is not None:
        data = change(data) or data
    path = folder / "scores.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["results"]


# --------------------------------------------------------------------------- a judge server

Answer = Callable[[int, str, dict[str, Any]], tuple[int, dict[str, str], bytes | Iterator[bytes]]]


def ok_reply(axis: str, score: int, model: str = "m", **extra: Any) -> bytes:
    return json.dumps(
        {
            "id": "c",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": json.dumps({axis: score})},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
            **extra,
        }
    ).encode()


def models_reply(model: str = "m", adapter: str = "acme/judge-a", kind: str | None = None) -> bytes:
    provenance: dict[str, Any] = {"adapter": adapter, "revision": "r1"}
    if kind:
        provenance["kind"] = kind
    return json.dumps(
        {"object": "list", "data": [{"id": model, "object": "model", "phyjudge": provenance}]}
    ).encode()


def axis_of(body: dict[str, Any]) -> str:
    """The axis a chat request asks for: the last answer key its text shows."""
    keys = re.findall(r'\{\\"(\w+)\\":', json.dumps(body.get("messages")))
    return keys[-1] if keys else "SA"


class _QuietServer(ThreadingHTTPServer):
    """A client that refuses a reply hangs up: the connection's reset is the client's
    answer, which socketserver would print as a traceback of this (the probe's) process."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeServer:
    """An OpenAI-compatible judge server in a thread: ``models(n)`` answers the n-th
    ``GET /v1/models``, ``chat(n, axis, body)`` the n-th chat request (status, headers,
    body bytes or chunks)."""

    def __init__(
        self,
        chat: Answer | None = None,
        models: Callable[[int], bytes] | None = None,
    ) -> None:
        self.chat = chat or (lambda n, axis, body: (200, {}, ok_reply(axis, 4)))
        self.models = models or (lambda n: models_reply())
        self.counts = {"models": 0, "chat": 0}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, headers: dict[str, str], body: Any) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    # A client that refuses a reply closes the connection mid-write: that
                    # is the client's answer, not the server's fault to print.
                    with contextlib.suppress(OSError):
                        self.wfile.write(body)
                    return
                self.send_header("Connection", "close")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(OSError):
                    for chunk in body:
                        self.wfile.write(chunk)
                self.close_connection = True

            def do_GET(self) -> None:
                with outer.lock:
                    n = outer.counts["models"]
                    outer.counts["models"] += 1
                self._send(200, {}, outer.models(n))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer.lock:
                    n = outer.counts["chat"]
                    outer.counts["chat"] += 1
                self._send(*outer.chat(n, axis_of(body), body))

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def traceback_in(text: str) -> str | None:
    """The last line of a Python traceback or pytest INTERNALERROR in ``text``, or None."""
    if "Traceback (most recent call last)" not in text and "INTERNALERROR" not in text:
        return None
    errors = re.findall(r"^\w*(?:Error|Exception)\b.*$", text, re.MULTILINE)
    if errors:
        return errors[-1][:160]
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else "traceback"
