"""Hooks a conftest.py can implement to plug in its own judge or its own video generator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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


@pytest.hookspec(firstresult=True)
def pytest_phyjudge_generate(case: Case, out_path: Path) -> Path | None:
    """Make the video of a suite case that has a ``generator:``; return the file written.

    Write the clip to ``out_path`` (or anywhere, and return that path). Return None to leave
    the case to the next implementation; the plugin's own, called last, imports the case's
    ``generator`` ("package.module:function") and calls
    ``function(prompt, seed=case.seed, out_path=out_path, **case.params)``. For a case with
    ``samples: N`` it is called once per sample, with ``case.seed`` set to ``seed + i``.
    """
