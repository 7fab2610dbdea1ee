"""The README and the docs site say what the code does: the README stays short and its set-up
commands are the ones CI runs; the reference pages' generated tables list every option,
command and exit code; the hand-written pages name the code's formats and keys; and the
commands and suites the pages show are ones the code accepts. (The site itself is built
with ``mkdocs build --strict`` in .ci/run.)"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

import pytest_phyjudge
from pytest_phyjudge import _outputs
from pytest_phyjudge.canary import model as canary_model
from pytest_phyjudge.cli import exits
from pytest_phyjudge.cli.main import build_parser
from pytest_phyjudge.judges.cache import record
from pytest_phyjudge.judges.options import JUDGE_OPTIONS
from pytest_phyjudge.regression import baseline
from pytest_phyjudge.scores import model as scores_model
from pytest_phyjudge.suites import cases, schema
from pytest_phyjudge.suites.schema import load_suite

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
WORKFLOW = ROOT / "examples" / "github-actions" / "phyjudge.yml"
#: The pages whose commands and suites are checked against the code: the README and the
#: pages a newcomer follows step by step.
WALKTHROUGHS = [
    README,
    DOCS / "index.md",
    DOCS / "tutorial.md",
    DOCS / "how-to" / "record-and-replay.md",
    DOCS / "how-to" / "html-report.md",
    DOCS / "how-to" / "score-a-folder.md",
    DOCS / "reference" / "suite-format.md",
]
#: pytest options the pages use that another change adds (the report-only first run).


def _hook() -> ModuleType:
    """docs/hooks/reference.py, the MkDocs hook that renders the reference tables."""
    path = DOCS / "hooks" / "reference.py"
    spec = importlib.util.spec_from_file_location("phyjudge_docs_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


HOOK = _hook()


def _blocks(path: Path, language: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def _commands(script: str) -> list[list[str]]:
    """The simple commands of a shell snippet: continuations joined, comments dropped, split
    at ``&&``, ``||``, ``;``, pipes and redirections."""
    commands: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        commands.append([])
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.commenters = "#"
        lexer.whitespace_split = True
        for token in lexer:
            if set(token) <= set("&|;<>"):
                commands.append([])
            else:
                commands[-1].append(token)
    return [c for c in commands if c]


def _shown_commands(path: Path) -> list[list[str]]:
    if path.suffix == ".yml":
        steps = [
            step["run"]
            for job in yaml.safe_load(path.read_text(encoding="utf-8"))["jobs"].values()
            for step in job["steps"]
            if "run" in step
        ]
    else:
        steps = _blocks(path, "bash")
    return [command for step in steps for command in _commands(step)]


# -- the README ---------------------------------------------------------------------------------


def _setup_commands() -> list[str]:
    """The README's set-up commands: the bash blocks of its "Set up" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Set up\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```bash\n(.*?)\n```", section, flags=re.S | re.M)


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 220, f"README.md has {lines} lines; move detail into docs/"


def test_the_readmes_setup_commands_are_the_ones_ci_runs() -> None:
    """CI runs the README's install command and its test command as written, so a newcomer's
    first two commands are tested on every push."""
    install, tests = _setup_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    pip = next(part.strip() for part in install.split("&&") if part.strip().startswith("pip "))
    assert f"python -m {pip}" in ci, f".ci/run does not run the README's {pip!r}"
    test_command = tests.split("&&")[-1].strip()
    assert test_command in ci, f".ci/run does not run the README's {test_command!r}"


def test_the_readmes_links_into_docs_lead_to_pages() -> None:
    for target in re.findall(r"\]\(((?:docs|examples)/[^)#]+)", README.read_text("utf-8")):
        assert (ROOT / target).is_file(), f"README links to {target}, which does not exist"


# -- the generated reference --------------------------------------------------------------------


def test_every_reference_marker_is_filled() -> None:
    for name, page in [("options", "options"), ("cli", "cli"), ("exit-codes", "exit-codes")]:
        text = (DOCS / "reference" / f"{page}.md").read_text(encoding="utf-8")
        assert f"<!-- phyjudge:{name} -->" in text
        assert "<!-- phyjudge:" not in HOOK.render(text)
    with pytest.raises(ValueError, match="unknown reference marker"):
        HOOK.render("<!-- phyjudge:optoins -->")


def test_the_options_page_lists_every_pytest_option_and_ini_key() -> None:
    page = HOOK.options_page()
    parser = HOOK.pytest_parser()
    options = list(HOOK.pytest_options(parser))
    assert len(options) >= len(JUDGE_OPTIONS) + 10
    for option in options:
        flag = option.names()[0]
        assert re.search(rf"^\| `{flag}` \|", page, flags=re.M), flag
    for ini in parser._inidict:
        assert f"`{ini}`" in page, ini
    for option in JUDGE_OPTIONS:
        if option.cli_flag is not None:
            assert f"`{option.cli_flag}`" in page, option.cli_flag


