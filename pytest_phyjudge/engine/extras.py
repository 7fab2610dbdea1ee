"""The ``[local]`` and ``[generate]`` extras in one place, so a light install says how to get
the in-process judge or a diffusers pipeline instead of failing with an ImportError somewhere
deep."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from pytest_phyjudge._exceptions import InputError, JudgeLoadError

#: The command that adds the in-process judge to a light install.
LOCAL_INSTALL = 'pip install "pytest-phyjudge[local]"'
#: What the in-process judge imports beyond the core install (import names, not pip names).
LOCAL_MODULES = (
    "torch",
    "torchvision",
    "transformers",
    "peft",
    "accelerate",
    "huggingface_hub",
    "qwen_vl_utils",
    "decord",
)
#: What loading the model needs (the hub and video modules are asked for where they are used).
MODEL_MODULES = ("torch", "transformers", "peft")
#: What the judge's exact frame sampling needs.
VIDEO_MODULES = ("torch", "torchvision", "qwen_vl_utils", "decord")


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or a None in sys.modules
        return False


def local_available(modules: tuple[str, ...] = LOCAL_MODULES) -> bool:
    """True when every one of ``modules`` is installed; cheap, since nothing is imported."""
    return all(_findable(name) for name in modules)


def require_local(what: str, modules: tuple[str, ...] = MODEL_MODULES) -> None:
    """Import ``modules``, or raise a JudgeLoadError that says ``what`` needed them and how to
    install them. ``what`` completes "... needs the in-process judge", e.g. "Loading the judge".
    """
    missing, details = _unimportable(modules)
    if missing:
        raise JudgeLoadError(
            f"{what} needs the in-process judge, which this install lacks ({', '.join(missing)} "
            f"cannot be imported; {details[0]}). Install it with {LOCAL_INSTALL}, or judge "
            "without it: with a judge server (pytest --phyjudge-url URL, phyjudge ... --url "
            "URL), or by replaying cached judgments (pytest --phyjudge-cache-mode only, "
            "phyjudge ... --cache-mode only)."
        )


#: The command that adds diffusers pipelines (a suite's ``pipeline:``) to an install.
GENERATE_INSTALL = 'pip install "pytest-phyjudge[generate]"'
#: What making clips with a diffusers pipeline imports (import names).
GENERATE_MODULES = ("torch", "diffusers", "transformers", "safetensors")


def require_generate(what: str) -> None:
    """Import what a diffusers pipeline needs, or raise an InputError that says ``what``
    needed it and how to install it; ``what`` is e.g. "Making a suite's pipeline clips"."""
    missing, details = _unimportable(GENERATE_MODULES)
    if missing:
        raise InputError(
            f"{what} needs the generate extra (diffusers), which this install lacks "
            f"({', '.join(missing)} "
            f"cannot be imported; {details[0]}). Install them with {GENERATE_INSTALL}, or "
            "judge clips made elsewhere: restore the clips folder the generating job left "
            "(.pytest_cache/d/phyjudge-clips), or give the cases `video:` paths."
        )


def _unimportable(modules: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The modules of ``modules`` that cannot be imported, and why (one line each)."""
    missing: list[str] = []
    details: list[str] = []
    for name in modules:
        try:
            importlib.import_module(name)
        # Absent, or installed but broken (a missing shared library), or failing on what it
        # reads when imported (an environment variable): each is one line, not a traceback.
        except Exception as exc:
            missing.append(name)
            details.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return missing, details


#: What huggingface_hub logs when peft reads an adapter's README.md that has no YAML header.
_EMPTY_CARD = "Repo card metadata block was not found"
_CARD_LOGGER = "huggingface_hub.repocard"


class _NoEmptyCardNotice(logging.Filter):
    """Drops huggingface_hub's notice that a model card has no metadata block, nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _EMPTY_CARD not in record.getMessage()


@contextmanager
def peft_quietly() -> Iterator[None]:
    """Wrap a PeftModel being built or saved: peft reads a transformers property deprecated
    in v5, a FutureWarning on every load, and saving reads the adapter's README.md (the tiny
    judge's notice has no YAML header), which huggingface_hub reports as an empty card: both
    notices users can do nothing about."""
    card_logger = logging.getLogger(_CARD_LOGGER)
    card_filter = _NoEmptyCardNotice()
    card_logger.addFilter(card_filter)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message=r"`is_gradient_checkpointing` is deprecated",
                category=FutureWarning,
            )
            yield
    finally:
        card_logger.removeFilter(card_filter)


#: What transformers says, at a model's first forward on a CPU, once per missing fast kernel.
_KERNEL_FALLBACK = "falling back to its reference PyTorch implementation"
_KERNEL_LOGGER = "transformers.integrations.hub_kernels"


class _OneKernelNotice(logging.Filter):
    """Lets the first kernel-fallback warning through, reworded, and drops the others."""

    said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if _KERNEL_FALLBACK not in record.getMessage():
            return True
        if _OneKernelNotice.said:
            return False
        _OneKernelNotice.said = True
        record.msg = (
            "The judge's linear-attention layers run transformers' reference PyTorch kernels "
            "on this CPU (correct, slower; the fast ones, causal-conv1d and "
            "flash-linear-attention, are for CUDA). Said once."
        )
        record.args = ()
        return True


def quiet_cpu_kernel_notices() -> None:
    """On a CPU, transformers warns four times, at the first forward, that fast kernels are
    missing: expected there, so say it once (idempotent)."""
    logger = logging.getLogger(_KERNEL_LOGGER)
    if not any(isinstance(f, _OneKernelNotice) for f in logger.filters):
        logger.addFilter(_OneKernelNotice())
