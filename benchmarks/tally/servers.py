"""Judge servers that change model mid-run or answer with bombs (issue 19, items 5, 7, 8): a
server of our own in a thread, a pytest run against it in a child whose peak memory is
measured (over 2.5 GiB resident counts as not clean).

Clean for a change of model: the second model's name appears in the run's output or its
report (the change was noticed). Clean for a bomb: no traceback, no crash, no hang, memory
under the cap.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tally import kit
from tally.model import NotClean, Probe, expect

CLS = "judge servers: model changes and bombs"
ANY = expect("returned", "error")
_BOMB: dict[str, bytes] = {}


def _gzip_bomb() -> bytes:
    """1 GiB of JSON whitespace, gzip-compressed to about 1 MiB."""
    if "bomb" not in _BOMB:
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        chunk = b" " * 2**20
        parts = [packer.compress(chunk) for _ in range(1024)]
        _BOMB["bomb"] = b"".join(parts) + packer.flush()
    return _BOMB["bomb"]


def _huge(n: int, axis: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "m", "choices": [{"message": {"content": "'
        for _ in range(300):
            yield b"x" * 2**20
        yield b'"}}]}'

    return 200, {}, chunks()


def _switch(n: int, axis: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    model = "m" if n < 2 else "other-model-b"
    return 200, {}, kit.ok_reply(axis, 4, model=model)


def _fingerprint(n: int, axis: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    fp = "fp-first" if n < 2 else "fp-second-build"
    return 200, {}, kit.ok_reply(axis, 4, system_fingerprint=fp)


def _deep(n: int, axis: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, b'{"choices": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"


def _bomb(n: int, axis: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Encoding": "gzip"}, _gzip_bomb()


def _models_switch(n: int) -> bytes:
    return kit.models_reply() if n < 1 else kit.models_reply(adapter="acme/other-model-b")


def _served(
    chat: kit.Answer | None,
    models: Callable[[int], bytes] | None = None,
    noticed: str | None = None,
) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        kit.suite(folder, cases=("a",))
        with kit.FakeServer(chat, models) as server:
            code, out = kit.run_pytest(
                folder,
                "--phyjudge-url",
                server.url,
                "--phyjudge-retries",
                "0",
                "--phyjudge-concurrency",
                "1",
                "--phyjudge-timeout",
                "20",
                "--phyjudge-report",
                "scores.json",
                limit=40.0,
            )
        if kit.traceback_in(out):
            raise NotClean(f"traceback: {kit.traceback_in(out)}")
        if noticed is not None:
            report = folder / "scores.json"
            shown = out + (report.read_text(errors="replace") if report.is_file() else "")
            if noticed not in shown:
                raise NotClean(f"the change to {noticed!r} went unnoticed (pytest exit {code})")
        return f"exit {code}\n{out}"

    return run


def server_probes() -> list[Probe]:
    probes = {
        "reply_model_changes": _served(_switch, noticed="other-model-b"),
        "models_endpoint_changes": _served(None, _models_switch, noticed="acme/other-model-b"),
        "fingerprint_changes": _served(_fingerprint, noticed="fp-second-build"),
        "reply_json_200k_deep": _served(_deep),
        "reply_gzip_bomb_1gib": _served(_bomb),
        "reply_300_mib": _served(_huge),
        "models_json_200k_deep": _served(
            None, lambda n: b'{"data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
        ),
    }
    return [Probe(CLS, f"server_{name}", run, ANY, None, 45.0) for name, run in probes.items()]


__all__ = ["json", "server_probes"]
