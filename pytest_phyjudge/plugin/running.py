"""The pytest runs with this plugin in progress in this process, innermost last.

The assertion helpers can be called from any code; they find the run's judge here. This
module imports nothing of pytest, so that ``import pytest_phyjudge`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_phyjudge.plugin.state import PhyJudgeState

_ACTIVE: list[PhyJudgeState] = []


def push(state: PhyJudgeState) -> None:
    _ACTIVE.append(state)


def pop(state: PhyJudgeState) -> None:
    if state in _ACTIVE:
        _ACTIVE.remove(state)


def active() -> PhyJudgeState | None:
    """The state of the innermost running pytest session with this plugin, if any."""
    return _ACTIVE[-1] if _ACTIVE else None
