"""Judges that are not the judge they claim to be, for measuring what ``phyjudge canary check``
catches (tests/test_canary_detection.py and benchmarks/canary_detection.py): a copy of an
adapter whose LoRA does nothing, a copy that lost its prompt template, a scripted judge that
answers 4 to everything, and a server whose ``/v1/models`` names one judge while another
answers. For tests and benchmarks only: every one of them is built to be caught.

Each adapter copy lands in ``<dest>/adapter``, the folder name a canary file records, so only
what was changed differs from the original; the base model stays the original's.
"""

from __future__ import annotations

import io
import re
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_phyjudge.cli.main import main
from pytest_phyjudge.deploy.server import JudgeServer
from pytest_phyjudge.engine.rubric import TEMPLATE_FILE
from pytest_phyjudge.judges.scripted import ScriptedJudge
from pytest_phyjudge.judges.tiny.build import ensure_tiny_judge

#: ``--judge`` for a scripted judge that answers 4 on every axis (VideoPhy-2's issue #20).
ANSWERS_FOUR = "pytest_phyjudge.testing.impostors:answers_four"
_WEIGHTS = "adapter_model.safetensors"
_POOLED = re.compile(r"all\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", re.MULTILINE)
_COST = re.compile(r"cost: (\d+) judge calls in ([\d.]+) s")


def answers_four() -> ScriptedJudge:
    """A scripted judge (and named so) that answers 4 to every clip on every axis."""
    return ScriptedJudge({"*": 4}, name="answers-four")


def _copy_adapter(adapter: Path, dest: Path) -> Path:
    target = dest / "adapter"
    shutil.copytree(adapter, target)
    return target


def with_template(adapter: Path, template: Path) -> Path:
    """``adapter`` given ``template`` as its ``subq+human.yaml``, in place (the real adapter
    ships PhyGround's template, which differs from the project's bundled rubric)."""
    shutil.copyfile(template, adapter / TEMPLATE_FILE)
    return adapter


def without_template(adapter: Path, dest: Path) -> Path:
    """A copy of ``adapter`` without its prompt template: the judge falls back to the bundled
    rubric (with a RubricWarning), as it does for a snapshot or server that lacks the file."""
    target = _copy_adapter(adapter, dest)
    (target / TEMPLATE_FILE).unlink()
    return target


def zeroed_lora(adapter: Path, dest: Path) -> Path:
    """A copy of ``adapter`` with every ``lora_B`` weight zeroed: the LoRA then adds nothing,
    and the judge answers as its base model does, as a server that silently ignores the
    adapter would. Needs the ``[local]`` extra (safetensors, torch)."""
    from safetensors.torch import load_file, save_file

    target = _copy_adapter(adapter, dest)
    weights = load_file(target / _WEIGHTS)
    zeroed = [name for name in weights if "lora_B" in name]
    if not zeroed:
        raise ValueError(f"{adapter} holds no lora_B weights to zero")
    for name in zeroed:
        weights[name] = weights[name].clone().zero_()
    save_file(weights, target / _WEIGHTS)
    return target


@dataclass(frozen=True)
class Adapters:
    """The trusted judge's adapter and its impostors' copies of it."""

    #: The format-trained tiny judge, carrying the template it was given.
    reference: Path
    #: Its copy with every lora_B zeroed.
    zeroed: Path
    #: Its copy without a template (the bundled rubric stands in).
    bundled: Path


def tiny_adapters(folder: Path, template: Path) -> Adapters:
    """The format-trained tiny judge under ``folder/reference`` with ``template`` as its
    prompt template, and its impostor copies beside it."""
    reference = with_template(ensure_tiny_judge(folder / "reference"), template)
    return Adapters(
        reference=reference,
        zeroed=zeroed_lora(reference, folder / "zeroed"),
        bundled=without_template(reference, folder / "bundled"),
    )


class ClaimingServer(JudgeServer):
    """``phyjudge serve``'s server around ``judge``, whose ``/v1/models`` describes the judge
    ``claimed`` instead: the label of one judge on the answers of another."""

    def __init__(self, judge: Any, *, claimed: JudgeServer, **options: Any) -> None:
        super().__init__(judge, **options)
        self.claimed = claimed

    def models(self) -> dict[str, Any]:
        return self.claimed.models()


@dataclass(frozen=True)
class Check:
    """What one ``phyjudge canary check`` printed: the exit code, the verdict line, the pooled
    row (agreement, mean |expected difference|, largest TV) and the cost."""

    code: int
    verdict: str
    agreement: float
    mean_diff: float
    max_tv: float
    calls: int
    seconds: float
    output: str

    @property
    def caught(self) -> bool:
        return self.code != 0


def run_canary_command(*args: str) -> tuple[int, str, str]:
    """``phyjudge canary ...`` run in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(["canary", *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def check_canaries(canaries: Path, *judge_options: str) -> Check:
    """``phyjudge canary check canaries *judge_options``, its printed table read back. An
    AssertionError with what it printed when the check itself failed (exit 2 and up, not 7)."""
    code, out, err = run_canary_command("check", str(canaries), *judge_options)
    pooled, cost = _POOLED.search(out), _COST.search(out)
    if pooled is None or cost is None:
        raise AssertionError(f"canary check exited {code} without a verdict:\n{out}\n{err}")
    lines = out.strip().splitlines()
    return Check(
        code=code,
        verdict=lines[-1],
        agreement=float(pooled.group(2)),
        mean_diff=float(pooled.group(3)),
        max_tv=float(pooled.group(4)),
        calls=int(cost.group(1)),
        seconds=float(cost.group(2)),
        output=out,
    )
