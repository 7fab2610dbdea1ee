"""The one way a judge is made, for pytest and the ``phyjudge`` command alike.

:func:`build_judge` plans the judge (who it is and how its prompts read, known without
loading a model), puts the judgment cache in front of it, and loads the model only on the
first judgment the cache does not hold, so a replay never loads one. The plan is, in order:

1. a judge identity file (``--phyjudge-identity``), for a replay with no model at all;
2. in replay mode (``only``), the judge the cache recorded, when that choice is unambiguous;
3. judge servers (``--phyjudge-url``);
4. the tiny test judge (``tiny``), built once under ``settings.tiny_folder``;
5. the adapter (a hub id or a folder), PhyJudge-9B by default.

A judge from a user factory (``module:factory``) or from a ``pytest_phyjudge_make_judge`` hook
is made first, then cached the same way; a scripted judge is never cached.
"""

from __future__ import annotations

import importlib
import inspect
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import (
    InputError,
    JudgeLoadError,
    PhyJudgeError,
    describe_error,
)
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.engine.rubric import Rubric
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.judges.cache.judge import CachedJudge
from pytest_phyjudge.judges.cache.record import JudgeRecord, read_identity_file
from pytest_phyjudge.judges.cache.store import DB_NAME, JudgmentCache
from pytest_phyjudge.judges.local.loading import JudgePlan, plan_judge
from pytest_phyjudge.judges.remote.judge import RemotePlan, plan_remote
from pytest_phyjudge.judges.settings import (
    DEFAULT_ADAPTER,
    PYTEST_SURFACE,
    JudgeConfig,
    JudgeSettings,
    Surface,
)
from pytest_phyjudge.judges.tiny import ensure_tiny_judge, machine_folder

#: Where the tiny judge is built when no folder is given.
#: Paths whose frames are not the user's code, in a traceback shown to the user.
_NOT_USER_CODE = (str(Path(__file__).parents[1]), "/_pytest/", "/pluggy/")


@dataclass(frozen=True)
class ReplayPlan:
    """A judge known from its record only: it keys and replays recorded judgments, and
    cannot judge anything new."""

    record: JudgeRecord
    config: JudgeConfig = field(default_factory=JudgeConfig)
    #: Whose flags the refusal to judge names.
    surface: Surface = PYTEST_SURFACE

    @property
    def settings(self) -> dict[str, Any]:
        """The keyed settings the replay looks judgments up under."""
        return self.config.keyed()

    @property
    def identity(self) -> JudgeIdentity:
        return self.record.identity

    @property
    def rubric(self) -> Rubric:
        return self.record.rubric

    def load(self) -> Judge:
        raise JudgeLoadError(
            f"The judge {self.record.describe()} is known here only from its record (replay "
            f"mode, {self.surface.flag('cache-mode', 'only')}): judgments that were not "
            "recorded cannot be made on this machine. Record them where the judge runs, then "
            "import them."
        )


def build_judge(
    settings: JudgeSettings,
    *,
    hook: Callable[[], Judge | None] | None = None,
    context: Any = None,
    worker: str | None = None,
    guard: Callable[[Callable[[], Judge]], Judge] | None = None,
) -> Judge:
    """The judge ``settings`` describe, behind the judgment cache.

    ``hook`` is asked first for a judge of the user's own (it returns None for "no opinion":
    the default judge is used then). ``context`` is handed to a ``module:factory`` that takes
    one positional argument (the pytest config). ``worker`` names a pytest-xdist worker: it
    may not load a model of its own unless ``settings.per_worker_model``. ``guard`` brings
    up the real judge (it is handed the function that does): at once for a judge with no
    cache in front, else on the cache's first miss, never in replay (the canary check).
    Every failure is a JudgeLoadError with a one-paragraph message.
    """
    where = settings.flag("judge", settings.judge) if settings.judge else "the judge settings"
    try:
        custom = _custom_judge(settings, hook, context)
        if custom is not None:
            return _cached(settings, custom, custom, lambda: custom, guard)
        plan = plan_judge_for(settings)
        return _cached(
            settings, None, plan, lambda: load_plan(plan, settings, worker=worker), guard
        )
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


def _cached(
    settings: JudgeSettings,
    made: Judge | None,
    described: Any,
    load: Callable[[], Judge],
    guard: Callable[[Callable[[], Judge]], Judge] | None = None,
) -> Judge:
    """``described`` (a plan, or a judge already made) behind the cache, where one is kept;
    ``load`` (which returns ``made`` when there is one) goes through ``guard``."""
    if guard is not None:
        bring_up = load

        def load() -> Judge:
            return guard(bring_up)

    no_cache = settings.cache_mode == "off" or settings.cache_dir is None
    # A scripted judge made here answers at once and means nothing: not worth recording.
    if no_cache or (made is not None and made.identity.kind == "scripted"):
        return load()
    return CachedJudge(
        identity=described.identity,
        rubric=described.rubric,
        settings=described.settings,
        cache=JudgmentCache(
            settings.cache_dir,
            read_only=settings.cache_mode == "only",
            surface=settings.surface,
        ),
        mode=settings.cache_mode,
        load=load,
        surface=settings.surface,
    )


# --------------------------------------------------------------------------- planning


