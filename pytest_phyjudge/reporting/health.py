"""Is the judge working? A degenerate judge named from its own judgments, per axis.

A judge that answers 4 to every clip (VideoPhy-2 issue #20), a LoRA silently not loaded or
a prompt template the adapter was not trained on still give well-formed scores; each
verdict alone looks plausible. Over a whole run they do not: :func:`judge_health` looks at
every judgment of an axis and warns when

* every score is the same digit (at least :data:`MIN_JUDGMENTS` scored clips);
* the digit distributions (distribution scoring) are nearly one-hot on one digit across
  clips: that digit's mean probability is at least :data:`ONE_HOT_MEAN`;
* more than :data:`UNPARSEABLE_SHARE` of the replies held no score.

It is a pure function over plain records (:class:`Reply`), so that pytest's terminal
summary, ``phyjudge score-dir`` and the CI summary give the same warnings; the warnings go
into ``scores.json`` as ``meta.judge_warnings`` (a list of :meth:`JudgeWarning.to_dict`).
A warning never changes a verdict or an exit status: a generator whose clips all deserve a
5 exists, so the message asks rather than fails. Replayed judgments (``--phyjudge-cache-mode
only``) are the judge's own, recorded earlier, and are looked at the same way.

Threat model: it reads the run's own judgments (scores, probabilities, whether a reply held
a score), whose axis names come from suites and reports; it writes nothing itself. Its
messages hold an axis name, digits and counts; each medium escapes them (the terminal
through ``terminal_text``, Markdown through ``markdown_text``, HTML through Jinja2).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pytest_phyjudge._exceptions import JudgeOutputError
from pytest_phyjudge._fields import server_text
from pytest_phyjudge.engine.judgment import Judgment
from pytest_phyjudge.reporting.checks import Check

#: Fewer judgments of an axis than this say little about the judge: a small suite of
#: good clips may well all deserve a 4; twenty clips of one axis that all get one digit
#: are a pattern worth a question (a chosen floor, not a measured one).
MIN_JUDGMENTS = 20
#: A digit whose mean probability across clips is at least this is "nearly one-hot": on
#: average at most 5% of the judge's probability lies elsewhere, which means (by Markov's
#: inequality) that at least 90% of the clips put more than half their mass on that digit.
#: A working judge's distributions move with the clips; one that ignores them does not.
ONE_HOT_MEAN = 0.95
#: More than this share of replies without a score: the judge is not answering the rubric
#: (a reply in another format, a template it was not trained on); a working judge's
#: unparseable replies are rare, so one in five is far from noise.
UNPARSEABLE_SHARE = 0.2

#: The kinds of warning, as ``meta.judge_warnings[].kind`` records them.
ONE_SCORE, ONE_HOT, UNPARSEABLE = "one_score", "one_hot", "unparseable"
KINDS = (ONE_SCORE, ONE_HOT, UNPARSEABLE)


@dataclass(frozen=True)
class Reply:
    """One reply of the judge on one axis of one clip: its score (None when it held none),
    the digit distribution (distribution scoring) and whether it was unparseable (an error
    that is not a reply, such as an unreadable clip or a server down, is no Reply)."""

    axis: str
    score: int | None
    probs: tuple[float, ...] | None = None
    unparseable: bool = False


@dataclass(frozen=True)
class JudgeWarning:
    """One axis on which the judge looks degenerate, and the message that says so."""

    axis: str
    kind: str
    #: The axis' replies looked at (scored ones for ``one_score`` and ``one_hot``).
    judgments: int
    #: The clips with that digit (``one_score``, ``one_hot``) or the unparseable replies.
    count: int
    digit: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge_health(replies: Iterable[Reply]) -> list[JudgeWarning]:
    """The warnings of every axis, in order of the axes' first reply; empty when the judge
    looks alive (or judged too few clips to tell)."""
    by_axis: dict[str, list[Reply]] = defaultdict(list)
    for reply in replies:
        by_axis[reply.axis].append(reply)
    found: list[JudgeWarning] = []
    for axis, axis_replies in by_axis.items():
        found += _axis_health(axis, axis_replies)
    return found


def _axis_health(axis: str, replies: Sequence[Reply]) -> list[JudgeWarning]:
    found: list[JudgeWarning] = []
    scored = [r for r in replies if r.score is not None]
    digits = Counter(r.score for r in scored)
    one_digit = len(scored) >= MIN_JUDGMENTS and len(digits) == 1
    if one_digit:
        digit = scored[0].score
        found.append(
            JudgeWarning(
                axis,
                ONE_SCORE,
                len(scored),
                len(scored),
                digit,
                f"every {axis} score was {digit} across {len(scored)} clips: is the judge working?",
            )
        )
    dists = [r.probs for r in scored if r.probs is not None and len(r.probs) == 5]
    if not one_digit and len(dists) >= MIN_JUDGMENTS:
        means = [sum(p[d] for p in dists) / len(dists) for d in range(5)]
        top = max(range(5), key=means.__getitem__)
        if means[top] >= ONE_HOT_MEAN:
            digit = top + 1
            found.append(
                JudgeWarning(
                    axis,
                    ONE_HOT,
                    len(dists),
                    digits.get(digit, 0),
                    digit,
                    f"{axis}: the judge put {means[top]:.0%} of its probability on {digit} on "
                    f"average across {len(dists)} clips (nearly one-hot): is the judge working?",
                )
            )
    failed = sum(r.unparseable for r in replies)
    asked = len(scored) + failed
    if asked >= MIN_JUDGMENTS and failed > UNPARSEABLE_SHARE * asked:
        found.append(
            JudgeWarning(
                axis,
                UNPARSEABLE,
                asked,
                failed,
                None,
                f"{axis}: {failed} of {asked} replies held no score: is the judge working "
                "(the prompt template it was trained on, the right model)?",
            )
        )
    return found


_UNPARSEABLE_ERROR = f"{JudgeOutputError.__name__}:"


def replies_of_checks(checks: Iterable[Check]) -> list[Reply]:
    """A pytest run's replies: one per check (its first sample's for a sampled check); a
    check without a judgment is an unparseable reply when its error is the judge's
    (``JudgeOutputError``, as ``describe_error`` quotes it)."""
    replies = []
    for check in checks:
        judgment = check.judgment
        if judgment is not None:
            probs = None if judgment.probs is None else tuple(judgment.probs)
            replies.append(Reply(check.axis, judgment.score, probs))
        elif (check.error or "").startswith(_UNPARSEABLE_ERROR):
            replies.append(Reply(check.axis, None, unparseable=True))
    return replies


def replies_of_outcomes(outcomes: Mapping[str, Judgment | Exception]) -> list[Reply]:
    """One clip's replies as a judge returned them (``score-dir``): a Judgment, or the
    error of the axis (only a JudgeOutputError is a reply without a score)."""
    replies = []
    for axis, outcome in outcomes.items():
        if isinstance(outcome, Judgment):
            probs = None if outcome.probs is None else tuple(outcome.probs)
            replies.append(Reply(axis, outcome.score, probs))
        elif isinstance(outcome, JudgeOutputError):
            replies.append(Reply(axis, None, unparseable=True))
    return replies


# --------------------------------------------------------------------------- the judge checked


#: The longest canary line a summary shows: a verdict on every axis, two judges' names.
MAX_LINE = 20_000


def canary_line(canary: Mapping[str, Any]) -> str:
    """One line of a canary check (``scores.json``'s ``meta.canary``): its status, file and
    cost in judge calls and judge-seconds, and the verdict, or why nothing was checked."""
    # A report from elsewhere may hold megabytes in them: shown cut (the file keeps them).
    file, line = server_text(canary.get("file")), server_text(canary.get("line"), MAX_LINE)
    if canary.get("status") == "not checked":
        return f"canaries NOT checked ({file}): {line}"
    cost = (
        f"{canary.get('judge_calls', 0)} judge calls, "
        f"{float(canary.get('judge_seconds') or 0.0):.1f} judge-seconds"
    )
    status = str(canary.get("status", "?")).upper()
    return f"canaries {status} ({file}, {cost}): {line}"


def server_line(server: Mapping[str, Any]) -> str:
    """What a judge server said of itself (``meta.judge_server``), in one line."""
    # Cut again here: a report or baseline from elsewhere may hold megabytes of them.
    model, fingerprint, answered = (
        server_text(server.get(name)) for name in ("model", "system_fingerprint", "answered_by")
    )
    line = f"judge server: model {model}"
    line += f", system_fingerprint {fingerprint}" if fingerprint else ", no system_fingerprint"
    if answered and answered != model:
        line += f" (replies named {answered})"
    return line


def judge_check_lines(
    canary: Mapping[str, Any] | None, server: Mapping[str, Any] | None
) -> list[tuple[str, bool]]:
    """The lines every summary shows of the judge's checks, each with whether it is a
    problem: the canary check's, and the judge server's self-description."""
    lines = []
    if canary is not None:
        lines.append((canary_line(canary), canary.get("status") == "failed"))
    if server is not None:
        lines.append((server_line(server), False))
    return lines
