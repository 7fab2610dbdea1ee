"""Probes tried one after another in a child process; the parent watches each one's time,
and when one hangs it kills the child and starts another for the rest."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from tally.model import Hung, NotClean, Outcome, Probe, judge_outcome

BENCHMARKS = Path(__file__).resolve().parents[1]


def run_probes(folder: Path, probes: Sequence[Probe]) -> list[Outcome]:
    """Try each probe in a child; a probe that hangs or kills its child is one outcome."""
    by_name = {p.name: p for p in probes}
    results: dict[str, tuple[list[str], str, float, str | None]] = {}
    todo = [p.name for p in probes]
    while todo:
        for name, result in _child(folder, todo, by_name):
            results[name] = result
        todo = [name for name in todo if name not in results]
    outcomes = []
    for p in by_name.values():
        kinds, text, seconds, checked = results[p.name]
        outcomes.append(
            judge_outcome(
                p.cls, p.name, kinds, text, seconds, p.want, folder / p.name, checked, p.limit
            )
        )
    return outcomes


def _child(folder: Path, names: list[str], by_name: dict[str, Probe]):
    """Yield (name, (kinds, text, seconds)) as the child reports; the one it was on when it
    hung or died gets "hung" or "crashed"."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(BENCHMARKS), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tally.probe_run", str(folder), *names],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()  # read raw: a buffered reader hides lines from select
    pending = b""
    current, started = None, time.monotonic()
    while True:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            data = os.read(fd, 1 << 20)
            if not data:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:  # a probe wrote to the real stdout: not a record
                    continue
                if record["event"] == "start":
                    current, started = record["name"], time.monotonic()
                else:
                    current = None
                    result = (record["kinds"], record["text"], record["seconds"], record["checked"])
                    yield record["name"], result
        elif current is not None and time.monotonic() - started > by_name[current].limit:
            os.killpg(proc.pid, 9)
            proc.wait()
            yield current, (["hung"], "", time.monotonic() - started, None)
            return
    proc.wait()
    if current is not None:
        died = f"exit status {proc.returncode}"
        yield current, (["crashed"], died, time.monotonic() - started, None)


def _try(probe: Probe, folder: Path) -> tuple[list[str], str, str | None]:
    """Run one probe: what it returned, or the PhyJudgeError a user would read; anything
    else escaping is a crash, shown as the traceback a user would see. Then its outcome
    check, on what it left behind."""
    from pytest_phyjudge._exceptions import PhyJudgeError

    folder.mkdir(parents=True, exist_ok=True)
    captured = io.StringIO()
    found = None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            with redirect_stdout(captured), redirect_stderr(captured):
                text, kind = probe.run(folder), "returned"
        except PhyJudgeError as exc:
            text, kind = str(exc), "error"
        except Hung as exc:
            text, kind = str(exc), "hung"
        except NotClean as exc:
            text, kind, found = "", "returned", str(exc)
        except BaseException:
            text, kind = traceback.format_exc(), "crash"
    shown = [f"warning: {w.category.__name__}: {w.message}" for w in seen]
    full = "\n".join([text, captured.getvalue(), *shown])
    checked = found
    if checked is None and probe.check is not None and kind != "hung":
        try:
            checked = probe.check(folder, full)
        except Exception as exc:  # the check itself could not look: say so, count it
            checked = f"outcome check failed: {type(exc).__name__}: {exc}"
    return [kind], full, checked


def _main(argv: list[str]) -> None:
    from tally.registry import all_probes

    folder, names = Path(argv[0]), argv[1:]
    probes = {p.name: p for p in all_probes()}
    os.chdir(folder)
    for name in names:
        print(json.dumps({"event": "start", "name": name}), flush=True)
        started = time.monotonic()
        kinds, text, checked = _try(probes[name], folder / name)
        seconds = time.monotonic() - started
        record = {"event": "done", "name": name, "kinds": kinds, "text": text}
        record.update(seconds=seconds, checked=checked)
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