def plan_judge_for(settings: JudgeSettings) -> JudgePlan | RemotePlan | ReplayPlan:
    """The judge ``settings`` name, known without loading a model (see the module doc)."""
    if settings.identity_file is not None:
        if settings.cache_mode != "only":
            raise InputError(
                f"{settings.flag('identity', settings.identity_file)} names a recorded judge, "
                f"which can only replay; add {settings.flag('cache-mode', 'only')} (or drop the "
                "identity to judge with the model)."
            )
        record = read_identity_file(settings.identity_file, settings.surface)
        return ReplayPlan(record, settings.config, settings.surface)
    if settings.cache_mode == "only" and not settings.url:
        record = recorded_judge(settings)
        if record is not None:
            return ReplayPlan(record, settings.config, settings.surface)
    if settings.url:
        return _plan_remote(settings)
    adapter: str | Path = settings.adapter
    if settings.is_tiny:
        adapter = ensure_tiny_judge(settings.tiny_folder or machine_folder())
    return plan_judge(
        adapter,
        revision=None if settings.is_tiny else settings.revision,
        base_model=settings.base_model,
        config=settings.config,
    )


def _plan_remote(settings: JudgeSettings) -> RemotePlan:
    return plan_remote(
        settings.url,
        identity=settings.remote_identity,
        config=settings.config,
        top_logprobs=settings.top_logprobs,
        surface=settings.surface,
        concurrency=settings.concurrency,
        read_timeout=settings.timeout,
        retries=settings.retries,
        media_root=settings.media_root,
    )


def recorded_judge(settings: JudgeSettings) -> JudgeRecord | None:
    """The judge a replay should use, from those the cache recorded: the only one, or the
    only one that matches the judge the settings name (tiny, or an adapter). None when the
    cache recorded none that fits; an InputError listing them when several fit."""
    if settings.cache_dir is None or not (settings.cache_dir / DB_NAME).is_file():
        return None  # nothing recorded there: a replay cannot name a judge from it
    cache = JudgmentCache(
        settings.cache_dir, read_only=settings.cache_mode == "only", surface=settings.surface
    )
    try:
        records = cache.judges()
    finally:
        cache.close()
    fitting = [r for r in records if _fits(r.identity, settings)]
    if len(fitting) == 1:
        return fitting[0]
    if len(fitting) > 1:
        listed = "\n".join(f"  - {r.describe()}" for r in fitting)
        raise InputError(
            f"The judgment cache {cache.path} holds judgments of {len(fitting)} judges, and this "
            f"run names none of them:\n{listed}\nName one with {settings.flag('identity', 'FILE')} "
            f"('phyjudge cache export' writes one file per judge), or with "
            f"{settings.flag('adapter')} or {settings.flag('judge')}."
        )
    return None


def _fits(identity: JudgeIdentity, settings: JudgeSettings) -> bool:
    if settings.is_tiny:
        return identity.kind == "tiny"
    if settings.adapter != DEFAULT_ADAPTER or settings.revision:
        same_name = identity.adapter == settings.adapter or (
            Path(identity.adapter).name == Path(settings.adapter).name
        )
        return same_name and (settings.revision is None or identity.revision == settings.revision)
    return True


# --------------------------------------------------------------------------- loading


def load_plan(
    plan: JudgePlan | RemotePlan | ReplayPlan, settings: JudgeSettings, *, worker: str | None = None
) -> Judge:
    """Bring up the judge of ``plan``: connections for servers, a model otherwise."""
    if not isinstance(plan, JudgePlan):
        return plan.load()  # servers: connections only, every xdist worker may open its own
    if worker is not None and plan.identity.kind != "tiny" and not settings.per_worker_model:
        raise JudgeLoadError(
            f"This pytest-xdist worker ({worker}) would load its own copy of the judge "
            f"({plan.identity.describe()}, about 24 GB for PhyJudge-9B). Run with -n 0, replay "
            f"recorded judgments with {settings.flag('cache-mode', 'only')}, judge on servers "
            f"with {settings.flag('url')}, or pass {settings.flag('per-worker-model')} if every "
            "worker really should load one."
        )
    device = settings.device or ("cpu" if plan.identity.kind == "tiny" else None)
    return plan.load(
        device=device,
        dtype=settings.dtype,
        attn_implementation=settings.attn_implementation,
        threads=settings.threads,
        surface=settings.surface,
    )


def _custom_judge(
    settings: JudgeSettings, hook: Callable[[], Judge | None] | None, context: Any
) -> Judge | None:
    if settings.factory:
        what = settings.flag("judge", settings.factory)
        judge = _call_factory(import_object(settings.factory, "judge factory"), context)
    elif hook is not None and not settings.url and not settings.is_tiny:
        what = "the pytest_phyjudge_make_judge hook"
        judge = hook()
        if judge is None:
            return None  # no opinion: the default judge
    else:
        return None
    if not isinstance(judge, Judge):
        raise JudgeLoadError(
            f"{what} returned {type(judge).__name__}, not a pytest_phyjudge.Judge; return a "
            "judge such as load_judge(...) or ScriptedJudge(...)."
        )
    return judge


def _call_factory(factory: Any, context: Any) -> Any:
    """``factory(context)`` when it takes a positional argument, else ``factory()``."""
    try:
        wants_context = any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            for p in inspect.signature(factory).parameters.values()
        )
    except (TypeError, ValueError):
        wants_context = False
    return factory(context) if wants_context else factory()


# --------------------------------------------------------------------------- helpers


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
    """The last traceback lines of ``exc`` in the user's code (not pytest, pluggy or ours)."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not any(part in f.filename for part in _NOT_USER_CODE)
    ]
    return "".join(traceback.format_list(frames[-4:])).rstrip()
