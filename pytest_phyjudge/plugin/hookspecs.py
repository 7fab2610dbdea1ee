"""Hooks a conftest.py implements: its own judge, and the video generators under test."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_phyjudge.judges.base import Judge
    from pytest_phyjudge.suites import Case


@pytest.hookspec(firstresult=True)
def pytest_phyjudge_make_judge(config: pytest.Config) -> Judge | None:
    """Return the judge for this run, or None for "no opinion" (the next plugin, then the
    default judge, decides).

    Called once, when a test first needs the judge (a run that judges nothing never calls
    it). ``--phyjudge-judge`` and ``--phyjudge-url`` win over this hook; without any of them,
    the plugin loads PhyJudge-9B from ``--phyjudge-adapter``. The judge returned is put
    behind the judgment cache (unless it is scripted), and closed at the end of the session.
    """


@pytest.hookspec
def pytest_phyjudge_generators(config: pytest.Config) -> Mapping[str, Callable[..., Any]] | None:
    """Register video generators by name: return ``{name: function}`` (or None).

    A suite refers to a generator by such a name (``generator: wan``), never by an import
    path, so a suite file cannot make pytest import or call anything; names are registered
    only in trusted configuration: this hook in a conftest.py, the ``phyjudge_generators``
    ini lines (``wan = mypkg.video:generate``, imported when a clip is first made), or the
    ``pytest_phyjudge.generators`` entry point group of an installed package. A conftest's
    names serve the suites in its folder and below; where two sources give one name, the
    nearest conftest wins, then the ini file, then the entry points. Called when a suite file
    is collected. A name is letters, digits, '_' and '-'; the function is called as
    ``function(prompt, seed=case.seed, out_path=out_path, **case.params)`` and writes the
    clip to ``out_path`` (or returns the path of the file it wrote).
    """


@pytest.hookspec(firstresult=True)
def pytest_phyjudge_generate(case: Case, out_path: Path) -> Path | None:
    """Make the video of a suite case that has a ``generator:``; return the file written.

    Write the clip to ``out_path`` (or anywhere, and return that path). Return None to leave
    the case to the next implementation, and at last to the function its ``generator`` name
    is registered as (see :func:`pytest_phyjudge_generators`); ``case.generator`` is that
    name. For a case with ``samples: N`` it is called once per sample, with ``case.seed`` set
    to ``seed + i``. The case's name is checked at collection: it is registered.
    """
