"""What hostile judge servers cost the client: time and memory until a reply is refused.

    python benchmarks/bench_reply_cap.py

Each server runs in a child process on 127.0.0.1 (so the client's memory is its own), and
answers every request with one hostile reply: a 1 MB gzip bomb (1 GiB inflated), 500 MB of
JSON whitespace with and without a Content-Length, and JSON arrays nested 200,000 deep. The
client is the remote backend (``RemoteJudge.complete``, no retries) at the real cap
(``judges.remote.http.MAX_REPLY_BYTES``). Printed per reply: seconds to the error, the peak of
Python's allocations (tracemalloc), the growth of the process's peak RSS, and the error's
start. A script that prints figures, not a test.
"""

from __future__ import annotations

import http.server
import multiprocessing
import resource
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

GIB = 2**30
BLOCK = b" " * 2**20


def _bomb() -> bytes:
    from pytest_phyjudge.testing.faults import compression_bomb

    return compression_bomb(GIB)


def _serve(kind: str, port: multiprocessing.Queue) -> None:  # in the child process
    bomb = _bomb() if kind == "bomb" else b""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            try:
                if kind == "bomb":
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(bomb)))
                    self.end_headers()
                    self.wfile.write(bomb)
                elif kind == "deep":
                    body = b"[" * 200_000 + b"]" * 200_000
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    if kind == "500 MB, Content-Length":
                        self.send_header("Content-Length", str(500 * 2**20))
                    self.end_headers()
                    for _ in range(500):
                        self.wfile.write(BLOCK)
            except OSError:
                pass  # the client hung up

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    port.put(server.server_address[1])
    server.serve_forever()


def _measure(kind: str, connect: Callable[[str], Any]) -> None:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    child = multiprocessing.Process(target=_serve, args=(kind, queue), daemon=True)
    child.start()
    url = f"http://127.0.0.1:{queue.get(timeout=60)}"
    judge = connect(url)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    try:
        outcome: object = judge.complete({"model": "phyjudge", "messages": []})
    except Exception as exc:
        outcome = exc
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    judge.close()
    child.terminate()
    child.join()
    print(
        f"{kind:24s} {seconds:6.2f} s  python peak {peak / 2**20:6.1f} MiB  "
        f"peak RSS +{grown / 1024:6.1f} MiB  {type(outcome).__name__}: {str(outcome)[:110]}"
    )


def main() -> None:
    from pytest_phyjudge.engine.judgment import JudgeIdentity
    from pytest_phyjudge.engine.rubric import load_rubric
    from pytest_phyjudge.judges.remote.http import MAX_REPLY_BYTES
    from pytest_phyjudge.judges.remote.judge import RemotePlan, RemoteSettings
    from pytest_phyjudge.judges.settings import JudgeConfig

    def connect(url: str) -> Any:
        plan = RemotePlan(
            remote=RemoteSettings(urls=(url,), retries=0, read_timeout=60.0),
            identity=JudgeIdentity(kind="scripted", adapter="bench"),
            rubric=load_rubric(None),
            config=JudgeConfig(fps=2, max_pixels=1),
        )
        return plan.load()

    print(f"reply cap: {MAX_REPLY_BYTES / 2**20:g} MiB decoded")
    for kind in ("bomb", "500 MB, Content-Length", "500 MB, no length", "deep"):
        _measure(kind, connect)


if __name__ == "__main__":
    main()
