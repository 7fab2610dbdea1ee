"""YAML suites as pytest nodes: a file, one collector per case, one item per (case, axis).

``basics.phyjudge.yaml::ball_ramp::gravity`` carries the keywords ``ball_ramp``,
``gravity``, ``solid`` and ``phyjudge``, and the case's YAML marks, so ``-k`` and ``-m``
select the way they do for Python tests. The items of a case share one judgment.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from pytest_phyjudge._escape import terminal_lines
from pytest_phyjudge._exceptions import (
    InputError,
    JudgeOutputError,
    PhyJudgeError,
    SuiteError,
    describe_error,
)
from pytest_phyjudge._words import counted
from pytest_phyjudge.engine.axes import domain_of
from pytest_phyjudge.engine.judgment import Judgment
from pytest_phyjudge.plugin.assertions import (
    PhysicsAssertionError,
    enforced,
    failure_message,
    has_error,
    unscored_error,
)
from pytest_phyjudge.plugin.generate import Generators, generators_for
from pytest_phyjudge.plugin.scheduler import Outcome, Scheduler, SuiteAxis
from pytest_phyjudge.plugin.state import PhyJudgeState, state_of
from pytest_phyjudge.reporting.checks import Check
from pytest_phyjudge.suites import Case, MarkSpec, Suite, load_suite

#: How to mend a YAML mark pytest does not know.
_MARK_FIX = (
    "Register it under `markers` in your pytest configuration, or remove it from the case's "
    "`marks:`."
)


def is_suite_file(path: Path, globs: tuple[str, ...]) -> bool:
    return any(fnmatch(path.name, pattern) for pattern in globs)


class SuiteFile(pytest.File):
    """A ``*.phyjudge.yaml`` file; a bad suite is one collection error at its file:line.

    Its ``generator:`` names are checked against the generators registered for its folder
    (ini, conftest.py, entry points); nothing is imported while collecting."""

    suite: Suite | None = None
    generators: Generators = Generators({})

    def collect(self) -> Iterator[CaseCollector]:
        options = state_of(self.config).options
        try:
            self.generators = generators_for(self, options.generators)
        except InputError as exc:
            raise self.CollectError(f"{self.path}: {exc}") from None
        try:
            self.suite = load_suite(
                self.path, default_min_score=options.min_score, generators=self.generators.names
            )
        except SuiteError as exc:
            raise self.CollectError(str(exc)) from None
        for case in self.suite.cases:
            node = CaseCollector.from_parent(self, name=case.id, case=case)
            for spec in case.marks:
                node.add_marker(self._mark(spec, case))
            yield node

    def _mark(self, spec: MarkSpec, case: Case) -> pytest.MarkDecorator:
        """The case's YAML mark as a pytest mark. pytest's complaints about an unregistered
        name are moved to the YAML line of the mark, where the fix is made."""
        line = spec.line or case.line
        where = f"{self.path}:{line}: case {case.id!r} has the mark {spec.name!r}"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pytest.PytestUnknownMarkWarning)
            try:
                decorator = getattr(pytest.mark, spec.name)(*spec.args, **dict(spec.kwargs))
            except pytest.fail.Exception as exc:
                reason = exc.msg.rstrip()
                reason += "" if reason.endswith((".", "?", "!")) else "."
                raise self.CollectError(
                    f"{where}, which pytest refuses: {reason} {_MARK_FIX}"
                ) from None
        for record in caught:
            if not issubclass(record.category, pytest.PytestUnknownMarkWarning):
                warnings.warn_explicit(
                    record.message, record.category, record.filename, record.lineno
                )
                continue
            message = (
                f"case {case.id!r} has the mark {spec.name!r}, which is not registered "
                f"(a typo?). {_MARK_FIX}"
            )
            try:
                warnings.warn_explicit(message, record.category, str(self.path), line)
            except pytest.PytestUnknownMarkWarning:  # -W error: a collection error, located
                raise self.CollectError(f"{self.path}:{line}: {message}") from None
        return decorator


class CaseCollector(pytest.Collector):
    """One case of a suite; its YAML marks sit here and apply to each of its items."""

    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def collect(self) -> Iterator[AxisItem]:
        for axis in self.case.axes:
            yield AxisItem.from_parent(self, name=axis, axis=axis)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, self.case.id


class AxisItem(pytest.Item):
    """One axis of one case, judged against its threshold."""

    def __init__(self, *, axis: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        case: Case = self.parent.case  # type: ignore[union-attr]
        suite_file: SuiteFile = self.parent.parent  # type: ignore[assignment]
        suite: Suite = suite_file.suite  # type: ignore[assignment]
        self.case = case
        #: What the case's ``generator:`` name stands for, made on first use.
        self.generators = suite_file.generators
        self.suite_name = suite.name
        self.axis = axis
        self.min_score = case.min_scores[axis]
        #: What the run's scheduler needs of this item to judge its case.
        self.work = SuiteAxis(
            nodeid=self.nodeid,
            key=(str(self.path), case.id),
            axis=axis,
            case=case,
            generators=self.generators,
        )
        domain = domain_of(axis)
        self.add_marker(pytest.mark.phyjudge(axis=axis, domain=domain, case=case.id))
        self.keywords[domain] = True
        self.extra_keyword_matches.add(domain)

    def _scheduler(self, state: PhyJudgeState) -> Scheduler:
        """The run's scheduler, made by the first suite item to run, from the run's items as
        they will run (selected and ordered)."""
        if state.scheduler is None:
            items = [item.work for item in self.session.items if isinstance(item, AxisItem)]
            state.scheduler = Scheduler(state.config, state.options, state, items)
        return state.scheduler

    def runtest(self) -> None:
        state = state_of(self.config)
        outcome = self._scheduler(state).outcomes(self.work).get(self.axis)
        if outcome is None:
            outcome = RuntimeError(f"The judge returned nothing for {self.axis!r}.")
        if isinstance(outcome, tuple):
            self._run_samples(state, outcome)
            return
        check = Check(
            axis=self.axis,
            min_score=self.min_score,
            caption=self.case.prompt,
            video=outcome.video if isinstance(outcome, Judgment) else _case_video(self.case),
            judgment=outcome if isinstance(outcome, Judgment) else None,
            error=None if isinstance(outcome, Judgment) else describe_error(outcome),
            laws=self.case.laws,
            suite=self.suite_name,
            case=self.case.id,
            criteria=self.case.criteria.get(self.axis),
            generator=self.case.generator,
        )
        self._settle_enforcement(state, check)
        state.add_check(check, self)
        if isinstance(outcome, (Judgment, JudgeOutputError)):
            drop = self._compare_baseline(state, check)
            if not check.passed and check.enforced:
                judge = state.judge() if state.judge_loaded else None
                message = failure_message(
                    [check],
                    judge=judge,
                    verbosity=self.config.get_verbosity(),
                    criteria=self.case.criteria,
                )
                unscored = unscored_error(message, [check], {self.axis: outcome})
                if unscored is not None:
                    raise unscored
                raise PhysicsAssertionError(message, checks=[check])
            if drop is not None:
                raise drop
            return
        if isinstance(outcome, PhyJudgeError):
            raise outcome.with_traceback(None)
        raise RuntimeError(str(outcome)) from outcome.__cause__

    def _run_samples(self, state: PhyJudgeState, outcomes: tuple[Outcome, ...]) -> None:
        """Judge the axis over its samples: the gates decide, the report shows each score."""
        from pytest_phyjudge.regression import sampling

        for outcome in outcomes:  # a bug in a judge or a generator is not a low score
            if not isinstance(outcome, (Judgment, PhyJudgeError)):
                raise RuntimeError(str(outcome)) from outcome.__cause__
        judged = [o for o in outcomes if isinstance(o, Judgment)]
        samples = []
        for index, outcome in enumerate(outcomes):
            sample_case = self.case.sample(index)
            scored = isinstance(outcome, Judgment)
            samples.append(
                {
                    "sample": index,
                    "seed": sample_case.seed if self.case.generator or self.case.pipeline else None,
                    "video": outcome.video if scored else _case_video(sample_case),
                    "score": outcome.score if scored else None,
                    "expected": outcome.expected if scored else None,
                    "error": None if scored else describe_error(outcome),
                }
            )
        gates = self.case.gates_for(self.axis)
        summary = sampling.summarize(
            [s["score"] for s in samples], min_score=self.min_score, gates=gates
        )
        first_error = next((o for o in outcomes if not isinstance(o, Judgment)), None)
        check = Check(
            axis=self.axis,
            min_score=self.min_score,
            caption=self.case.prompt,
            video=judged[0].video if judged else samples[0]["video"],
            judgment=judged[0] if judged else None,
            error=None if first_error is None else describe_error(first_error),
            laws=self.case.laws,
            suite=self.suite_name,
            case=self.case.id,
            criteria=self.case.criteria.get(self.axis),
            samples=samples,
            summary=summary,
            generator=self.case.generator,
        )
        self._settle_enforcement(state, check)
        state.add_check(check, self)
        lines = sampling.gate_lines(summary)
        detail = [*lines, f"samples (min_score {self.min_score}):"]
        shown = sampling.sample_lines(samples, base=self.config.invocation_params.dir)
        detail += [f"  {line}" for line in shown]
        if check.passed:  # shown with -rP; a failure shows it in its message
            self.add_report_section("call", "phyjudge samples", "\n".join(detail))
        if not judged and first_error is not None and not isinstance(first_error, JudgeOutputError):
            raise first_error.with_traceback(None)  # no clip could be judged at all
        drop = self._compare_baseline(state, check)
        if not check.passed and check.enforced:
            message = "\n".join([sampling.headline(self.axis, summary), *detail])
            raise PhysicsAssertionError(message, checks=[check])
        if drop is not None:
            raise drop

    def _settle_enforcement(self, state: PhyJudgeState, check: Check) -> None:
        """Under ``--phyjudge-verdicts report`` a scored check below its threshold does not
        fail the item: it is recorded as "would fail" (an item marked xfail still fails, as
        expected; a check without a score is an error and fails)."""
        if not check.passed and not has_error([check]) and not enforced(state, self):
            check.enforced = False

    def _compare_baseline(self, state: PhyJudgeState, check: Check) -> PhysicsAssertionError | None:
        """Record how the check compares with the baseline; the failure to raise for a drop
        (None when there is none, or while the baseline is being updated)."""
        from pytest_phyjudge.regression import baseline as bl

        base = state.baseline
        if base is None or check.value is None:
            return None
        options = state.options
        judge = None if check.judge is None else check.judge.to_dict()
        if (
            judge is not None
            and not options.baseline_any_judge
            and base.exists
            and not bl.same_judge(base.judge, judge)
        ):
            raise InputError(bl.judge_mismatch_message(base, judge))
        tolerance = self.case.gates_for(self.axis).tolerance
        key = (self.suite_name, self.case.id, self.axis)
        samples = None if check.samples is None else [s["score"] for s in check.samples]
        obtained = bl.obtained_entry(check.value, check.expected, samples)
        verdict = bl.compare_entry(base.entries.get(key), obtained, tolerance)
        check.baseline = verdict
        if verdict["status"] != "drop" or options.update_baseline:
            return None
        what = {"score": "score", "mean": "mean score", "expected": "expected score"}
        name = what[verdict["measure"]]
        message = "\n".join(
            [
                f"PhyJudge baseline: {self.axis} of {self.suite_name}::{self.case.id} dropped "
                f"from {verdict['stored']:g} to {verdict['obtained']:g} (tolerance "
                f"{tolerance:g})",
                "obtained:",
                f"  {name} {verdict['obtained']:g}"
                + (
                    f" over {counted(len(samples), 'sample')} {samples}"
                    if samples is not None
                    else ""
                ),
                f"expected (baseline {base.path}):",
                f"  {name} {verdict['stored']:g}, at least {verdict['stored'] - tolerance:g} "
                f"with tolerance {tolerance:g}",
                *[f"note: {n}" for n in [bl.server_note(base.judge_server, state.server())] if n],
                f"If the new scores are right, accept them with {bl.UPDATE_FLAG}.",
            ]
        )
        return PhysicsAssertionError(message, checks=[check])

    def _where(self) -> list[str]:
        """Where the case is written: ``file:line`` and that line of the YAML."""
        file, line = self.nodeid.split("::", 1)[0], self.case.line
        head = f"  at {file}:{line}: case {self.case.id!r}, axis {self.axis}"
        head += f", min_score {self.min_score}"
        try:
            source = self.path.read_text(encoding="utf-8").splitlines()[line - 1]
        except (OSError, UnicodeDecodeError, IndexError):
            return [head]
        return [head, f"{line:>6} | {source}"]

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> Any:
        """The verdict first (it is what ``-r`` summaries show), then the YAML line, then
        the judgment; any other exception is shown the usual way."""
        exc = excinfo.value
        if self.config.getoption("fulltrace", False) or not isinstance(
            exc, (PhysicsAssertionError, PhyJudgeError)
        ):
            return super().repr_failure(excinfo, style=style)
        plain = isinstance(exc, PhysicsAssertionError) or (
            isinstance(exc, JudgeOutputError) and str(exc).startswith("PhyJudge")
        )
        text = str(exc) if plain else describe_error(exc)
        first, _, rest = text.partition("\n")
        # Quotes judge servers' words and the suite's line: control characters shown escaped.
        return terminal_lines("\n".join([first, *self._where(), *([rest] if rest else [])]))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"{self.case.id}::{self.axis}"


def _case_video(case: Case) -> str | None:
    return None if case.video is None else str(case.video)
