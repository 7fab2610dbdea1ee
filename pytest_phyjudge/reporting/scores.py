"""PhyGround's ``scores.json``: the results of many videos, in the shape its scorer writes.

Both the batch command (``phyjudge score-dir``) and the pytest report write this shape, with
extra fields of their own beside PhyGround's (thresholds, pass/fail, the judge, the settings).
Every reader reads it through :func:`read_scores` (``scores_reader``, re-exported here), which
checks each field a reader uses before anyone uses it.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from pytest_phyjudge.engine.axes import GENERAL_METRICS
from pytest_phyjudge.engine.judgment import Judgment
from pytest_phyjudge.reporting.scores_reader import (
    CaseKey,
    ScoreColumn,
    ScoresDocument,
    check_scores,
    read_scores,
)

__all__ = [
    "CaseKey",
    "ScoreColumn",
    "ScoresDocument",
    "VideoResult",
    "build_scores",
    "check_scores",
    "read_scores",
    "write_json_atomic",
]


@dataclass
class VideoResult:
    """Everything judged for one video: its outcomes per axis (a Judgment or an error)."""

    video: str
    prompt: str
    physical_laws: Sequence[str]
    outcomes: dict[str, Judgment | Exception] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: Scores that replace the outcome's, e.g. the mean over an axis' repeated samples.
    values: dict[str, float | None] = field(default_factory=dict)

    def score(self, axis: str) -> float | None:
        if axis in self.values:
            return self.values[axis]
        outcome = self.outcomes.get(axis)
        return outcome.score if isinstance(outcome, Judgment) else None

    def to_phyground(self) -> dict[str, Any]:
        general = {m: self.score(m) for m in GENERAL_METRICS}
        scored_general = [s for s in general.values() if s is not None]
        laws: dict[str, dict[str, Any]] = {}
        for law in self.physical_laws:
            outcome = self.outcomes.get(law)
            if isinstance(outcome, Judgment) or self.values.get(law) is not None:
                laws[law] = {"score": self.score(law), "status": "scored"}
            elif outcome is None:
                laws[law] = {"score": None, "status": "not_observed"}
            else:
                laws[law] = {"score": None, "status": "failed", "error": str(outcome)}
        law_scores = [v["score"] for v in laws.values() if v["score"] is not None]
        return {
            "video": self.video,
            "prompt": self.prompt,
            "physical_laws": list(self.physical_laws),
            **general,
            "general_avg": mean(scored_general) if scored_general else None,
            "physical": {
                "laws": laws,
                "missing_laws": [law for law, v in laws.items() if v["score"] is None],
                "coverage": len(law_scores) / len(laws) if laws else None,
                "avg": mean(law_scores) if law_scores else None,
            },
            **self.extra,
        }


def build_scores(results: Iterable[VideoResult], meta: Mapping[str, Any]) -> dict[str, Any]:
    """The whole ``scores.json`` document."""
    rows = [r.to_phyground() for r in results]
    return {
        "meta": dict(meta),
        "num_videos": len(rows),
        "general_dimensions": list(GENERAL_METRICS),
        "results": rows,
    }


def _create_beside(target: Path) -> tuple[int, Path]:
    """A new, empty file beside ``target`` opened for writing. Made with mode 0666 so the
    umask decides its permissions, as for any file the user writes (``mkstemp`` would make
    it 0600, unreadable to the rest of a team sharing the report or the baseline)."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON to a temporary file beside ``path`` and rename it over: a reader never
    sees half a report, and an interrupted write leaves the previous one in place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_beside(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
