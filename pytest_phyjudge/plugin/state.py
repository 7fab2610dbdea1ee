"""The state of one pytest run: its options, the lazily loaded judge, case judgments, checks.

One :class:`PhyJudgeState` lives under :data:`STATE_KEY` in ``config.stash`` from
``pytest_configure`` to ``pytest_unconfigure``. The assertion helpers find it through
:func:`active` (a stack, so that pytester's in-process runs nest cleanly).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import traceback
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_phyjudge._exceptions import JudgeLoadError, PhyJudgeError
from pytest_phyjudge.engine.adapter import DEFAULT_ADAPTER
from pytest_phyjudge.engine.judgment import Judgment
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.reporting.checks import Check, describe_error

if TYPE_CHECKING:
    from pytest_phyjudge.judges.loading import JudgePlan
    from pytest_phyjudge.judges.remote import RemotePlan
    from pytest_phyjudge.regression.baseline import Baseline

#: ``--phyjudge-judge tiny``: the tiny random test judge, built under the pytest cache dir.
TINY = "tiny"
DEFAULT_MIN_SCORE = 3
DEFAULT_SUITE_GLOBS = ("*.phyjudge.yaml", "*.phyjudge.yml")
DEVICES_HELP = "cpu, cuda, cuda:N, mps or auto"
DTYPES = ("auto", "bfloat16", "bf16", "float16", "fp16", "float32", "fp32")
_OBJECT_SPEC = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_DEVICE = re.compile(r"cpu|cuda(?::\d+)?|mps|auto")


# --------------------------------------------------------------------------- option values


def parse_min_score(value: str | int) -> int:
    """An integer threshold 1-5 (argparse ``type=``; a bad value becomes a UsageError)."""
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if not 1 <= number <= 5:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a minimum score; scores are whole numbers from 1 to 5."
        )
    return number


def parse_judge_spec(value: str) -> str:
    """``tiny`` or ``package.module:factory``."""
    value = value.strip()
    if value == TINY or _OBJECT_SPEC.fullmatch(value):
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r} names no judge; write 'tiny' (the tiny random test judge) or "
        "'package.module:factory' (a callable that returns a pytest_phyjudge.Judge)."
    )


def parse_device(value: str) -> str:
    value = value.strip()
    if _DEVICE.fullmatch(value):
        return value
    raise argparse.ArgumentTypeError(f"{value!r} is not a device; use {DEVICES_HELP}.")


def _one_of(value: str, choices: Sequence[str], what: str, hint: str) -> str:
    value = value.strip()
    if value in choices:
        return value
    raise argparse.ArgumentTypeError(f"{value!r} is not a {what}; use {hint}.")


def parse_cache_mode(value: str) -> str:
    from pytest_phyjudge.judges.cached import CACHE_MODES

    return _one_of(
        value,
        CACHE_MODES,
        "cache mode",
        "use (read and record), refresh (judge again), off, or only (replay: never load a model)",
    )


def parse_scoring(value: str) -> str:
    from pytest_phyjudge.judges.loading import SCORING_MODES

    return _one_of(
        value,
        SCORING_MODES,
        "scoring mode",
        "greedy (the reference: parse the reply) or distribution (probabilities of 1-5)",
    )


def parse_url_list(value: str) -> tuple[str, ...]:
    """``URL[,URL...]`` of judge servers."""
    from pytest_phyjudge.judges.remote import parse_urls

    try:
        return parse_urls(value)
    except PhyJudgeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_number(value: str, convert: Any, ok: Any, what: str) -> Any:
    """``convert(value)`` when it gives a number that is ``ok``; else a usage error."""
    try:
        number = convert(str(value).strip())
    except ValueError:
        number = None
    if number is None or not ok(number):
        raise argparse.ArgumentTypeError(f"{value!r} is not {what}.")
    return number


def parse_positive_int(value: str) -> int:
    return parse_number(value, int, lambda n: n >= 1, "a whole number of at least 1")


def parse_count(value: str) -> int:
    return parse_number(value, int, lambda n: n >= 0, "a whole number of at least 0")


def parse_positive_float(value: str) -> float:
    return parse_number(value, float, lambda n: n > 0, "a number greater than 0")


def parse_dtype(value: str) -> str:
    return _one_of(value, DTYPES, "dtype", f"one of {', '.join(DTYPES)}")


@dataclass(frozen=True)
class Options:
    """The plugin's settings: the command line wins over the ini file, then the defaults."""

    adapter: str = DEFAULT_ADAPTER
    revision: str | None = None
    device: str | None = None
    dtype: str | None = None
    min_score: int = DEFAULT_MIN_SCORE
    report: Path | None = None
    judge: str | None = None
    regenerate: bool = False
    per_worker_model: bool = False
    suite_globs: tuple[str, ...] = DEFAULT_SUITE_GLOBS
    #: Judgment cache folder; None means the pytest cache dir's ``d/phyjudge-judgments``.
    cache: Path | None = None
    cache_mode: str = "use"
    scoring: str = "greedy"
    #: Regression baseline (a JSON file users commit) and what to do with it.
    baseline: Path | None = None
    update_baseline: bool = False
    prune_baseline: bool = False
    baseline_any_judge: bool = False
    #: PNG chart of this run against its baseline.
    compare_plot: Path | None = None
    #: Judge servers (the remote backend); empty: the judge runs in this process.
    url: tuple[str, ...] = ()
    remote_identity: Path | None = None
    media_root: str | None = None
    concurrency: int | None = None
    timeout: float | None = None
    retries: int | None = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> Options:
        def pick(name: str, parse: Any = None) -> Any:
            value = config.getoption(f"phyjudge_{name}", None)
            if value is not None:
                return value
            text = str(config.getini(f"phyjudge_{name}") or "").strip()
            if not text:
                return None
            try:
                return parse(text) if parse else text
            except argparse.ArgumentTypeError as exc:
                raise pytest.UsageError(f"ini option phyjudge_{name}: {exc}") from None

        def path_option(name: str) -> Path | None:
            value = config.getoption(f"phyjudge_{name}", None)
            base = config.invocation_params.dir
            if value is None and str(config.getini(f"phyjudge_{name}") or "").strip():
                # An ini path is relative to the ini file, as other path-valued ini options are.
                value = str(config.getini(f"phyjudge_{name}")).strip()
                base = config.inipath.parent if config.inipath else config.rootpath
            return None if value is None else Path(base, value).absolute()

        def flag(name: str) -> bool:
            return bool(config.getoption(f"phyjudge_{name}", False))

        min_score = pick("min_score", parse_min_score)
        cache = pick("cache")
        identity = pick("remote_identity")
        options = cls(
            adapter=pick("adapter") or DEFAULT_ADAPTER,
            revision=pick("revision"),
            device=pick("device", parse_device),
            dtype=pick("dtype", parse_dtype),
            min_score=DEFAULT_MIN_SCORE if min_score is None else min_score,
            report=path_option("report"),
            judge=pick("judge", parse_judge_spec),
            regenerate=bool(config.getoption("phyjudge_regenerate", False)),
            per_worker_model=bool(config.getoption("phyjudge_per_worker_model", False)),
            suite_globs=tuple(config.getini("phyjudge_suite_glob") or DEFAULT_SUITE_GLOBS),
            cache=None if cache is None else Path(config.invocation_params.dir, cache).absolute(),
            cache_mode=pick("cache_mode", parse_cache_mode) or "use",
            scoring=pick("scoring", parse_scoring) or "greedy",
            baseline=path_option("baseline"),
            update_baseline=flag("update_baseline"),
            prune_baseline=flag("prune_baseline"),
            baseline_any_judge=flag("baseline_any_judge"),
            compare_plot=path_option("compare_plot"),
            url=pick("url", parse_url_list) or (),
            remote_identity=None
            if identity is None
            else Path(config.invocation_params.dir, identity).absolute(),
            media_root=pick("media_root"),
            concurrency=pick("concurrency", parse_positive_int),
            timeout=pick("timeout", parse_positive_float),
            retries=pick("retries", parse_count),
        )
        options.check()
        return options

    def check(self) -> None:
        """Refuse settings that contradict each other, naming both."""
        if self.url and self.judge:
            raise pytest.UsageError(
                f"--phyjudge-url and --phyjudge-judge {self.judge} both choose the judge; "
                "keep one of them."
            )

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["report"] = None if self.report is None else str(self.report)
        data["suite_globs"] = list(self.suite_globs)
        for name in ("cache", "baseline", "compare_plot", "remote_identity"):
            value = getattr(self, name)
            data[name] = None if value is None else str(value)
        data["url"] = list(self.url)
        return data


