"""Writing ``scores.json``: PhyGround's shape, in the order its scorer writes it, stamped
with this format's version.

Both the batch command (``phyjudge score-dir``) and the pytest report write this shape, with
extra fields of their own beside PhyGround's (thresholds, pass/fail, the judge, the settings).
What is written is read back by :func:`~pytest_phyjudge.scores.reader.read_scores`;
:func:`as_read` gives a document just written the shape its readers will see, so that the
pytest run's own HTML page is built from exactly what ``phyjudge report`` would read.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from pytest_phyjudge._files import FileProblem, not_a_file, read_json_file, write_json_atomic
from pytest_phyjudge.engine.axes import GENERAL_METRICS
from pytest_phyjudge.engine.judgment import Judgment
from pytest_phyjudge.scores.model import FORMAT, ScoresDocument, stamp
from pytest_phyjudge.scores.reader import check_scores


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
    return stamp(
        {
            "meta": dict(meta),
            "num_videos": len(rows),
            "general_dimensions": list(GENERAL_METRICS),
            "results": rows,
        }
    )


def is_earlier_results(path: Path) -> bool:
    """Whether ``path`` may take a results file: nothing is there, or a results file that
    pytest-phyjudge wrote (a rerun replaces it). A user's file, a symlink, a folder or a
    special file there is never replaced."""
    if not os.path.lexists(path):
        return True
    if path.is_symlink() or not_a_file(path) is not None:
        return False
    try:
        document = read_json_file(path)
    except FileProblem:
        return False
    return isinstance(document, dict) and document.get("format") == FORMAT


def write_scores(path: str | Path, document: Mapping[str, Any]) -> Path:
    """Write a ``scores.json`` (atomically: a reader never sees half of it), stamped with
    this version; the path written. An OSError (nothing written) where something other than
    an earlier results file is in the way (:func:`is_earlier_results`)."""
    path = Path(path)
    if not is_earlier_results(path):
        raise OSError(
            errno.EEXIST,
            "it is not a results file pytest-phyjudge wrote, and is never replaced",
            str(path),
        )
    return write_json_atomic(path, stamp(document))


def as_read(document: Mapping[str, Any], name: str) -> ScoresDocument:
    """``document`` as its readers see it once written: through JSON (as
    :func:`write_scores` encodes it) and the reader's checks."""
    text = json.dumps(stamp(document), ensure_ascii=False, default=str)
    return check_scores(json.loads(text), name)
