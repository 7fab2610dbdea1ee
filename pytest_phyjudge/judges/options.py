"""The judge's settings, declared once: the table that feeds pytest's ``addoption`` and ini
and the ``phyjudge`` command's argparse, and the docs' options reference.

Each row names a setting once, with the parser both surfaces run on its text (an argparse
``type=``, also applied to the ini value), its help, where it goes in :class:`JudgeSettings`
and which surfaces have it. pytest spells a setting ``--phyjudge-<name>`` (ini
``phyjudge_<name>``); the command spells it ``--<cli>`` (``--<name>`` unless renamed). The
default is the :class:`JudgeSettings` field's, so a setting's default is written in one place
too. A new judge setting is a row here and a field there; the docs site's options reference
(``docs/reference/options.md``) is rendered from this table when the site is built.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import MISSING, dataclass, fields
from typing import Any, Literal

from pytest_phyjudge.canary.compare import (
    DEFAULT_MAX_DISAGREE,
    DEFAULT_MAX_MEAN_DIFF,
    DEFAULT_MAX_TV,
)
from pytest_phyjudge.judges.settings import (
    BATCH_CLIPS_HELP,
    CACHE_DIR_NAME,
    CANARY_MODES,
    DEVICES_HELP,
    DTYPES,
    PYTEST_SURFACE,
    TINY,
    JudgeSettings,
    Surface,
    parse_batch_clips,
    parse_cache_mode,
    parse_canary_mode,
    parse_count,
    parse_device,
    parse_dtype,
    parse_fraction,
    parse_judge_spec,
    parse_max_pixels,
    parse_media_root,
    parse_positive_float,
    parse_positive_int,
    parse_score_diff,
    parse_scoring,
    parse_url_list,
    parse_verdicts,
)

#: Where a setting shows in the ``phyjudge`` command's help (and which commands take it):
#: every judging command, those that may judge on servers, those with a cache, score-dir.
#: ``run``: pytest's own, not the judge's (no JudgeSettings field, no command flag).
Group = Literal["judge", "servers", "cache", "batch", "canary", "run"]
GROUP_TITLES: dict[Group, str] = {
    "judge": "judge",
    "servers": "judge servers (instead of a model in this process)",
    "cache": "judgment cache",
    "batch": "batching",
    "canary": "judge canaries (checking the judge's behaviour once per run)",
    "run": "the pytest run (verdicts, generated clips)",
}
#: ``{flag:NAME}`` in a help text: the flag of setting NAME on the surface shown.
_FLAG_REF = re.compile(r"\{flag:([a-z-]+)\}")


@dataclass(frozen=True)
class JudgeOption:
    """One judge setting, as both surfaces take it."""

    #: The setting's name: ``--phyjudge-<name>``, ini ``phyjudge_<name>``.
    name: str
    #: What it does; ``{flag:NAME}`` names another setting's flag on the surface shown.
    help: str
    #: The text's parser (argparse ``type=``; None: the text as given).
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    group: Group = "judge"
    #: The command's flag without ``--`` (default: ``name``); None: pytest only.
    cli: str | None = ""
    #: The default as shown, where it is not the JudgeSettings field's plain value.
    shown_default: str | None = None
    #: A switch (no value, no ini twin) rather than a value.
    switch: bool = False
    #: A path: relative to the current folder, or in the ini to the ini file.
    path: bool = False
    #: A JudgeSettings field. False: a setting of the run about its judge (the canary check),
    #: read by the plugin rather than the judge factory, its default ``fallback``.
    setting: bool = True
    fallback: Any = None

    @property
    def field(self) -> str:
        """The JudgeSettings field it sets (``cache`` -> ``cache_dir``, ...)."""
        return FIELD_OF.get(self.name, self.name.replace("-", "_"))

    @property
    def default(self) -> Any:
        """The JudgeSettings field's default: the value when the setting is not given."""
        if not self.setting:
            return self.fallback
        found = _FIELDS[self.field]
        return None if found.default is MISSING else found.default

    @property
    def cli_flag(self) -> str | None:
        return None if self.cli is None else "--" + (self.cli or self.name)

    @property
    def pytest_flag(self) -> str:
        return PYTEST_SURFACE.flag(self.name)

    @property
    def ini(self) -> str | None:
        return None if self.switch else "phyjudge_" + self.name.replace("-", "_")

    def default_text(self) -> str | None:
        """The default in words, for help texts and the docs; None when there is none."""
        if self.shown_default is not None:
            return self.shown_default
        value = self.default
        if value is None or self.switch or value == ():
            return None
        return f"{value:g}" if isinstance(value, float) else str(value)

    def help_on(self, surface: Surface) -> str:
        """The help text in ``surface``'s words, its default after it."""
        text = _FLAG_REF.sub(lambda m: surface.flag(m.group(1)), self.help)
        default = self.default_text()
        if not default:
            return text
        return f"{text.removesuffix('.')} (default: {default})."


