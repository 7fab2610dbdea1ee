"""Render the example suite's clips before anything is collected, so that the suite runs from
a clean clone (the mp4s are not committed; render_clips.py draws them in about two seconds)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent
VIDEOS = HERE / "videos"


def load_renderer() -> ModuleType:
    """render_clips.py as a module, by path: it works whatever the import mode and rootdir."""
    name = "phyjudge_example_render_clips"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "render_clips.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it runs
        spec.loader.exec_module(module)
    return sys.modules[name]


def pytest_configure(config: pytest.Config) -> None:
    # pytest_configure is historic: it also runs when this conftest is found late, during
    # collection (`pytest .`), still before any file of this folder is collected.
    try:
        load_renderer().render_all(VIDEOS)
    except Exception as exc:
        raise pytest.UsageError(
            f"example_suite: could not render the clips into {VIDEOS} "
            f"({type(exc).__name__}: {exc}). Render them by hand to see the full error: "
            f"python {HERE / 'render_clips.py'}"
        ) from exc