def _all_commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*words, name), child
                yield from _all_commands(child, (*words, name))


def test_the_cli_page_lists_every_command_and_its_arguments() -> None:
    page = HOOK.cli_page()
    found = list(_all_commands(build_parser()))
    assert {words[0] for words, _ in found} >= {"score", "score-dir", "cache", "compare"}
    sections = re.split(r"^#+ (phyjudge [a-z -]+)$", page, flags=re.M)
    by_heading = dict(zip(sections[1::2], sections[2::2], strict=True))
    for words, parser in found:
        heading = "phyjudge " + " ".join(words)
        assert heading in by_heading, heading
        own = by_heading[heading]
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}" in own, f"{heading}: {flag}"


def test_the_exit_codes_page_explains_every_code() -> None:
    listed = {name: (code, meaning) for code, name, meaning in HOOK.exit_codes()}
    declared = {n: getattr(exits, n) for n in dir(exits) if n.startswith("EXIT_")}
    assert {n: c for n, (c, _) in listed.items()} == declared
    assert all(meaning for _, meaning in listed.values())


# -- the written reference ----------------------------------------------------------------------


def test_the_python_api_page_documents_every_public_name() -> None:
    page = (DOCS / "reference" / "python-api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: pytest_phyjudge\.(\w+)$", page, flags=re.M))
    assert documented == set(pytest_phyjudge.__all__)


def test_the_suite_format_page_names_every_key() -> None:
    page = (DOCS / "reference" / "suite-format.md").read_text(encoding="utf-8")
    for key in (*schema._TOP_KEYS, *schema._DEFAULT_KEYS, *cases.CASE_KEYS):
        assert f"`{key}`" in page, key


def test_the_formats_page_names_each_formats_name_and_version() -> None:
    page = (DOCS / "reference" / "scores-format.md").read_text(encoding="utf-8")
    for name, version in [
        (scores_model.FORMAT, scores_model.VERSION),
        (record.IDENTITY_FORMAT, record.IDENTITY_VERSION),
        (baseline.FORMAT, baseline.VERSION),
        (canary_model.FORMAT, canary_model.VERSION),
        (_outputs.FORMAT, _outputs.VERSION),
    ]:
        row = next((r for r in page.splitlines() if r.startswith("|") and f"`{name}`" in r), "")
        assert f"| {version} |" in row, f"{name} version {version} not in the formats table"


# -- what the pages show works ------------------------------------------------------------------


def test_the_pages_phyjudge_commands_parse() -> None:
    shown = [(p, c) for p in [*WALKTHROUGHS, WORKFLOW] for c in _shown_commands(p)]
    phyjudge = [(p, c) for p, c in shown if c[0] == "phyjudge"]
    assert len(phyjudge) >= 6
    for path, command in phyjudge:
        try:
            build_parser().parse_args(command[1:])
        except SystemExit:
            pytest.fail(f"{path.name} shows a command phyjudge refuses: {shlex.join(command)}")


def test_the_pages_pytest_options_exist() -> None:
    known = {o.names()[0] for o in HOOK.pytest_options(HOOK.pytest_parser())}
    shown = [c for p in [*WALKTHROUGHS, WORKFLOW] for c in _shown_commands(p)]
    used = [t.split("=")[0] for c in shown if c[0] == "pytest" for t in c if t.startswith("--")]
    assert "--phyjudge-cache-mode" in used
    assert not set(used) - known, sorted(set(used) - known)


def test_the_pages_suites_load(tmp_path: Path) -> None:
    checked = 0
    for path in WALKTHROUGHS:
        for block in _blocks(path, "yaml"):
            if "\ncases:" not in "\n" + block:
                continue
            suite = tmp_path / f"{checked}.phyjudge.yaml"
            suite.write_text(block, encoding="utf-8")
            assert load_suite(suite).cases, f"{path.name}: {block[:60]}"
            checked += 1
    assert checked >= 4


def test_the_workflow_records_on_a_gpu_and_replays_on_the_light_core() -> None:
    jobs = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]
    runs = {name: " ".join(s.get("run", "") for s in job["steps"]) for name, job in jobs.items()}
    assert "self-hosted" in jobs["record"]["runs-on"]
    assert "[local]" in runs["record"] and "phyjudge cache export" in runs["record"]
    assert jobs["replay"]["runs-on"] == "ubuntu-latest" and jobs["replay"]["needs"] == "record"
    assert re.search(r"pip install pytest-phyjudge(\s|$)", runs["replay"]), runs["replay"]
    assert "--phyjudge-cache-mode only" in runs["replay"]
