"""Many hostile suites in one pytest session: a recorder plugin writes each file's results as
they come, so each input's outcome is told apart, and a hang is pinned to its file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tally.model import LIMIT_S, Outcome, SuiteInput, judge_outcome

#: ``tally_recorder.py``: one JSON line per collected file and per test phase that reports.
RECORDER = """
import json, time

def _write(config, **record):
    with open(config.getini("tally_records"), "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\\n")

def pytest_addoption(parser):
    parser.addini("tally_records", "where the tally's records go")

def pytest_collectstart(collector):
    _write(collector.config, event="start", file=collector.path.name, t=time.time())

def pytest_runtest_logstart(nodeid, location):
    _write(CONFIG[0], event="start", file=nodeid.split("::")[0], t=time.time())

CONFIG = []

def pytest_configure(config):
    CONFIG.append(config)

def pytest_collectreport(report):
    kind = "error" if report.failed else "collected"
    _write(CONFIG[0], event="done", file=report.nodeid.split("::")[0], kind=kind,
           text=report.longreprtext, t=time.time())

def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        kind = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
        kind = "error" if report.when != "call" and report.failed else kind
        _write(CONFIG[0], event="done", file=report.nodeid.split("::")[0], kind=kind,
               text=report.longreprtext, t=time.time(), seconds=report.duration)
"""

SUFFIX = ".phyjudge.yaml"


def write_inputs(folder: Path, inputs: Sequence[SuiteInput]) -> None:
    for item in inputs:
        for rel, content in item.extra:
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if callable(content):
                content(path)
            else:
                path.write_bytes(content)
        data = item.text.encode("utf-8") if isinstance(item.text, str) else item.text
        (folder / f"{item.name}{SUFFIX}").write_bytes(data)
    (folder / "tally_recorder.py").write_text(RECORDER, encoding="utf-8")


def run_batch(
    folder: Path, inputs: Sequence[SuiteInput], judge: str, extra_args: Sequence[str] = ()
) -> list[Outcome]:
    """Run every suite in ``folder`` in one session (again without a file that hung)."""
    write_inputs(folder, inputs)
    lost: dict[str, str] = {}  # file -> "hung" (killed) or "crashed" (the session died)
    for _attempt in range(len(inputs) + 1):
        records, output, killed = _session(folder, judge, list(lost), extra_args)
        stalled = _stalled(records)
        if stalled is None:
            break
        lost[stalled] = "hung" if killed else "crashed"
    return [_outcome(folder, item, records, output, lost) for item in inputs]


def _session(
    folder: Path, judge: str, ignored: list[str], extra_args: Sequence[str]
) -> tuple[list[dict], str, bool]:
    records = folder / "records.jsonl"
    records.unlink(missing_ok=True)
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tally_recorder"]
    args += ["-p", "pytest_phyjudge.plugin.hooks", "--continue-on-collection-errors", "-q"]
    args += ["-o", f"tally_records={records}", "--phyjudge-judge", judge, *extra_args]
    args += [f"--ignore={folder / name}" for name in ignored]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_ADDOPTS": ""}
    env["PYTHONPATH"] = os.pathsep.join([str(folder), env.get("PYTHONPATH", "")])
    log = folder / "session.log"
    killed = False
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, cwd=folder, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        while proc.poll() is None:
            time.sleep(0.5)
            if _stalled(_read(records), now=time.time()) is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                killed = True
    return _read(records), log.read_text(errors="replace"), killed


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def _stalled(records: list[dict], now: float | None = None) -> str | None:
    """The file whose last start has had no result for ``LIMIT_S`` (after the session
    ended: whose start was the last record, the session having been killed)."""
    if not records or records[-1]["event"] != "start":
        return None
    last = records[-1]
    if now is None or now - last["t"] > LIMIT_S:
        return last["file"]
    return None


def _outcome(
    folder: Path, item: SuiteInput, records: list[dict], output: str, lost: dict[str, str]
) -> Outcome:
    file = f"{item.name}{SUFFIX}"
    mine = [r for r in records if r["file"] == file]
    done = [r for r in mine if r["event"] == "done"]
    kinds = [r["kind"] for r in done if r["kind"] != "collected"]
    kinds += [lost[file]] if file in lost else []
    text = "\n".join(r["text"] for r in done)
    internal = [line for line in output.splitlines() if "INTERNALERROR" in line]
    if any(file in line or item.name in line for line in internal):
        text += "\nINTERNALERROR"
    seconds, started = 0.0, None
    for record in mine:  # each result's time since the start before it
        if record["event"] == "start":
            started = record["t"]
        elif started is not None:
            seconds, started = seconds + record["t"] - started, None
    return judge_outcome(item.cls, item.name, kinds, text, seconds, item.want, folder)


def batch_problem(folder: Path) -> str | None:
    """An INTERNALERROR of the session no input was named in, or None."""
    log = folder / "session.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    internal = [line for line in text.splitlines() if "INTERNALERROR" in line]
    return internal[-1] if internal else None
