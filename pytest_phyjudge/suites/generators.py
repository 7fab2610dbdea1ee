"""Generator names: a suite names the video generator under test, it never imports one.

Threat model: a suite file (YAML) may come from anyone (a shared prompt set, a generated
file, a pull request); the worst it could do with a ``generator:`` field that were an import
path is make pytest import a module of its choosing (its top-level code runs) or call any
importable callable with the prompt as argument (``numpy:savez`` writes a file). So a suite
gives only a NAME, identifier-like (no dots, no colon), and a name means something only when
the repository's owner registered it in configuration pytest already trusts: the ini file
(``phyjudge_generators``), a conftest.py (``pytest_phyjudge_generators``) or an installed
package (the ``pytest_phyjudge.generators`` entry point group). This module holds the rule
for names and reads the ini lines; it imports nothing by name (the plugin does, lazily, for
a registered generator whose clip must be made).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from pytest_phyjudge._exceptions import InputError

#: The ini option that registers generators (``name = package.module:function`` per line).
INI_OPTION = "phyjudge_generators"
#: The hook a conftest.py implements to register generators: ``{name: callable}``.
HOOK = "pytest_phyjudge_generators"
#: The entry point group through which an installed package registers generators.
ENTRY_POINT_GROUP = "pytest_phyjudge.generators"
MAX_NAME = 64
#: Letters, digits, '_' and '-', starting with a letter or '_': no '.' or ':', so a name can
#: never be read as an import path.
_NAME_RE = re.compile(rf"[A-Za-z_][A-Za-z0-9_-]{{0,{MAX_NAME - 1}}}")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_TARGET_RE = re.compile(rf"{_IDENT}(?:\.{_IDENT})*:{_IDENT}(?:\.{_IDENT})*")
NAME_RULE = (
    f"a generator name is 1 to {MAX_NAME} letters, digits, '_' and '-', starting with a letter "
    "or '_'"
)
#: How to register a generator, ending every message about an unknown or misspelt name.
HOW_TO_REGISTER = (
    f"Generators are named, not imported: register `NAME = package.module:function` under "
    f"`{INI_OPTION}` in your ini file (pytest.ini, or [tool.pytest.ini_options] in "
    f"pyproject.toml), or return {{NAME: function}} from `{HOOK}(config)` in a conftest.py, "
    f"or install a package that declares it in the `{ENTRY_POINT_GROUP}` entry point group; "
    "then write `generator: NAME` in the suite."
)


def is_generator_name(value: object) -> bool:
    return isinstance(value, str) and bool(_NAME_RE.fullmatch(value))


def is_import_target(value: object) -> bool:
    """Whether ``value`` reads as ``package.module:function`` (what a registration points at)."""
    return isinstance(value, str) and bool(_TARGET_RE.fullmatch(value))


@dataclass(frozen=True)
class GeneratorSpec:
    """A generator registered by an import target (ini line or entry point), not yet imported."""

    name: str
    #: ``package.module:function``, imported the first time a clip of this name is made.
    target: str
    #: Where it was registered, for messages: ``ini option phyjudge_generators (line 2)``.
    origin: str


def parse_generator_lines(lines: Iterable[str]) -> tuple[GeneratorSpec, ...]:
    """The ``phyjudge_generators`` ini lines (``name = package.module:function``) as specs.
    Raises InputError naming the line; nothing is imported."""
    specs: dict[str, GeneratorSpec] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"ini option {INI_OPTION} (entry {number}, {line!r})"
        name, sep, target = (part.strip() for part in line.partition("="))
        if not sep:
            raise InputError(
                f"{where}: write each entry as `name = package.module:function`, e.g. "
                "`wan = mypkg.video:generate`."
            )
        if not is_generator_name(name):
            raise InputError(f"{where}: {name!r} is not a generator name; {NAME_RULE}.")
        if not is_import_target(target):
            raise InputError(
                f"{where}: {target!r} is not an import path; write "
                "`package.module:function` (the module, a colon, and the function that makes "
                "the video)."
            )
        if name in specs:
            raise InputError(
                f"{where}: the generator {name!r} is already registered as "
                f"{specs[name].target!r}; give each generator one entry."
            )
        specs[name] = GeneratorSpec(name, target, f"ini option {INI_OPTION}")
    return tuple(specs.values())


def suggested_name(target: str) -> str:
    """A generator name for an import target: its function's name, when that is one."""
    last = target.rpartition(":")[2].rpartition(".")[2]
    return last if is_generator_name(last) else "NAME"


def registered_list(names: Collection[str]) -> str:
    if not names:
        return "No generator is registered."
    return f"Registered generators: {', '.join(sorted(names))}."
