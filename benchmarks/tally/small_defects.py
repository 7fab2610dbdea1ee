"""Round 5's smaller defects as inputs: a stand-in judge's scores in the Markdown and JSON of
``compare``/``agree``/``leaderboard`` (must say so, not only on stderr), two runs judged by
differently fingerprinted servers compared (must say so beside the verdicts), pytest with
``-p no:cacheprovider`` (must write nothing under ``.pytest_cache``), and a canary
tolerance given to pytest (must be taken, or refused naming the flag).

Clean: the asked output itself (stdout, the format a PR comment or a script reads) carries
what a user must know; nothing is written where the user turned writing off.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from tally import kit
from tally.model import NotClean, Probe, expect

STAND_IN = "small defects: stand-in scores in compare/agree/leaderboard"
SERVER = "small defects: another judge server in compare"
NO_CACHE = "small defects: pytest -p no:cacheprovider"
CANARY = "small defects: canary tolerances on pytest"
ANY = expect("returned", "error")


def _scores(path: Path, kind: str = "local", server: dict[str, str] | None = None) -> str:
    results = [
        {
            "video": f"c{i}",
            "prompt": "A ball falls.",
            "physical_laws": ["gravity"],
            "SA": 1 + i % 5,
            "physical": {"laws": {"gravity": {"score": 1 + (i * 2) % 5, "status": "scored"}}},
        }
        for i in range(8)
    ]
    meta: dict[str, Any] = {"judge": {"kind": kind, "adapter": "judge-x"}}
    if server is not None:
        meta["judge_server"] = server
    path.write_text(json.dumps({"meta": meta, "results": results}), encoding="utf-8")
    return str(path)


def _stdout(*argv: str) -> tuple[int, str, str]:
    """``phyjudge ARGV``: its exit status, stdout (the asked format) and stderr, apart."""
    from pytest_phyjudge.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def _names(data: Any, path: str, kind: str) -> bool:
    """Some object of the JSON names the file and its judge's kind together (a note that
    the two runs' judges differ does not say which file is the stand-in's)."""
    if isinstance(data, dict):
        values = [v for v in data.values() if isinstance(v, str)]
        if path in values and kind in values:
            return True
        return any(_names(v, path, kind) for v in data.values())
    if isinstance(data, list):
        return any(_names(v, path, kind) for v in data)
    return False


def _stand_in(command: str, fmt: str, kind: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        real = _scores(folder / "real.json")
        fake = _scores(folder / "fake.json", kind=kind)
        code, out, err = _stdout(
            command, real, fake, "--format", fmt, "--label", "r", "--label", "f"
        )
        named = (
            _names(json.loads(out), fake, kind) if fmt == "json" else fake in out and kind in out
        )
        if code == 0 and not named:
            raise NotClean(f"the {fmt} output presents the {kind} judge's scores as real")
        return f"exit {code}\n{out}{err}"

    return run


def _servers(fmt: str, field: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        first = {"model": "phyjudge", "system_fingerprint": "fp_first"}
        second = {**first, field: "fp_second" if field == "system_fingerprint" else "other-m"}
        a = _scores(folder / "a.json", server=first)
        b = _scores(folder / "b.json", server=second)
        code, out, err = _stdout("compare", a, b, "--format", fmt)
        if code == 0 and second[field] not in out:
            raise NotClean(f"the {fmt} output says nothing of B's other judge server ({field})")
        return f"exit {code}\n{out}{err}"

    return run


#: A judge the judgment cache records: scripted replies under a kind that is cached.
RECORDED = """
from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge.engine.judgment import JudgeIdentity

def make():
    judge = ScriptedJudge({"*": 4}, name="tally-recorded")
    judge.identity = JudgeIdentity(kind="local", adapter="tally/recorded", adapter_sha256="w")
    return judge
"""


def _no_cacheprovider(*extra: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        kit.suite(folder, cases=("a",))
        (folder / "judges.py").write_text(RECORDED, encoding="utf-8")
        code, out = kit.run_pytest(folder, "--phyjudge-judge", "judges:make", *extra)
        if (folder / ".pytest_cache").exists():
            raise NotClean("wrote .pytest_cache with the cacheprovider off")
        return f"exit {code}\n{out}"

    return run


def _canary_tolerance(value: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        kit.suite(folder, cases=("a",))
        code, out = kit.run_pytest(
            folder, "--phyjudge-judge", "judges:make", "--phyjudge-canary-max-tv", value
        )
        if value == "0.3" and code != 0:
            raise NotClean("pytest does not take the canary tolerance the command takes")
        if value != "0.3" and (code == 0 or "canary-max-tv" not in out):
            raise NotClean(f"a tolerance of {value} was not refused naming its flag")
        return f"exit {code}\n{out}"

    return run


def small_defect_probes() -> Iterator[Probe]:
    for command in ("compare", "agree", "leaderboard"):
        for fmt in ("markdown", "json"):
            for kind in ("tiny", "scripted"):
                run = _stand_in(command, fmt, kind)
                yield Probe(STAND_IN, f"stand_in_{command}_{fmt}_{kind}", run, ANY, None, 20.0)
    for fmt in ("text", "markdown", "json"):
        for field in ("system_fingerprint", "model"):
            yield Probe(SERVER, f"server_{field}_{fmt}", _servers(fmt, field), ANY, None, 20.0)
    yield Probe(NO_CACHE, "no_cacheprovider_run", _no_cacheprovider(), ANY, None, 40.0)
    for mode in ("only", "refresh"):
        run = _no_cacheprovider("--phyjudge-cache-mode", mode)
        yield Probe(NO_CACHE, f"no_cacheprovider_mode_{mode}", run, ANY, None, 40.0)
    for value in ("0.3", "2", "nan", "-1"):
        name = f"canary_max_tv_{value.replace('.', '_').replace('-', 'minus')}"
        yield Probe(CANARY, name, _canary_tolerance(value), ANY, None, 40.0)