# --------------------------------------------------------------------------- judges


def import_object(spec: str, what: str) -> Any:
    """``package.module:attr`` -> the object; a PhyJudgeError naming ``what`` otherwise."""
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except ImportError as exc:
        raise PhyJudgeError(
            f"Cannot import the {what} {spec!r}: {describe_error(exc)}. Make the module "
            "importable: install it, or add its folder to pytest's `pythonpath` ini option."
        ) from exc
    except AttributeError:
        raise PhyJudgeError(
            f"The module {module_name!r} has no {attr!r}, so the {what} {spec!r} does not "
            "exist. Check the name after the colon."
        ) from None
    return obj


def user_frames(exc: BaseException) -> str:
    """The traceback lines of ``exc`` outside pytest, pluggy and this plugin (user code)."""
    import pluggy

    skip = (
        str(Path(__file__).parents[1]),
        str(Path(pluggy.__file__).parent),
        str(Path(pytest.__file__).parent.parent / "_pytest"),
    )
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(skip)]
    return "".join(traceback.format_list(frames[-4:])).rstrip()


def _call_factory(factory: Any, config: pytest.Config) -> Any:
    try:
        wants_config = any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            for p in inspect.signature(factory).parameters.values()
        )
    except (TypeError, ValueError):
        wants_config = False
    return factory(config) if wants_config else factory()


