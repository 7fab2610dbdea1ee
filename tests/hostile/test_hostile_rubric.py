"""Hostile rubric files: an adapter's infer.py and template cannot make loading or rendering
do unbounded work, and what is refused is named."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_phyjudge._exceptions import RubricError
from pytest_phyjudge.engine.axes import GENERAL_METRICS, PHYSICAL_LAWS
from pytest_phyjudge.engine.infer_constants import infer_py_source
from pytest_phyjudge.engine.rubric import (
    RubricWarning,
    bundled_template_data,
    load_rubric,
)


def constants() -> dict[str, Any]:
    return {
        "GENERAL_SUB_QUESTIONS": {m: [f"Is {m} fine?"] for m in GENERAL_METRICS},
        "PHYSICAL_SUB_QUESTIONS": {law: [f"Is {law} kept?"] for law in PHYSICAL_LAWS},
        "PHYSICAL_CRITERIA": {law: f"{law} holds." for law in PHYSICAL_LAWS},
    }


def adapter(folder: Path, infer_source: str, template: Any = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = bundled_template_data() if template is None else template
    (folder / "subq+human.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    (folder / "infer.py").write_text(infer_source, encoding="utf-8")
    return folder


def load_in_subprocess(folder: Path) -> tuple[dict[str, Any], str]:
    """load_rubric in a child with a generous time limit, so a hang fails instead of stalling."""
    script = (
        "import json, sys, warnings\n"
        "from pytest_phyjudge.engine.rubric import load_rubric\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    rubric = load_rubric(sys.argv[1])\n"
        "print(json.dumps({'origins': dict(rubric.origins),\n"
        "                  'warnings': [str(w.message) for w in seen]}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    return result["origins"], "\n".join(result["warnings"])


def load_warned(folder: Path) -> tuple[Any, str]:
    with pytest.warns(RubricWarning) as record:
        rubric = load_rubric(folder)
    return rubric, "\n".join(str(w.message) for w in record if w.category is RubricWarning)


# -- infer.py ----------------------------------------------------------------------------------


def test_doubling_string_constants_fall_back_within_the_size_limit(tmp_path: Path) -> None:
    lines = ['A0 = "xx"'] + [f"A{i} = A{i - 1} + A{i - 1}" for i in range(1, 41)]
    # keep the rest readable: only GENERAL_SUB_QUESTIONS refers to the doubled string
    source = "\n".join(lines) + "\n" + infer_py_source(constants())
    source = source.replace(
        "GENERAL_SUB_QUESTIONS = {", "GENERAL_SUB_QUESTIONS = {'SA': [A40], ", 1
    )
    assert len(source.encode()) < 4000
    folder = adapter(tmp_path / "bomb", source)
    origins, message = load_in_subprocess(folder)
    assert "GENERAL_SUB_QUESTIONS" in message and "limit" in message
    assert origins["GENERAL_SUB_QUESTIONS.SA"] == "bundled"
    assert origins["PHYSICAL_CRITERIA.gravity"] == str(folder / "infer.py")


def test_names_nested_thousands_deep_fall_back_naming_the_depth(tmp_path: Path) -> None:
    lines = ['N0 = ["x"]'] + [f"N{i} = [N{i - 1}]" for i in range(1, 3000)]
    source = "\n".join(lines) + "\n" + infer_py_source(constants())
    source = source.replace("PHYSICAL_CRITERIA = {", "PHYSICAL_CRITERIA = {'deep': N2999, ", 1)
    rubric, message = load_warned(adapter(tmp_path, source))
    assert "PHYSICAL_CRITERIA" in message and "levels deep" in message
    assert rubric.origins["GENERAL_SUB_QUESTIONS.SA"] == str(tmp_path / "infer.py")


@pytest.mark.parametrize(
    "expression",
    [
        "+".join(['"a"'] * 10_000),
        "-" * 100_000 + "1",
        "a" + ".b" * 100_000,
    ],
    ids=["plus-chain", "unary-chain", "attribute-chain"],
)
def test_expressions_too_deep_to_parse_fall_back_with_warning(
    tmp_path: Path, expression: str
) -> None:
    source = infer_py_source(constants()) + f"X = {expression}\n"
    rubric, message = load_warned(adapter(tmp_path, source))
    assert "could not be parsed" in message and "nest too deeply" in message
    assert rubric.origins["GENERAL_SUB_QUESTIONS.SA"] == "bundled"


def test_huge_infer_py_is_not_read_past_the_limit(tmp_path: Path) -> None:
    folder = adapter(tmp_path, infer_py_source(constants()))
    with (folder / "infer.py").open("a", encoding="utf-8") as file:
        file.write(("# padding " + "x" * 1_000_000 + "\n") * 50)
    rubric, message = load_warned(folder)
    assert "could not be parsed" in message and "longer than" in message
    assert rubric.origins["PHYSICAL_CRITERIA.gravity"] == "bundled"


# -- the template ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("placeholder", "fix"),
    [
        ("{prompt:>900000000}", "write it as {prompt}"),
        ("{prompt:{questions_block}}", "write it as {prompt}"),
        ("{prompt!r}", "write it as {prompt}"),
        ("{prompt.attr}", "write it as {prompt}"),
        ("{prompt[0]}", "write it as {prompt}"),
    ],
)
@pytest.mark.parametrize("entry", ["eval_prompts.SA", "physical_template"])
def test_template_placeholder_that_is_not_plain_is_refused(
    tmp_path: Path, placeholder: str, fix: str, entry: str
) -> None:
    data = copy.deepcopy(bundled_template_data())
    if entry == "physical_template":
        data["physical_template"] = data["physical_template"].replace("{prompt}", placeholder)
    else:
        data["eval_prompts"]["SA"] = data["eval_prompts"]["SA"].replace("{prompt}", placeholder)
    folder = adapter(tmp_path, infer_py_source(constants()), template=data)
    with pytest.raises(RubricError) as e:
        load_rubric(folder)
    text = str(e.value)
    assert f"{folder / 'subq+human.yaml'}: {entry} has the placeholder {placeholder}" in text
    assert "only plain placeholders" in text and fix in text


def test_rendering_never_runs_a_format_spec() -> None:
    rubric = load_rubric(None)
    templates = dict(rubric.general_templates, SA="{prompt:>50} {questions_block}")
    hostile = dataclasses.replace(rubric, general_templates=templates)
    with pytest.raises(RubricError, match=r"\{prompt:>50\}"):
        hostile.render("SA", "a ball")
