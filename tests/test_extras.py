"""A light install (no [local] extra): what needs the in-process judge says how to get it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import pytest_phyjudge.testing
from pytest_phyjudge import JudgeLoadError
from pytest_phyjudge.deploy.merge import merge_adapter
from pytest_phyjudge.engine.adapter import TINY_NOTICE, is_tiny_judge, resolve_adapter
from pytest_phyjudge.engine.extras import LOCAL_INSTALL, local_available, require_local
from pytest_phyjudge.engine.rubric import RubricWarning
from pytest_phyjudge.judges.local.loading import plan_judge
from pytest_phyjudge.testing import build_tiny_judge


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_require_local_names_the_purpose_the_module_and_the_fix(monkeypatch):
    _hide(monkeypatch, "peft")
    assert not local_available(("torch", "peft"))
    with pytest.raises(JudgeLoadError) as info:
        require_local("Loading the judge in this process", ("torch", "peft"))
    message = str(info.value)
    assert message.startswith("Loading the judge in this process needs the in-process judge")
    assert "peft cannot be imported" in message and LOCAL_INSTALL in message
    assert "--phyjudge-url" in message and "--phyjudge-cache-mode only" in message


def test_a_hub_id_without_huggingface_hub(monkeypatch):
    _hide(monkeypatch, "huggingface_hub")
    with pytest.raises(JudgeLoadError, match=r"pytest-phyjudge\[local\]") as info:
        resolve_adapter("someone/some-adapter")
    assert "'someone/some-adapter' from the hub" in str(info.value)


def test_a_plan_needs_no_model_stack_but_loading_does(monkeypatch, tmp_path: Path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "b"}))
    (adapter / "adapter_model.safetensors").write_bytes(b"{}")
    _hide(monkeypatch, "transformers", "peft")
    with pytest.warns(RubricWarning):  # no rubric files: the bundled text stands in
        plan = plan_judge(adapter)  # the rubric and identity: enough to replay the cache
    assert plan.identity.kind == "local" and plan.rubric.calibrated is False
    with pytest.raises(JudgeLoadError, match=r"^Loading the judge in this process needs"):
        plan.load(device="cpu")
    with pytest.raises(JudgeLoadError, match=r"^Merging the adapter into its base needs"):
        merge_adapter(adapter, tmp_path / "merged")
    with pytest.raises(JudgeLoadError, match=r"^Building the tiny test judge needs"):
        build_tiny_judge(tmp_path / "tiny")


def test_the_tiny_judge_is_told_apart_by_its_notice(tiny_adapter: Path, tmp_path: Path):
    assert is_tiny_judge(tiny_adapter)
    assert TINY_NOTICE in (tiny_adapter / "README.md").read_text(encoding="utf-8")
    assert not is_tiny_judge(tmp_path)


def test_testing_exports_its_helpers_sorted():
    names = pytest_phyjudge.testing.__all__
    assert names == sorted(names)
    assert all(callable(getattr(pytest_phyjudge.testing, name)) for name in names)


def test_a_cpu_judge_says_once_that_fast_kernels_are_missing(monkeypatch, caplog):
    """transformers warns once per missing kernel (four lines on every CPU run); the CPU judge
    lets one reworded line through, and leaves that logger's other messages alone."""
    import logging

    from pytest_phyjudge.engine import extras

    monkeypatch.setattr(extras._OneKernelNotice, "said", False)
    logger = logging.getLogger(extras._KERNEL_LOGGER)
    monkeypatch.setattr(logger, "filters", [])
    extras.quiet_cpu_kernel_notices()
    extras.quiet_cpu_kernel_notices()  # idempotent
    assert len(logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger=extras._KERNEL_LOGGER):
        for kernel in ("causal_conv1d_fn", "chunk_gated_delta_rule"):
            logger.warning(
                "`%s` is falling back to its reference PyTorch implementation because ...", kernel
            )
        logger.warning("something else")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and messages[1] == "something else"
    assert "reference PyTorch kernels on this CPU" in messages[0] and "Said once" in messages[0]
