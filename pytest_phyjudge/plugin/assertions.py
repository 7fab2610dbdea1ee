"""Physics assertions for ordinary tests: judge a video, compare each axis to its threshold.

    judgment = assert_physics("clip.mp4", "A ball falls.", law="gravity", min_score=4)

Each helper returns what the judge said, records it for the run's reports, and on failure
raises :class:`PhysicsAssertionError` whose message names every failing axis at once.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_phyjudge._escape import terminal_lines
from pytest_phyjudge._exceptions import InputError, JudgeOutputError, PhyJudgeError, describe_error
from pytest_phyjudge._words import counted
from pytest_phyjudge.engine.axes import DOMAIN_TITLES, check_law, check_metric, domain_of, is_law
from pytest_phyjudge.engine.judgment import Judgment
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.judges.settings import DEFAULT_MIN_SCORE
from pytest_phyjudge.plugin import running
from pytest_phyjudge.reporting.checks import Check

if TYPE_CHECKING:
    import pytest

    from pytest_phyjudge.plugin.state import PhyJudgeState

Threshold = int | Mapping[str, int]
_LABEL = 12


def unscored_error(
    message: str, failures: Sequence[Check], outcomes: Mapping[str, object]
) -> JudgeOutputError | None:
    """When every failing axis got no score because the judge's reply held none, the test
    did not fail on physics: the failure is the judge's, a JudgeOutputError (not an
    AssertionError, so ``xfail(raises=AssertionError)`` does not swallow it)."""
    errors = [outcomes.get(c.axis) for c in failures]
    if not errors or not all(isinstance(e, JudgeOutputError) for e in errors):
        return None
    first: JudgeOutputError = errors[0]  # type: ignore[assignment]
    return JudgeOutputError(message, raw=first.raw, key=first.key, shows_raw=True)


def expects_failure(item: pytest.Item) -> bool:
    """``item`` is marked xfail (with a condition that holds): its failure is expected."""
    try:
        from _pytest.skipping import xfailed_key
    except ImportError:  # pragma: no cover - pytest internals moved: the mark itself
        return item.get_closest_marker("xfail") is not None
    return item.stash.get(xfailed_key, None) is not None


def enforced(state: PhyJudgeState | None, item: pytest.Item | None) -> bool:
    """Whether a score below its threshold fails ``item``: always, unless the run only
    reports verdicts (``--phyjudge-verdicts report``); even then an item marked xfail fails,
    so that it shows as the expected failure it is (which never fails the run)."""
    if state is None or state.options.enforced:
        return True
    return item is not None and expects_failure(item)


def has_error(failures: Sequence[Check]) -> bool:
    """A failing check got no score (an unparseable reply, a missing clip): that fails the
    item in every verdicts mode, it is no verdict on the clip."""
    return any(c.value is None for c in failures)


class PhysicsAssertionError(AssertionError):
    """A judged axis scored below its minimum (or, beside such an axis, got no score).

    ``checks`` holds every axis asked for (passed ones too); ``failures`` the failing ones.
    """

    def __init__(self, message: str, *, checks: Sequence[Check]) -> None:
        super().__init__(message)
        self.checks = tuple(checks)
        self.failures = tuple(c for c in checks if not c.passed)

    @property
    def judgments(self) -> dict[str, Judgment]:
        return {c.axis: c.judgment for c in self.checks if c.judgment is not None}


# --------------------------------------------------------------------------- messages


def _field(label: str, text: str, indent: str = "  ") -> list[str]:
    lines = str(text).splitlines() or [""]
    pad = indent + " " * (_LABEL + 1)
    head = f"{indent}{label + ':':<{_LABEL}} {lines[0]}"
    return [head, *(pad + line for line in lines[1:])]


def _verdict(check: Check) -> str:
    if check.judgment is None:
        return "no score"
    ok = check.score is not None and check.score >= check.min_score
    parts = [f"{check.score} {'>=' if ok else '<'} min_score {check.min_score}"]
    expected = check.judgment.expected
    if check.min_expected is not None and expected is not None:
        sign = ">=" if expected >= check.min_expected else "<"
        parts.append(f"expected {expected:.2f} {sign} min_expected {check.min_expected}")
    prob = check.prob_meeting
    if check.min_prob is not None and prob is not None:
        sign = ">=" if prob >= check.min_prob else "<"
        parts.append(f"P(score >= {check.min_score}) {prob:.2f} {sign} min_prob {check.min_prob}")
    return ", ".join(parts)


def _headline(failures: Sequence[Check], total: int) -> str:
    if len(failures) == 1:
        (check,) = failures
        if check.judgment is None:
            return f"PhyJudge gave {check.axis} no score: its reply holds none."
        if check.score is not None and check.score >= check.min_score:
            gate = _verdict(check)
            return f"PhyJudge's score distribution for {check.axis} misses its gate: {gate}."
        return (
            f"PhyJudge scored {check.axis} {check.score}, below its minimum of {check.min_score}."
        )
    listed = ", ".join(f"{c.axis} {_verdict(c).replace(' min_score', '')}" for c in failures)
    return f"PhyJudge: {len(failures)} of {counted(total, 'axis')} failed ({listed})."


def failure_message(
    checks: Sequence[Check],
    *,
    judge: Judge | None,
    verbosity: int = 0,
    criteria: Mapping[str, str] | None = None,
) -> str:
    """The labelled, multi-line text of a failed check: what was judged, what came back,
    what the judge was asked, and how to act on it. ``verbosity >= 2`` adds the prompt."""
    failures = [c for c in checks if not c.passed]
    first = checks[0]
    lines = [_headline(failures, len(checks))]
    lines += _field("caption", first.caption)
    lines += _field("video", first.video or "(none)")
    identity = first.judge or (judge.identity if judge is not None else None)
    if identity is not None:
        lines += _field("judge", identity.describe())
    for check in failures:
        lines.append("")
        lines.append(f"  {check.axis} ({DOMAIN_TITLES[domain_of(check.axis)]}): {_verdict(check)}")
        if check.judgment is not None:
            lines += _field("raw reply", check.judgment.raw, "    ")
            if check.judgment.probs is not None:
                probs = "  ".join(f"{i}: {p:.2f}" for i, p in enumerate(check.judgment.probs, 1))
                lines += _field("probs", probs, "    ")
        else:
            lines += _field("error", check.error or "unknown", "    ")
        questions = judge.rubric.questions(check.axis) if judge is not None else ()
        if questions:
            numbered = "\n".join(f"q{i}: {q}" for i, q in enumerate(questions, 1))
            lines += _field("checked", numbered, "    ")
        if verbosity >= 2 and judge is not None:
            crit = (criteria or {}).get(check.axis) if is_law(check.axis) else None
            prompt = judge.rubric.render(check.axis, check.caption, criteria=crit)
            lines += _field("system", prompt.system, "    ")
            lines += _field("prompt", textwrap.dedent(prompt.user).strip(), "    ")
    passed = [c for c in checks if c.passed]
    if passed:
        lines.append("")
        lines += _field("passed", ", ".join(f"{c.axis} {_verdict(c)}" for c in passed))
    lines.append("")
    if any(c.judgment is None for c in failures):
        lines.append(
            "  The judge's reply held no score (see the raw reply above); the real judge "
            "rarely does this, a tiny or scripted one often."
        )
    if any(c.judgment is not None for c in failures):
        lines.append(
            "  If a score is acceptable, lower its min_score; "
            + ("the prompts are shown above." if verbosity >= 2 else "-vv shows the prompt.")
        )
    # The caption, the raw reply and the judge's name may come from anyone (a prompt set, a
    # judge server): pytest prints this message as it is, so no control character stays.
    return terminal_lines("\n".join(lines))


# --------------------------------------------------------------------------- helpers


def _thresholds(min_score: Threshold | None, axes: Sequence[str], default: int) -> dict[str, int]:
    def valid(value: object, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise InputError(f"{what} is {value!r}; thresholds are whole numbers from 1 to 5.")
        return value

    if min_score is None:
        return dict.fromkeys(axes, default)
    if isinstance(min_score, Mapping):
        unknown = [a for a in min_score if a not in axes]
        if unknown:
            raise InputError(
                f"min_score names {', '.join(map(repr, unknown))}, which this assertion does "
                f"not judge (it judges {', '.join(axes)}); add it to laws/metrics or drop it."
            )
        return {a: valid(min_score.get(a, default), f"min_score for {a!r}") for a in axes}
    value = valid(min_score, "min_score")
    return dict.fromkeys(axes, value)


def _check_gates(min_expected: float | None, min_prob: float | None) -> None:
    if min_expected is not None and not (
        isinstance(min_expected, (int, float)) and 1 <= min_expected <= 5
    ):
        raise InputError(f"min_expected is {min_expected!r}; give a number from 1 to 5.")
    if min_prob is not None and not (isinstance(min_prob, (int, float)) and 0 < min_prob <= 1):
        raise InputError(f"min_prob is {min_prob!r}; give a probability in (0, 1].")


def _session_judge(judge: Judge | None, helper: str) -> tuple[Judge, PhyJudgeState | None]:
    state = running.active()
    if judge is not None:
        if not isinstance(judge, Judge):
            raise InputError(
                f"{helper}(judge=...) was given {type(judge).__name__}, not a "
                "pytest_phyjudge.Judge; pass a judge such as load_judge(...) or "
                "ScriptedJudge(...), or leave it out to use the session's judge."
            )
        return judge, state
    if state is None:
        raise PhyJudgeError(
            f"{helper}() found no judge: it is not running inside a pytest session with the "
            "pytest-phyjudge plugin. Pass one explicitly, e.g. "
            f"{helper}(..., judge=load_judge()), or run the test with pytest."
        )
    return state.judge(), state


#: How each helper's caller asks for a metric, and for a law (a metric given as law= ...).
_ASK_OTHER = {
    "assert_physics": ("assert_metric(..., metric={name!r})", "law={name!r}"),
    "assert_metric": ("metric={name!r}", "assert_physics(..., law={name!r})"),
}


def _checked_axes(
    helper: str,
    caption: str,
    laws: Sequence[str],
    metrics: Sequence[str],
    criteria: Mapping[str, str] | None,
) -> list[str]:
    """The axes a helper was asked for, each named once; an InputError for a bad call."""
    as_metric, as_law = _ASK_OTHER.get(helper, ("metrics=[{name!r}]", "laws=[{name!r}]"))
    axes = [
        *dict.fromkeys(
            [
                *(check_metric(m, as_law=as_law) for m in metrics),
                *(check_law(law, as_metric=as_metric) for law in laws),
            ]
        )
    ]
    if not axes:
        raise InputError(f"{helper}() was given no laws and no metrics; name at least one.")
    if not isinstance(caption, str) or not caption.strip():
        raise InputError(f"{helper}() needs the caption (the prompt) as non-empty text.")
    for law in criteria or {}:
        if law not in laws:
            raise InputError(f"criteria names {law!r}, which is not among laws={list(laws)}.")
    return axes


def _judge_axes(
    helper: str,
    video: str | Path,
    caption: str,
    *,
    laws: Sequence[str],
    metrics: Sequence[str],
    min_score: Threshold | None,
    criteria: Mapping[str, str] | None,
    judge: Judge | None,
    min_expected: float | None = None,
    min_prob: float | None = None,
) -> dict[str, Judgment]:
    __tracebackhide__ = True
    try:
        _check_gates(min_expected, min_prob)
        axes = _checked_axes(helper, caption, laws, metrics, criteria)
        judge, state = _session_judge(judge, helper)
        default = state.options.min_score if state is not None else DEFAULT_MIN_SCORE
        thresholds = _thresholds(min_score, axes, default)
        outcomes = judge.score_many(video, caption, axes, criteria=criteria or None)
    except PhyJudgeError as exc:
        # The message says it all; the frames inside the plugin would only hide it.
        raise exc.with_traceback(None) from None
    checks = []
    for axis in axes:
        outcome = outcomes[axis]
        check = Check(
            axis=axis,
            min_score=thresholds[axis],
            caption=caption,
            video=str(Path(video).resolve()),
            judgment=outcome if isinstance(outcome, Judgment) else None,
            error=None if isinstance(outcome, Judgment) else describe_error(outcome),
            laws=tuple(a for a in axes if is_law(a)),
            settings=dict(judge.settings),
            judge=judge.identity,
            min_expected=min_expected,
            min_prob=min_prob,
            criteria=(criteria or {}).get(axis),
        )
        if (min_expected is not None or min_prob is not None) and (
            check.judgment is not None and check.judgment.probs is None
        ):
            raise InputError(
                f"min_expected / min_prob gate a score distribution, but the judge gave "
                f"{axis!r} a single score (scoring {judge.settings.get('scoring')!r}). Run "
                "with --phyjudge-scoring distribution, or drop the gate."
            ).with_traceback(None)
        checks.append(check)
    failing = [c for c in checks if not c.passed]
    if failing and not has_error(failing) and not enforced(state, state and state.current_item):
        for check in checks:  # recorded as "would fail"; the test goes on
            check.enforced = False
    for check in checks:
        if state is not None:
            state.add_check(check)
    if failing and any(c.enforced for c in failing):
        verbosity = state.config.get_verbosity() if state is not None else 0
        message = failure_message(checks, judge=judge, verbosity=verbosity, criteria=criteria)
        unscored = unscored_error(message, [c for c in checks if not c.passed], outcomes)
        if unscored is not None:
            raise unscored
        raise PhysicsAssertionError(message, checks=checks)
    return {c.axis: c.judgment for c in checks if c.judgment is not None}


def assert_physics(
    video: str | Path,
    caption: str,
    *,
    law: str,
    min_score: int | None = None,
    criteria: str | None = None,
    judge: Judge | None = None,
    min_expected: float | None = None,
    min_prob: float | None = None,
) -> Judgment:
    """Assert that ``video`` obeys physical ``law`` with a score of at least ``min_score``
    (default: ``--phyjudge-min-score``, 3). ``criteria`` replaces the law's criterion text.
    Uses the session's judge unless ``judge`` is given; returns the Judgment.

    With distribution scoring, ``min_expected`` gates the mean score and ``min_prob`` the
    probability that the score reaches ``min_score``."""
    __tracebackhide__ = True
    crit = {law: criteria} if criteria is not None else None
    found = _judge_axes(
        "assert_physics",
        video,
        caption,
        laws=[law],
        metrics=[],
        min_score=min_score,
        criteria=crit,
        judge=judge,
        min_expected=min_expected,
        min_prob=min_prob,
    )
    return found[law]


def assert_metric(
    video: str | Path,
    caption: str,
    *,
    metric: str,
    min_score: int | None = None,
    judge: Judge | None = None,
    min_expected: float | None = None,
    min_prob: float | None = None,
) -> Judgment:
    """Assert a general metric (``SA``, ``PTV`` or ``persistence``) of ``video``; returns the
    Judgment."""
    __tracebackhide__ = True
    found = _judge_axes(
        "assert_metric",
        video,
        caption,
        laws=[],
        metrics=[metric],
        min_score=min_score,
        criteria=None,
        judge=judge,
        min_expected=min_expected,
        min_prob=min_prob,
    )
    return found[metric]


def assert_video(
    video: str | Path,
    caption: str,
    *,
    laws: Iterable[str] = (),
    metrics: Iterable[str] = (),
    min_score: Threshold | None = None,
    criteria: Mapping[str, str] | None = None,
    judge: Judge | None = None,
    min_expected: float | None = None,
    min_prob: float | None = None,
) -> dict[str, Judgment]:
    """Judge several axes of one video in one call and assert each against its threshold
    (``min_score``: one int, or ``{axis: int}`` with the default for the axes it leaves
    out). Every failing axis is reported at once; returns ``{axis: Judgment}``."""
    __tracebackhide__ = True
    return _judge_axes(
        "assert_video",
        video,
        caption,
        laws=[laws] if isinstance(laws, str) else list(laws),
        metrics=[metrics] if isinstance(metrics, str) else list(metrics),
        min_score=min_score,
        criteria=criteria,
        judge=judge,
        min_expected=min_expected,
        min_prob=min_prob,
    )