def _tiny_folder(config: pytest.Config) -> Path:
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("phyjudge-tiny"))
    import tempfile

    return Path(tempfile.gettempdir()) / "pytest-phyjudge-tiny"


def _default_hook_only(config: pytest.Config) -> bool:
    """True when no conftest or plugin implements ``pytest_phyjudge_make_judge``."""
    impls = config.pluginmanager.hook.pytest_phyjudge_make_judge.get_hookimpls()
    return all(impl.plugin_name == "phyjudge" for impl in impls)


def plan_remote_judge(options: Options) -> RemotePlan:
    """The judge on the servers of ``--phyjudge-url``."""
    from pytest_phyjudge.judges.remote import parse_media_root, plan_remote

    remote: dict[str, Any] = {
        "concurrency": options.concurrency,
        "read_timeout": options.timeout,
        "retries": options.retries,
        "media_root": None if options.media_root is None else parse_media_root(options.media_root),
    }
    return plan_remote(
        options.url,
        identity=options.remote_identity,
        scoring=options.scoring,
        **{name: value for name, value in remote.items() if value is not None},
    )


def plan_default_judge(config: pytest.Config, options: Options) -> JudgePlan | RemotePlan | None:
    """The plan of the judge this run will load (PhyJudge-9B, the adapter given, the tiny
    judge, or the judge servers), known without loading a model; None for a judge from a
    factory or a hook."""
    from pytest_phyjudge.judges.loading import plan_judge

    if options.url:
        return plan_remote_judge(options)
    if options.judge == TINY:
        from pytest_phyjudge.testing import ensure_tiny_judge

        return plan_judge(ensure_tiny_judge(_tiny_folder(config)), scoring=options.scoring)
    if options.judge or not _default_hook_only(config):
        return None
    return plan_judge(options.adapter, revision=options.revision, scoring=options.scoring)


def load_default_judge(config: pytest.Config, options: Options) -> Judge:
    """PhyJudge-9B (or ``--phyjudge-adapter``), as the last ``make_judge`` hook does."""
    plan = plan_default_judge(config, options)
    assert plan is not None
    return _load_plan(plan, options, config)


def _load_plan(plan: JudgePlan | RemotePlan, options: Options, config: pytest.Config) -> Judge:
    from pytest_phyjudge.judges.remote import RemotePlan

    if isinstance(plan, RemotePlan):
        return plan.load()  # connections only: every xdist worker may open its own
    if (
        hasattr(config, "workerinput")
        and plan.identity.kind != "tiny"
        and not options.per_worker_model
    ):
        raise JudgeLoadError(
            f"This pytest-xdist worker ({config.workerinput.get('workerid', '?')}) would load "
            f"its own copy of the judge ({plan.identity.describe()}, about 24 GB for "
            "PhyJudge-9B). Run with -n 0, replay recorded judgments with "
            "--phyjudge-cache-mode only, or pass --phyjudge-per-worker-model if every worker "
            "really should load one."
        )
    device = options.device or ("cpu" if plan.identity.kind == "tiny" else None)
    return plan.load(device=device, dtype=options.dtype)