FIELD_OF = {"cache": "cache_dir", "identity": "identity_file"}
_FIELDS = {f.name: f for f in fields(JudgeSettings)}

JUDGE_OPTIONS: tuple[JudgeOption, ...] = (
    JudgeOption("adapter", "PhyJudge adapter: a hub id or a local folder.", None, "ID_OR_DIR",
                cli="adapter-dir"),
    JudgeOption("revision", "hub revision (branch, tag or commit) of the adapter.", None, "REV"),
    JudgeOption("base-model", "another base model (a hub id or a folder) than the one the "
                "adapter's adapter_config.json names.", None, "ID_OR_DIR"),
    JudgeOption("judge", f"the judge to use instead of the adapter: '{TINY}' (a tiny test judge "
                "on the CPU, for dry runs: its scores are meaningless) or "
                "'package.module:factory'.", parse_judge_spec, "SPEC"),
    JudgeOption("device", f"device for the judge: {DEVICES_HELP}.", parse_device, "DEVICE",
                shown_default="cuda when available"),
    JudgeOption("dtype", f"weights dtype: {', '.join(DTYPES)}.", parse_dtype, "DTYPE",
                shown_default="auto: bfloat16 on cuda, else float32"),
    JudgeOption("attn-implementation", "the model's attention kernel, e.g. sdpa, "
                "flash_attention_2, eager.", None, "NAME"),
    JudgeOption("threads", "CPU threads for torch in this process (1 is faster where other "
                "processes share the cores).", parse_positive_int, "N",
                shown_default="torch's, one per core"),
    JudgeOption("scoring", "greedy (the reference: parse the generated reply) or distribution "
                "(probabilities of the digits 1-5 after the answer prefix).", parse_scoring,
                "MODE"),
    JudgeOption("fps", "frames sampled per second of video.", parse_positive_float, "FPS"),
    JudgeOption("max-pixels", "pixels per sampled frame at most.", parse_max_pixels, "N"),
    JudgeOption("max-new-tokens", "tokens of a reply generated at most.", parse_positive_int,
                "N"),
    JudgeOption("url", "judge on OpenAI-compatible servers instead of in this process: vLLM "
                "serving the merged checkpoint, or 'phyjudge serve' (several replicas: "
                "URL,URL,...).", parse_url_list, "URL[,URL...]", group="servers"),
    JudgeOption("remote-identity", "the merged checkpoint (or its phyjudge_provenance.json) the "
                "servers run.", None, "PATH", group="servers",
                shown_default="asked from the servers' /v1/models", path=True),
    JudgeOption("media-root", "videos under DIR are sent as file:// URLs (the servers share "
                "the filesystem) instead of as data; DIR=SERVED_DIR when the servers see it "
                "elsewhere.", parse_media_root, "DIR[=SERVED_DIR]", group="servers"),
    JudgeOption("concurrency", "requests in flight to the judge servers.", parse_positive_int,
                "N", group="servers"),
    JudgeOption("timeout", "seconds to wait for a judge server's whole reply.",
                parse_positive_float, "SECONDS", group="servers"),
    JudgeOption("retries", "retries of a failed request to the judge servers.", parse_count,
                "N", group="servers"),
    JudgeOption("top-logprobs", "next tokens asked for with distribution scoring (the digits "
                "1-5 must be among them; a vLLM server allows its --max-logprobs).",
                parse_positive_int, "N", group="servers"),
    JudgeOption("cache", "folder of the persistent judgment cache.", None, "DIR",
                group="cache", shown_default=f"pytest's cache dir, .pytest_cache/d/"
                f"{CACHE_DIR_NAME}; with -p no:cacheprovider none: the cache is off for the "
                "run", path=True),
    JudgeOption("cache-mode", "use (read and record), refresh (judge again and overwrite), off, "
                "or only (replay recorded judgments, never load a model; a miss fails the "
                "item).", parse_cache_mode, "MODE", group="cache"),
    JudgeOption("identity", "replay judgments of the judge named in FILE (written by 'phyjudge "
                "cache export'), with no adapter or server here; needs "
                "{flag:cache-mode} only.", None, "FILE", group="cache", path=True),
    JudgeOption("batch-clips", f"{BATCH_CLIPS_HELP}.", parse_batch_clips, "N", group="batch",
                shown_default=""),
    JudgeOption("generate-batch", "prompts a suite's diffusers `pipeline:` makes in one call: "
                "cases sharing a pipeline and its params are generated N at a time (each clip "
                "keeps its own seed; more pays on a GPU).", parse_positive_int, "N",
                group="run", cli=None, setting=False, fallback=1),
    JudgeOption("per-worker-model", "let every pytest-xdist worker load its own judge model "
                "(refused by default).", cli=None, switch=True),
    JudgeOption("canaries", "a canary file ('phyjudge canary record' wrote it): before the "
                "run's first judgment, the judge answers its canaries afresh (never from the "
                "cache) and must answer as recorded; once per run, also under pytest-xdist. "
                "Not checked in replay mode ({flag:cache-mode} only).", None, "FILE",
                group="canary", cli=None, path=True, setting=False),
    JudgeOption("canary-mode", "fail (the judge's drift fails every judged item) or warn "
                "(items are judged; the drift is reported).", parse_canary_mode, "MODE",
                group="canary", cli=None, setting=False, fallback=CANARY_MODES[0]),
    # The canary check's tolerances: pytest's check and 'phyjudge canary check' alike.
    JudgeOption("canary-max-disagree", "largest fraction of greedy digits that may differ "
                "from the record (on every axis and on all items pooled).", parse_fraction, "F",
                group="canary", cli="max-disagree", setting=False,
                fallback=DEFAULT_MAX_DISAGREE),
    JudgeOption("canary-max-mean-diff", "largest mean |difference| of expected scores.",
                parse_score_diff, "F", group="canary", cli="max-mean-diff", setting=False,
                fallback=DEFAULT_MAX_MEAN_DIFF),
    JudgeOption("canary-max-tv", "largest total-variation distance between one item's digit "
                "distributions.", parse_fraction, "F", group="canary", cli="max-tv",
                setting=False, fallback=DEFAULT_MAX_TV),
    JudgeOption("verdicts", "enforce (an item whose score misses its threshold fails) or "
                "report (it passes, and its verdict is recorded and shown as 'would fail': a "
                "first run, or a new suite, that must not break the build yet). Errors (a "
                "missing video, a reply without a score, a judge that fails) fail either way.",
                parse_verdicts, "MODE", group="run", cli=None, setting=False, fallback="enforce"),
)  # fmt: skip
BY_NAME = {option.name: option for option in JUDGE_OPTIONS}

