"""``scores.json``, PhyGround's results of many videos: its one typed model, reader and writer.

Everything that reads or writes the document goes through here: the pytest report and
``phyjudge score-dir`` write it (:func:`build_scores`, :func:`write_scores`); ``compare``,
``agree``, ``leaderboard``, ``phyjudge report`` and the HTML report read it
(:func:`read_scores`, :func:`check_scores`) as a :class:`ScoresDocument`: checked field by
field, upgraded to this version, its scores in columns and its rows and metadata typed.
"""

from __future__ import annotations

from pytest_phyjudge.scores.model import (
    FORMAT,
    HUMAN_KIND,
    VERSION,
    AxisRecord,
    CaseKey,
    LawScore,
    ResultRow,
    RunMeta,
    ScoreColumn,
    ScoresDocument,
    stamp,
    upgrade,
)
from pytest_phyjudge.scores.reader import check_scores, read_scores
from pytest_phyjudge.scores.writer import VideoResult, as_read, build_scores, write_scores

__all__ = [
    "FORMAT",
    "HUMAN_KIND",
    "VERSION",
    "AxisRecord",
    "CaseKey",
    "LawScore",
    "ResultRow",
    "RunMeta",
    "ScoreColumn",
    "ScoresDocument",
    "VideoResult",
    "as_read",
    "build_scores",
    "check_scores",
    "read_scores",
    "stamp",
    "upgrade",
    "write_scores",
]