def _cache_folder(config: pytest.Config, options: Options) -> Path:
    from pytest_phyjudge.judges.store import CACHE_DIR_NAME

    if options.cache is not None:
        return options.cache
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir(CACHE_DIR_NAME))
    return Path(config.rootpath, ".pytest_cache", "d", CACHE_DIR_NAME)


def _make_uncached(
    config: pytest.Config, options: Options, plan: JudgePlan | RemotePlan | None
) -> Judge:
    if plan is not None:
        return _load_plan(plan, options, config)
    if options.judge:
        judge = _call_factory(import_object(options.judge, "judge factory"), config)
    else:
        judge = config.hook.pytest_phyjudge_make_judge(config=config)
    if not isinstance(judge, Judge):
        where = f"--phyjudge-judge {options.judge}" if options.judge else "the make_judge hook"
        raise JudgeLoadError(
            f"{where} returned {type(judge).__name__}, not a pytest_phyjudge.Judge; return a "
            "judge such as load_judge(...) or ScriptedJudge(...)."
        )
    return judge


def _with_cache(config: pytest.Config, options: Options) -> Judge:
    """The run's judge behind the judgment cache. For the default and tiny judges the cache
    is consulted before any model is loaded (so ``only`` never loads one); a judge from a
    factory or hook is made first. Scripted judges are never cached."""
    from pytest_phyjudge.judges.cached import CachedJudge
    from pytest_phyjudge.judges.store import JudgmentCache

    plan = None if options.cache_mode == "off" else plan_default_judge(config, options)
    described: JudgePlan | RemotePlan | Judge
    if plan is None:
        judge = _make_uncached(config, options, None)
        if options.cache_mode == "off" or judge.identity.kind == "scripted":
            return judge
        described, load = judge, lambda: judge
    else:
        described, load = plan, lambda: _make_uncached(config, options, plan)
    return CachedJudge(
        identity=described.identity,
        rubric=described.rubric,
        settings=described.settings,
        cache=JudgmentCache(_cache_folder(config, options)),
        mode=options.cache_mode,
        load=load,
    )


def make_judge(config: pytest.Config, options: Options) -> Judge:
    """``--phyjudge-judge``, else the ``pytest_phyjudge_make_judge`` hook, behind the
    judgment cache. Every failure is a JudgeLoadError with a one-paragraph message."""
    spec = options.judge
    where = f"--phyjudge-judge {spec}" if spec else "the pytest_phyjudge_make_judge hook"
    try:
        judge = _with_cache(config, options)
    except JudgeLoadError:
        raise
    except PhyJudgeError as exc:
        raise JudgeLoadError(f"{exc} (from {where})") from exc
    except Exception as exc:
        frames = user_frames(exc)
        raise JudgeLoadError(
            f"The judge could not be made ({where}): {describe_error(exc)}."
            + (f"\n{frames}" if frames else "")
        ) from exc
    return judge


# --------------------------------------------------------------------------- the baseline


def load_run_baseline(options: Options) -> Baseline | None:
    """The run's baseline, read once; bad flags or a bad file are a UsageError."""
    needs = {
        "--phyjudge-update-baseline": options.update_baseline,
        "--phyjudge-prune-baseline": options.prune_baseline,
        "--phyjudge-baseline-any-judge": options.baseline_any_judge,
        "--phyjudge-compare-plot": options.compare_plot is not None,
    }
    if options.baseline is None:
        given = [flag for flag, on in needs.items() if on]
        if given:
            raise pytest.UsageError(
                f"{given[0]} works on a baseline; name it with --phyjudge-baseline PATH."
            )
        return None
    if options.prune_baseline and not options.update_baseline:
        raise pytest.UsageError(
            "--phyjudge-prune-baseline removes entries while updating the baseline; add "
            "--phyjudge-update-baseline."
        )
    from pytest_phyjudge.regression.baseline import load_baseline

    try:
        baseline = load_baseline(options.baseline)
    except PhyJudgeError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not baseline.exists and not options.update_baseline:
        raise pytest.UsageError(
            f"The baseline {options.baseline} does not exist. Create it from this run's scores "
            "with --phyjudge-update-baseline (then commit it)."
        )
    return baseline


