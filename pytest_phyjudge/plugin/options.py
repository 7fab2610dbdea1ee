"""The plugin's command-line and ini options, each parsed once where it comes in.

An option given on the command line wins over its ini value, which wins over the default.
Bad command-line values are usage errors through ``type=``; an ini value goes through the
same parser and its error names the ini option.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_phyjudge._exceptions import InputError
from pytest_phyjudge.canary.compare import Tolerances
from pytest_phyjudge.judges.options import BY_NAME, JUDGE_OPTIONS, settings_from
from pytest_phyjudge.judges.settings import (
    CACHE_DIR_NAME,
    DEFAULT_MIN_SCORE,
    PYTEST_SURFACE,
    TINY_DIR_NAME,
    CanaryMode,
    JudgeSettings,
    Verdicts,
    parse_min_score,
)
from pytest_phyjudge.suites.generators import INI_OPTION, GeneratorSpec, parse_generator_lines

DEFAULT_SUITE_GLOBS = ("*.phyjudge.yaml", "*.phyjudge.yml")


def parse_switch(text: str) -> bool:
    """``on`` or ``off`` (also true/false, yes/no, 1/0), as a bool."""
    value = text.strip().lower()
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is neither 'on' nor 'off'")


#: (name, help, parser, metavar) of the run's own options that take a value; each has an ini
#: twin. The judge's settings come from the option table (``judges/options.py``).
_VALUED: list[tuple[str, str, Callable[[str], Any] | None, str]] = [
    ("min-score", f"default minimum score 1-5 of every judged axis (default {DEFAULT_MIN_SCORE}).",
     parse_min_score, "N"),
    ("report", "write a PhyGround-style scores.json here (and a contact sheet of each case "
     "beside it), also when the run fails or is interrupted.", None, "PATH"),
    ("html", "write an HTML report into DIR: index.html with each case's clip, scores, "
     "samples and replies; opens from disk, offline.", None, "DIR"),
    ("sheets", "contact sheets of each case's frames: on (the default, with a report) or off.",
     parse_switch, "on|off"),
    ("baseline", "regression baseline (a JSON file to commit): an item fails when its score "
     "drops below its entry by more than the case's tolerance.", None, "PATH"),
    ("compare-plot", "write a PNG chart of this run's per-axis means against the baseline's.",
     None, "PATH"),
]  # fmt: skip
_FLAGS = [
    ("update-baseline", "write this run's scores into the baseline (new cases added, the old "
     "file kept as .bak); drops do not fail items."),
    ("prune-baseline", "with --phyjudge-update-baseline: drop entries this run did not judge."),
    ("baseline-any-judge", "compare with (or update) a baseline made by another judge."),
    ("regenerate", "make every generated clip again instead of reusing the cached one."),
]  # fmt: skip
#: Options whose value is a path: relative to the current folder on the command line, and to
#: the ini file in the ini file.
_PATHS = (
    "report", "html", "baseline", "compare-plot", *(o.name for o in JUDGE_OPTIONS if o.path)
)  # fmt: skip


def _dest(name: str) -> str:
    return "phyjudge_" + name.replace("-", "_")


def add_options(parser: pytest.Parser) -> None:
    """``pytest_addoption``: one group, an ini twin for every option that takes a value."""
    group = parser.getgroup("phyjudge", "physics assertions judged by PhyJudge (pytest-phyjudge)")
    for option in JUDGE_OPTIONS:  # the judge's settings, from the one table
        text = option.help_on(PYTEST_SURFACE)
        if option.switch:
            group.addoption(
                option.pytest_flag, dest=_dest(option.name), action="store_true", default=False,
                help=text,
            )  # fmt: skip
            continue
        typed: dict[str, Any] = {"type": option.parse} if option.parse else {}
        group.addoption(
            option.pytest_flag, dest=_dest(option.name), default=None, help=text,
            metavar=option.metavar, **typed,
        )  # fmt: skip
        parser.addini(_dest(option.name), f"default for {option.pytest_flag}", type="string",
                      default="")  # fmt: skip
    for name, text, parse, metavar in _VALUED:
        kwargs: dict[str, Any] = {"type": parse} if parse else {}
        group.addoption(
            f"--phyjudge-{name}", dest=_dest(name), default=None, help=text, metavar=metavar,
            **kwargs,
        )  # fmt: skip
        parser.addini(_dest(name), f"default for --phyjudge-{name}", type="string", default="")
    for name, text in _FLAGS:
        group.addoption(
            f"--phyjudge-{name}", dest=_dest(name), action="store_true", default=False, help=text
        )
    parser.addini(
        "phyjudge_suite_glob",
        "file name patterns of YAML suites to collect",
        type="args",
        default=list(DEFAULT_SUITE_GLOBS),
    )
    parser.addini(
        INI_OPTION,
        "video generators a suite may name: one `name = package.module:function` a line "
        "(imported only when a clip must be made)",
        type="linelist",
        default=[],
    )


@dataclass(frozen=True)
class Options:
    """The plugin's settings: the judge's, and the run's own (thresholds, reports, baselines)."""

    judge: JudgeSettings = field(default_factory=JudgeSettings)
    min_score: int = DEFAULT_MIN_SCORE
    report: Path | None = None
    html: Path | None = None
    sheets: bool = True
    regenerate: bool = False
    suite_globs: tuple[str, ...] = DEFAULT_SUITE_GLOBS
    #: Regression baseline (a JSON file users commit) and what to do with it.
    baseline: Path | None = None
    update_baseline: bool = False
    prune_baseline: bool = False
    baseline_any_judge: bool = False
    #: PNG chart of this run against its baseline.
    compare_plot: Path | None = None
    #: Generators registered in the ini file (not imported).
    generators: tuple[GeneratorSpec, ...] = ()
    #: The judge's canary file, checked once before the run's first judgment, and what a
    #: judge that fails the check does to the run.
    canaries: Path | None = None
    canary_mode: CanaryMode = "fail"
    #: How far the judge may move from its canaries (the rows ``canary-max-*`` of the table).
    canary_tolerances: Tolerances = field(default_factory=Tolerances)

    #: Prompts a suite's diffusers ``pipeline:`` makes clips of in one call.
    generate_batch: int = 1
    #: ``report``: a score below its threshold is recorded as "would fail", the item passes.
    verdicts: Verdicts = "enforce"

    @property
    def enforced(self) -> bool:
        """A score below its threshold fails its item (``--phyjudge-verdicts enforce``)."""
        return self.verdicts == "enforce"

    @classmethod
    def from_config(cls, config: pytest.Config) -> Options:
        values = _Values(config)
        try:
            judge = settings_from(
                lambda option: (
                    values.flag(option.name) if option.switch else values.get(option.name)
                ),
                PYTEST_SURFACE,
                cache_dir=values.get("cache") or _default_cache_dir(config),
                tiny_folder=_tiny_folder(config),
            )
            _check_cache_kept(judge)
            generators = parse_generator_lines(config.getini(INI_OPTION))
        except InputError as exc:
            raise pytest.UsageError(str(exc)) from None
        return cls(
            judge=judge,
            min_score=_given(values.get("min-score"), DEFAULT_MIN_SCORE),
            report=values.get("report"),
            html=values.get("html"),
            sheets=_given(values.get("sheets"), True),
            regenerate=values.flag("regenerate"),
            suite_globs=tuple(config.getini("phyjudge_suite_glob") or DEFAULT_SUITE_GLOBS),
            baseline=values.get("baseline"),
            update_baseline=values.flag("update-baseline"),
            prune_baseline=values.flag("prune-baseline"),
            baseline_any_judge=values.flag("baseline-any-judge"),
            compare_plot=values.get("compare-plot"),
            generators=generators,
            canaries=values.get("canaries"),
            canary_mode=_given(values.get("canary-mode"), "fail"),
            canary_tolerances=Tolerances(
                *(_given(values.get(name), BY_NAME[name].fallback) for name in _TOLERANCES)
            ),
            generate_batch=_given(values.get("generate-batch"), 1),
            verdicts=_given(values.get("verdicts"), "enforce"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for the report's ``settings``."""
        data = self.judge.to_dict()
        data.update(
            min_score=self.min_score,
            report=None if self.report is None else str(self.report),
            html=None if self.html is None else str(self.html),
            sheets=self.sheets,
            regenerate=self.regenerate,
            suite_globs=list(self.suite_globs),
            baseline=None if self.baseline is None else str(self.baseline),
            update_baseline=self.update_baseline,
            prune_baseline=self.prune_baseline,
            baseline_any_judge=self.baseline_any_judge,
            compare_plot=None if self.compare_plot is None else str(self.compare_plot),
            canaries=None if self.canaries is None else str(self.canaries),
            canary_mode=self.canary_mode,
            canary_tolerances=asdict(self.canary_tolerances),
            generate_batch=self.generate_batch,
            verdicts=self.verdicts,
        )
        return data


#: The canary tolerances' rows, in :class:`Tolerances`' order.
_TOLERANCES = ("canary-max-disagree", "canary-max-mean-diff", "canary-max-tv")


def _given(value: Any, default: Any) -> Any:
    return default if value is None else value


class _Values:
    """Reads one option: the command line's parsed value, else the ini text through the same
    parser, else None. Paths come back absolute."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.parsers = {name: parse for name, _, parse, _ in _VALUED}
        self.parsers.update((option.name, option.parse) for option in JUDGE_OPTIONS)

    def flag(self, name: str) -> bool:
        return bool(self.config.getoption(_dest(name), False))

    def get(self, name: str) -> Any:
        value = self.config.getoption(_dest(name), None)
        base = self.config.invocation_params.dir
        if value is None:
            text = str(self.config.getini(_dest(name)) or "").strip()
            if not text:
                return None
            value = self._parse_ini(name, text)
            # An ini path is relative to the ini file, as other path-valued ini options are.
            base = self.config.inipath.parent if self.config.inipath else self.config.rootpath
        if name in _PATHS:
            return Path(base, value).absolute()
        return value

    def _parse_ini(self, name: str, text: str) -> Any:
        parse = self.parsers.get(name)
        try:
            return parse(text) if parse else text
        except argparse.ArgumentTypeError as exc:
            raise pytest.UsageError(f"ini option {_dest(name)}: {exc}") from None


def _pytest_cache_dir(config: pytest.Config, name: str) -> Path:
    """``name`` under pytest's cache dir (``cache_dir`` ini, ``.pytest_cache`` by default),
    not created here: the cache and the tiny judge make their folders when first used."""
    try:
        configured = str(config.getini("cache_dir") or "")
    except ValueError:  # -p no:cacheprovider: the ini option is not even registered
        configured = ""
    folder = Path(os.path.expanduser(configured or ".pytest_cache"))
    return Path(config.rootpath, folder, "d", name)


def _tiny_folder(config: pytest.Config) -> Path | None:
    """Under pytest's cache dir; without the cacheprovider (``-p no:cacheprovider``) None: the
    judge's per-machine build folder is used as it is, and nothing is written here."""
    if not config.pluginmanager.has_plugin("cacheprovider"):
        return None
    return _pytest_cache_dir(config, TINY_DIR_NAME)


def _default_cache_dir(config: pytest.Config) -> Path | None:
    """Under pytest's cache dir; without the cacheprovider None: a user who turned pytest's
    cache off gets no ``.pytest_cache`` from us either, so the judgment cache is off for the
    run unless ``--phyjudge-cache`` names a folder (the summary says so)."""
    if not config.pluginmanager.has_plugin("cacheprovider"):
        return None
    return _pytest_cache_dir(config, CACHE_DIR_NAME)


def _check_cache_kept(settings: JudgeSettings) -> None:
    """A mode that reads or rewrites the cache needs one: without the cacheprovider and
    ``--phyjudge-cache`` there is none, and a replay would load the model instead."""
    if settings.cache_dir is None and settings.cache_mode in ("only", "refresh"):
        raise pytest.UsageError(
            f"{settings.flag('cache-mode', settings.cache_mode)} needs the judgment cache, "
            "which is off with -p no:cacheprovider (it would live under .pytest_cache); name "
            f"its folder with {settings.flag('cache', 'DIR')}."
        )