#: The ``phyjudge`` command's surface: ``--<name>``, with the table's renames.
CLI_SURFACE = Surface(
    "phyjudge",
    "--",
    tuple(
        (o.name, o.cli_flag)
        for o in JUDGE_OPTIONS
        if o.cli_flag is not None and o.cli_flag != "--" + o.name
    ),
)


def options_in(groups: Iterable[Group]) -> Iterator[JudgeOption]:
    wanted = set(groups)
    return (option for option in JUDGE_OPTIONS if option.group in wanted)


def settings_from(
    given: Callable[[JudgeOption], Any], surface: Surface, **fixed: Any
) -> JudgeSettings:
    """JudgeSettings of the values ``given`` returns (None: not given, the default), with
    ``fixed`` fields set by the caller, naming flags in ``surface``'s words."""
    values: dict[str, Any] = {}
    for option in JUDGE_OPTIONS:
        if not option.setting:
            continue
        value = given(option)
        if value is not None:
            values[option.field] = value
    return JudgeSettings(**{**values, **fixed}, surface=surface)


def options_markdown() -> str:
    """The judge settings' part of the options reference, rendered from the table (the docs
    site's hook puts it into ``docs/reference/options.md`` when the site is built)."""
    lines = [
        "# Judge options",
        "",
        "Every judge setting, as pytest takes it (a flag, or its ini option in `pytest.ini`, "
        "`[tool.pytest.ini_options]` or `setup.cfg`) and as the `phyjudge` command takes it. "
        "A flag wins over the ini option, which wins over the default. Both surfaces check a "
        "value with the same parser.",
        "",
    ]
    for group, title in GROUP_TITLES.items():
        lines += [f"## {title[0].upper()}{title[1:]}", ""]
        lines += ["| pytest | ini | phyjudge | value | default | what it does |"]
        lines += ["|---|---|---|---|---|---|"]
        for option in options_in([group]):
            cells = [
                f"`{option.pytest_flag}`",
                f"`{option.ini}`" if option.ini else "",
                f"`{option.cli_flag}`" if option.cli_flag else "",
                f"`{option.metavar}`" if option.metavar else "",
                option.default_text() or "",
                _FLAG_REF.sub(lambda m: f"`{BY_NAME[m.group(1)].pytest_flag}`", option.help),
            ]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(options_markdown(), end="")