# --------------------------------------------------------------------------- the state

CaseKey = tuple[str, str]
#: What one axis of a case came to: a Judgment, or the error that stopped it (a
#: PhyJudgeError for bad input or an unreadable reply, anything else for a bug).
Outcome = Judgment | Exception


class PhyJudgeState:
    """Everything one run shares: the judge (made on first use), each case's judgments
    (computed once for all its items) and the checks waiting for their test report."""

    def __init__(self, config: pytest.Config, options: Options) -> None:
        self.config = config
        self.options = options
        self._judge: Judge | None = None
        self._load_error: JudgeLoadError | None = None
        self._cases: dict[CaseKey, dict[str, Outcome]] = {}
        self._axes_index: dict[CaseKey, list[str]] | None = None
        # Cases judged ahead in the background (judge servers only).
        self._ahead: dict[CaseKey, Future[dict[str, Any]]] = {}
        self._ahead_pool: ThreadPoolExecutor | None = None
        self._order: list[tuple[CaseKey, pytest.Item]] | None = None
        self._position: dict[CaseKey, int] = {}
        self._checks: dict[str, list[Check]] = {}
        self.current_item: pytest.Item | None = None
        self.judge_loads = 0
        self.cache_stats: tuple[Any, str, Path] | None = None
        self.judge_summary: str | None = None
        self.baseline: Baseline | None = load_run_baseline(options)

    # -- the judge

    @property
    def judge_loaded(self) -> bool:
        return self._judge is not None

    def judge(self) -> Judge:
        """The run's judge, made on first call; a failed load is not retried for every item."""
        if self._judge is not None:
            return self._judge
        if self._load_error is not None:
            raise self._load_error.with_traceback(None)
        self.judge_loads += 1
        try:
            self._judge = make_judge(self.config, self.options)
        except JudgeLoadError as exc:
            self._load_error = exc
            raise
        return self._judge

    def close(self) -> None:
        if self._ahead_pool is not None:
            self._ahead_pool.shutdown(wait=False, cancel_futures=True)
            self._ahead_pool = None
        self._ahead.clear()
        judge, self._judge = self._judge, None
        if judge is not None:
            self.judge_summary = judge.summary()
            stats = getattr(judge, "stats", None)
            if stats is not None:  # a CachedJudge: kept for the terminal summary
                self.cache_stats = (stats, judge.mode, judge.cache.path)  # type: ignore[attr-defined]
            judge.close()

    # -- suite cases

    def case_axes(self, key: CaseKey, items: Sequence[pytest.Item]) -> list[str]:
        """The axes of a case that this run selected (so ``-k gravity`` scores one axis).

        Empty on a pytest-xdist worker that may get only some items of a case (``--dist
        load`` or ``worksteal``): there each item judges its own axis, since judging the
        whole case would judge the other workers' axes a second time. ``--dist loadscope``
        sends a case's items to one worker, which then judges them together.
        """
        if self._splits_cases():
            return []
        if self._axes_index is None:
            index: dict[CaseKey, list[str]] = {}
            for item in items:
                item_key = getattr(item, "phyjudge_case_key", None)
                if item_key is not None:
                    index.setdefault(item_key, []).append(item.phyjudge_axis)  # type: ignore[attr-defined]
            self._axes_index = index
        return self._axes_index.get(key, [])

    def _splits_cases(self) -> bool:
        if not hasattr(self.config, "workerinput"):
            return False
        return self.config.getoption("dist", "no") not in ("loadscope", "loadfile")

    def case_outcomes(
        self,
        key: CaseKey,
        axes: Iterable[str],
        judge_case: Any,
    ) -> dict[str, Outcome]:
        """Each axis' Judgment or error, from ``judge_case(missing_axes)`` for those not
        judged yet: a case is judged once, in one ``score_many`` call, for all its items
        (or was judged ahead, in the background; see :meth:`look_ahead`)."""
        done = self._cases.setdefault(key, {})
        ahead = self._ahead.pop(key, None)
        if ahead is not None:
            done.update(ahead.result())
        missing = [axis for axis in dict.fromkeys(axes) if axis not in done]
        if missing:
            done.update(judge_case(missing))
        return done

    def look_ahead(self, item: pytest.Item, items: Sequence[pytest.Item]) -> None:
        """With judge servers, start judging the cases after ``item``'s in the background,
        enough of them to keep ``--phyjudge-concurrency`` requests in flight: one case's
        axes alone rarely do. Only cases whose videos are files are judged ahead (never a
        generator in a background thread), and only once the judge is up. Not on an xdist
        worker: it knows every item, not which ones it will run."""
        from pytest_phyjudge.judges.remote import DEFAULT_CONCURRENCY

        if not self.options.url or self._judge is None or hasattr(self.config, "workerinput"):
            return
        if self._order is None:
            firsts: dict[CaseKey, pytest.Item] = {}
            for other in items:
                other_key = getattr(other, "phyjudge_case_key", None)
                if other_key is not None:
                    firsts.setdefault(other_key, other)
            self._order = list(firsts.items())
            self._position = {key: i for i, (key, _) in enumerate(self._order)}
        here = self._position.get(getattr(item, "phyjudge_case_key", ("", "")), -1)
        axes = max(1, len(self.case_axes(getattr(item, "phyjudge_case_key", ("", "")), items)))
        window = max(1, -(-(self.options.concurrency or DEFAULT_CONCURRENCY) // axes))
        if self._ahead_pool is None:
            self._ahead_pool = ThreadPoolExecutor(window, thread_name_prefix="phyjudge-ahead")
        for key, first in self._order[here + 1 : here + 1 + window]:
            if key in self._cases or key in self._ahead:
                continue
            if not getattr(first, "phyjudge_prefetchable", False):
                continue
            job = first._judge_case  # type: ignore[attr-defined]
            self._ahead[key] = self._ahead_pool.submit(job, self.case_axes(key, items))

    # -- checks

    def add_check(self, check: Check, item: pytest.Item | None = None) -> None:
        """Keep ``check`` for the report of ``item`` (default: the running test) and put its
        JUnit properties on that item."""
        item = item or self.current_item
        if check.judgment is not None:
            check.judge = check.judgment.judge
        elif check.judge is None and self._judge is not None:
            check.judge = self._judge.identity
        if not check.settings and self._judge is not None:
            check.settings = dict(self._judge.settings)
        if item is not None:
            check.nodeid = item.nodeid
            item.user_properties.extend(
                [
                    ("phyjudge_axis", check.axis),
                    ("phyjudge_score", "" if check.value is None else check.value),
                    ("phyjudge_min_score", check.min_score),
                ]
            )
            if check.samples is not None:
                scores = " ".join(
                    "-" if s["score"] is None else str(s["score"]) for s in check.samples
                )
                item.user_properties.append(("phyjudge_samples", scores))
        self._checks.setdefault(check.nodeid, []).append(check)

    def pop_checks(self, nodeid: str) -> list[Check]:
        return self._checks.pop(nodeid, [])

    def pop_all_checks(self) -> list[Check]:
        """Checks no test report carried (made outside any test, or by an interrupted one)."""
        left = [c for checks in self._checks.values() for c in checks]
        self._checks.clear()
        return left


# --------------------------------------------------------------------------- lookup

STATE_KEY = pytest.StashKey[PhyJudgeState]()
_ACTIVE: list[PhyJudgeState] = []


def activate(state: PhyJudgeState) -> None:
    state.config.stash[STATE_KEY] = state
    _ACTIVE.append(state)


def deactivate(config: pytest.Config) -> PhyJudgeState | None:
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return None
    del config.stash[STATE_KEY]
    if state in _ACTIVE:
        _ACTIVE.remove(state)
    return state


def state_of(config: pytest.Config) -> PhyJudgeState:
    return config.stash[STATE_KEY]


def active() -> PhyJudgeState | None:
    """The state of the innermost running pytest session with this plugin, if any."""
    return _ACTIVE[-1] if _ACTIVE else None
