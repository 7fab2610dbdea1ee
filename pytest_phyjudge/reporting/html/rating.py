"""What the HTML report's rating mode needs: each card's case keys and axes, never a score.

A person rates the clips in the page (``assets/rating.js``) and exports the ratings as a
``scores.json`` that ``phyjudge agree`` pairs with the judge's. The page gets, as one JSON
block, the cases as the document names them (suite, video, prompt, generator: the keys
``agree`` pairs by, taken from the rows as written, not from the card's display text), the
axes each card asks about with a line saying what each asks (``engine.axes.AXIS_HINTS``,
shown under the axis' name), the format stamp of the export and an identity for the browser's
``localStorage``. No score, probability, reply or verdict of the judge goes in: the rater
must not be anchored by them, and the page hides the judge's tables while rating.

Threat model: every string of the block comes from a document anyone may have written, and
the page is published. So the block is JSON escaped for a ``<script>`` (``tojson``: no
``</script>``, ``<!--`` or raw U+2028 can end or bend it), the script builds the page with
``textContent`` only and keeps the ratings under a hash of the cases, never a name. The
export it writes is read back by ``phyjudge agree`` through the one ``scores.json`` reader,
which believes no field of it unchecked (a score outside 1-5, a duplicate clip, a "person's"
file holding a judge's checks are refused).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_phyjudge.engine.axes import AXIS_HINTS, GENERAL_METRICS, MAX_SCORE, MIN_SCORE
from pytest_phyjudge.reporting.html.model import CaseView
from pytest_phyjudge.scores import FORMAT, HUMAN_KIND, VERSION, ScoresDocument


@dataclass(frozen=True)
class RatingCase:
    """One card as the rating mode rates it and the export names it."""

    anchor: str
    video: str
    suite: str | None
    prompt: str | None
    generator: str | None
    axes: tuple[str, ...]
    #: The clip's preview file (named by the clip's sha256), None when it has none.
    clip: str | None


def rating_cases(
    document: ScoresDocument, cases: Sequence[CaseView], clips: Mapping[str, str | None]
) -> tuple[RatingCase, ...]:
    """The page's cards as rating cases: ``cases`` are the view of ``document``'s rows (in
    the rows' order, as ``report_view`` makes them), ``clips`` each card's preview file."""
    return tuple(
        RatingCase(
            anchor=case.anchor,
            video=row.video,
            suite=row.suite or None,
            prompt=row.prompt,
            generator=row.generator,
            axes=tuple(a.axis for a in case.axes),
            clip=clips.get(case.anchor),
        )
        for row, case in zip(document.rows, cases, strict=True)
    )


def report_identity(cases: Sequence[RatingCase]) -> str:
    """What the page keeps its ratings under in ``localStorage``: a hash of the cases, their
    captions, axes and clips' contents. Two reports of other clips never share ratings (a
    regenerated clip under the same name counts as another clip), while the same clips
    rendered again (another run of the judge, a fresh folder) keep the ratings given."""
    shown = [
        [c.suite, c.video, c.prompt, c.generator, list(c.axes), c.clip, c.anchor] for c in cases
    ]
    text = json.dumps(shown, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def rating_data(cases: Sequence[RatingCase]) -> dict[str, Any]:
    """The JSON block the page's rating script reads (``tojson`` escapes it for HTML; the
    script puts its texts in with ``textContent`` only)."""
    asked = dict.fromkeys(axis for c in cases for axis in c.axes)
    return {
        "identity": report_identity(cases),
        "format": FORMAT,
        "version": VERSION,
        "general": list(GENERAL_METRICS),
        "scale": [MIN_SCORE, MAX_SCORE],
        "kind": HUMAN_KIND,
        "about": {axis: AXIS_HINTS[axis] for axis in asked if axis in AXIS_HINTS},
        "cases": [
            {
                "anchor": c.anchor,
                "video": c.video,
                "suite": c.suite,
                "prompt": c.prompt,
                "generator": c.generator,
                "axes": list(c.axes),
            }
            for c in cases
        ],
    }
