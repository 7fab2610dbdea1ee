"""The rubric: the template file, the constants read from infer.py, rendering, and fallbacks."""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_phyjudge._exceptions import RubricError
from pytest_phyjudge.engine.axes import ALL_AXES, GENERAL_METRICS, PHYSICAL_LAWS, is_law
from pytest_phyjudge.engine.infer_constants import (
    CONSTANT_NAMES,
    extract_constants,
    infer_py_source,
)
from pytest_phyjudge.engine.rubric import (
    Rubric,
    RubricWarning,
    bundled_constants,
    bundled_template_data,
    load_rubric,
    parse_template,
    questions_block,
)

#: ../shared/phyground beside the repository; fidelity tests skip where it is absent.
PHYGROUND = Path(__file__).resolve().parents[1].parent / "shared" / "phyground"
REAL_TEMPLATE = PHYGROUND / "adapter-files" / "subq+human.yaml"

#: Quotes and braces in a caption must reach the prompt verbatim, never be formatted.
CAPTION = 'A red ball rolls off a "table" and {falls} onto a rug }{.'


def made_constants() -> dict[str, Any]:
    """Constants that differ from the bundled ones, so it shows which source was used."""
    return {
        "GENERAL_SUB_QUESTIONS": {
            metric: [f"Test question {i} about {metric}?" for i in range(1, 4)]
            for metric in GENERAL_METRICS
        },
        "PHYSICAL_SUB_QUESTIONS": {
            law: [f"Is {law} respected in shot {i}?" for i in range(1, 5)] for law in PHYSICAL_LAWS
        },
        "PHYSICAL_CRITERIA": {
            law: f"Test criterion for {law}, braces {{kept}} as written." for law in PHYSICAL_LAWS
        },
    }


def write_adapter(
    folder: Path,
    *,
    template: Any = None,
    constants: dict[str, Any] | None = None,
    infer_source: str | None = None,
) -> Path:
    """An adapter folder: ``subq+human.yaml`` (bundled text by default) and ``infer.py``."""
    folder.mkdir(parents=True, exist_ok=True)
    if template is not False:
        data = bundled_template_data() if template is None else template
        text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
        (folder / "subq+human.yaml").write_text(text, encoding="utf-8")
    if infer_source is None and constants is not False:
        infer_source = infer_py_source(made_constants() if constants is None else constants)
    if infer_source is not None:
        (folder / "infer.py").write_text(infer_source, encoding="utf-8")
    return folder


def load_quietly(folder: Path | None) -> Rubric:
    """load_rubric, failing the test on any RubricWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RubricWarning)
        return load_rubric(folder)


def load_warned(folder: Path) -> tuple[Rubric, str]:
    """load_rubric, requiring a RubricWarning; returns the rubric and all warning texts."""
    with pytest.warns(RubricWarning) as record:
        rubric = load_rubric(folder)
    return rubric, "\n".join(str(w.message) for w in record if w.category is RubricWarning)


def reply_example(text: str) -> dict[str, Any]:
    """The JSON example on the template's last line, parsed."""
    return json.loads(text.rstrip().splitlines()[-1])


# -- the bundled rubric ----------------------------------------------------------------------


def test_bundled_rubric_renders_every_axis() -> None:
    rubric = load_quietly(None)
    constants = bundled_constants()
    assert not rubric.calibrated  # the bundled text is never what the judge was trained on
    assert set(rubric.origins.values()) == {"bundled"}
    for axis in ALL_AXES:
        prompt = rubric.render(axis, CAPTION)
        assert prompt.key == axis
        assert prompt.system == bundled_template_data()["system_prompt"]
        assert f'"{CAPTION}"' in prompt.user
        table = "PHYSICAL_SUB_QUESTIONS" if is_law(axis) else "GENERAL_SUB_QUESTIONS"
        questions = constants[table][axis]
        for i, question in enumerate(questions, start=1):
            assert f"\nq{i}: {question}\n" in prompt.user
        assert f"q{len(questions) + 1}: " not in prompt.user
        if is_law(axis):
            assert constants["PHYSICAL_CRITERIA"][axis] in prompt.user
        assert "{{" not in prompt.user and "}}" not in prompt.user
        assert reply_example(prompt.user) == {axis: 3}


def test_bundled_template_has_the_reference_structure() -> None:
    data = bundled_template_data()
    assert list(data) == [
        "scheme",
        "description",
        "sub_questions",
        "system_prompt",
        "general_keys",
        "eval_prompts",
        "physical_sub_questions",
        "physical_template",
    ]
    assert set(data["sub_questions"]) == {"source", "answer_format"}
    assert data["general_keys"] == ["SA", "PTV", "persistence"]
    assert list(data["eval_prompts"]) == ["SA", "PTV", "persistence"]
    assert data["physical_sub_questions"] is True
    parsed = parse_template(data, "bundled")
    assert parsed["system_prompt"] == data["system_prompt"]
    assert parsed["physical_template"] == data["physical_template"]
    assert parsed["physical_sub_questions_enabled"] is True
    for metric in GENERAL_METRICS:
        template = data["eval_prompts"][metric]
        assert "1 to 5" in template and "ONLY a JSON object" in template
        assert template.rstrip().endswith(f'{{{{"{metric}": 3}}}}')
    assert data["physical_template"].rstrip().endswith('{{"{law}": 3}}')


def test_bundled_constants_cover_every_axis() -> None:
    constants = bundled_constants()
    assert set(constants) == set(CONSTANT_NAMES)
    assert set(constants["GENERAL_SUB_QUESTIONS"]) == set(GENERAL_METRICS)
    assert set(constants["PHYSICAL_SUB_QUESTIONS"]) == set(PHYSICAL_LAWS)
    assert set(constants["PHYSICAL_CRITERIA"]) == set(PHYSICAL_LAWS)
    for table in ("GENERAL_SUB_QUESTIONS", "PHYSICAL_SUB_QUESTIONS"):
        for axis, questions in constants[table].items():
            assert 3 <= len(questions) <= 5, axis
            assert len(set(questions)) == len(questions), axis
            assert all(isinstance(q, str) and q.endswith("?") for q in questions), axis
    for law, criterion in constants["PHYSICAL_CRITERIA"].items():
        assert isinstance(criterion, str) and criterion.endswith("."), law
        assert "\n" not in criterion, law


def test_bundled_text_is_written_for_the_project() -> None:
    """No sentence of the reference template may appear in the bundled one."""
    if not REAL_TEMPLATE.is_file():
        pytest.skip(f"no reference template at {REAL_TEMPLATE}")
    real = yaml.safe_load(REAL_TEMPLATE.read_text(encoding="utf-8"))
    ours = bundled_template_data()
    ours_texts = [*ours["eval_prompts"].values(), ours["physical_template"], ours["description"]]
    ours_text = "\n".join([ours["system_prompt"], *ours_texts]).lower()
    ours_lines = {line.strip().lower() for text in ours_texts for line in text.splitlines()}
    real_texts = [*real["eval_prompts"].values(), real["physical_template"], real["description"]]
    for text in real_texts:
        for line in text.splitlines():
            line = line.strip().lower()
            if len(line) >= 20 and "{" not in line:
                assert line not in ours_text, line
            elif line.startswith(("5=", "4=", "3=", "2=", "1=")):
                assert line not in ours_lines, line
    assert real["system_prompt"].lower() not in ours_text


def test_questions_block_numbers_one_per_line() -> None:
    assert questions_block(["Is it red?", "Does it fall?"]) == "q1: Is it red?\nq2: Does it fall?"
    assert questions_block(()) == ""


# -- rendering ----------------------------------------------------------------------------------


def test_brace_escapes_render_as_single_braces(tmp_path: Path) -> None:
    data = copy.deepcopy(bundled_template_data())
    data["eval_prompts"]["SA"] = (
        'Rate {{SA}} for "{prompt}" {{ }}\n{questions_block}\n\nExample:\n{{"SA": 3}}'
    )
    data["physical_template"] = (
        'Law {law}: {criteria}\n{{literal}}\n{prompt}\n{questions_block}\n{{"{law}": 3}}'
    )
    rubric = load_quietly(write_adapter(tmp_path, template=data))
    sa = rubric.render("SA", CAPTION).user
    assert sa.startswith(f'Rate {{SA}} for "{CAPTION}" {{ }}\nq1: Test question 1 about SA?\n')
    assert reply_example(sa) == {"SA": 3}
    gravity = rubric.render("gravity", CAPTION).user
    assert "{literal}" in gravity and "{{" not in gravity
    assert "braces {kept} as written" in gravity  # criteria are inserted, not formatted
    assert reply_example(gravity) == {"gravity": 3}


def test_criteria_override_replaces_only_that_laws_criterion() -> None:
    rubric = load_quietly(None)
    default = rubric.physical_criteria["buoyancy"]
    plain = rubric.render("buoyancy", CAPTION).user
    custom = rubric.render("buoyancy", CAPTION, criteria="Corks float; {stones} sink.").user
    assert default in plain and default not in custom
    assert "Corks float; {stones} sink." in custom
    assert custom == plain.replace(default, "Corks float; {stones} sink.")
    assert rubric.render("gravity", CAPTION).user.count(rubric.physical_criteria["gravity"]) == 1
    with pytest.raises(ValueError, match="only be overridden for a law"):
        rubric.render("SA", CAPTION, criteria="anything")


def test_disabled_physical_sub_questions_render_an_empty_block(tmp_path: Path) -> None:
    data = copy.deepcopy(bundled_template_data())
    data["physical_sub_questions"] = False
    rubric = load_quietly(write_adapter(tmp_path, template=data))
    assert rubric.questions("gravity") == ()
    assert "q1: " not in rubric.render("gravity", CAPTION).user
    assert "q1: Test question 1 about SA?" in rubric.render("SA", CAPTION).user


# -- a broken template is an error, not a fallback -------------------------------------------


def _drop(*path: str):
    def edit(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return edit


def _set(value: str, *path: str):
    def edit(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _replace(old: str, new: str, *path: str):
    def edit(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        assert old in node[path[-1]]
        node[path[-1]] = node[path[-1]].replace(old, new)

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_drop("physical_template"), "'physical_template' key"),
        (_drop("system_prompt"), "'system_prompt' key"),
        (_drop("eval_prompts"), "'eval_prompts' key"),
        (_drop("eval_prompts", "PTV"), "no template for 'PTV'"),
        (_set("   ", "system_prompt"), "'system_prompt' must be a non-empty string"),
        (_set("", "eval_prompts", "persistence"), "eval_prompts.persistence must be a non-empty"),
        (_replace("{questions_block}", "", "eval_prompts", "SA"), "{questions_block}"),
        (_replace("{prompt}", "", "eval_prompts", "PTV"), "eval_prompts.PTV lacks"),
        (_replace("{criteria}", "the law", "physical_template"), "{criteria}"),
        (_replace("{law}", "it", "physical_template"), "lacks the placeholder(s) {law}"),
        (_replace("{questions_block}", "", "physical_template"), "{questions_block}"),
        (_replace("{prompt}", "{prompt} {video}", "eval_prompts", "SA"), "unknown.*{video}"),
        (_replace("{prompt}", "{prompt} {fps}", "physical_template"), "unknown.*{fps}"),
        (_replace('{{"SA": 3}}', '{"SA": 3}', "eval_prompts", "SA"), "Double literal braces"),
        (_replace("{prompt}", "{prompt} }", "eval_prompts", "PTV"), "not a valid str.format"),
    ],
)
def test_broken_template_raises_rubric_error_naming_the_problem(
    tmp_path: Path, edit: Any, expected: str
) -> None:
    data = copy.deepcopy(bundled_template_data())
    edit(data)
    folder = write_adapter(tmp_path, template=data)
    with pytest.raises(
        RubricError, match=expected.replace("{", r"\{").replace("(s)", r"\(s\)")
    ) as e:
        load_rubric(folder)
    assert str(folder / "subq+human.yaml") in str(e.value)


def test_template_that_is_not_a_mapping_or_not_yaml_raises(tmp_path: Path) -> None:
    with pytest.raises(RubricError, match="must be a YAML mapping"):
        load_rubric(write_adapter(tmp_path / "list", template="- just\n- a list\n"))
    with pytest.raises(RubricError, match="not valid YAML"):
        load_rubric(write_adapter(tmp_path / "bad", template="system_prompt: [unclosed\n"))


# -- missing files fall back, loudly -----------------------------------------------------------


def test_complete_adapter_loads_calibrated_without_warning(tmp_path: Path) -> None:
    folder = write_adapter(tmp_path)
    rubric = load_quietly(folder)
    assert rubric.calibrated
    assert rubric.origins["template"] == str(folder / "subq+human.yaml")
    assert rubric.origins["PHYSICAL_CRITERIA.shadow"] == str(folder / "infer.py")
    assert rubric.general_sub_questions["PTV"] == tuple(
        made_constants()["GENERAL_SUB_QUESTIONS"]["PTV"]
    )


def test_missing_template_falls_back_with_warning(tmp_path: Path) -> None:
    folder = write_adapter(tmp_path, template=False)
    rubric, message = load_warned(folder)
    assert "template" in message and "miscalibrated" in message
    assert rubric.origins["template"] == "bundled"
    assert rubric.system_prompt == bundled_template_data()["system_prompt"]
    assert rubric.origins["GENERAL_SUB_QUESTIONS.SA"] == str(folder / "infer.py")
    assert "q1: Test question 1 about SA?" in rubric.render("SA", CAPTION).user
    assert not rubric.calibrated


def test_missing_infer_py_falls_back_with_warning(tmp_path: Path) -> None:
    folder = write_adapter(tmp_path, constants=False)
    assert not (folder / "infer.py").exists()
    rubric, message = load_warned(folder)
    assert "GENERAL_SUB_QUESTIONS" in message
    assert rubric.origins["template"] == str(folder / "subq+human.yaml")
    assert all(rubric.origins[f"PHYSICAL_CRITERIA.{law}"] == "bundled" for law in PHYSICAL_LAWS)
    assert rubric.physical_criteria == bundled_constants()["PHYSICAL_CRITERIA"]
    assert not rubric.calibrated


def test_empty_folder_falls_back_entirely(tmp_path: Path) -> None:
    rubric, message = load_warned(tmp_path)
    assert str(tmp_path) in message
    assert set(rubric.origins.values()) == {"bundled"}


def test_law_missing_from_adapter_falls_back_for_that_law_only(tmp_path: Path) -> None:
    constants = made_constants()
    del constants["PHYSICAL_CRITERIA"]["shadow"]
    del constants["PHYSICAL_SUB_QUESTIONS"]["reflection"]
    constants["PHYSICAL_SUB_QUESTIONS"]["buoyancy"] = []  # unusable: nothing to list
    constants["GENERAL_SUB_QUESTIONS"]["PTV"] = [1, 2, 3]  # unusable: not text
    folder = write_adapter(tmp_path, constants=constants)
    rubric, message = load_warned(folder)
    fallen = sorted(key for key, origin in rubric.origins.items() if origin == "bundled")
    assert fallen == [
        "GENERAL_SUB_QUESTIONS.PTV",
        "PHYSICAL_CRITERIA.shadow",
        "PHYSICAL_SUB_QUESTIONS.buoyancy",
        "PHYSICAL_SUB_QUESTIONS.reflection",
    ]
    for key in fallen:
        assert key in message
    infer = str(folder / "infer.py")
    assert rubric.origins["PHYSICAL_CRITERIA.reflection"] == infer
    assert rubric.origins["PHYSICAL_SUB_QUESTIONS.shadow"] == infer
    bundled = bundled_constants()
    assert rubric.physical_criteria["shadow"] == bundled["PHYSICAL_CRITERIA"]["shadow"]
    assert rubric.physical_criteria["gravity"] == constants["PHYSICAL_CRITERIA"]["gravity"]
    reflection = rubric.render("reflection", CAPTION).user
    assert bundled["PHYSICAL_SUB_QUESTIONS"]["reflection"][0] in reflection
    assert constants["PHYSICAL_CRITERIA"]["reflection"] in reflection
    assert "Is shadow respected in shot 1?" in rubric.render("shadow", CAPTION).user


# -- extract_constants: literals only, never run ----------------------------------------------


def test_extract_plain_literals_round_trips_infer_py_source() -> None:
    constants = made_constants()
    assert extract_constants(infer_py_source(constants)) == constants


def test_extract_values_built_from_other_constants() -> None:
    source = '''
"""A reference-style script."""
import json

_ASK = "Does the "
_COMMON = [_ASK + "object stay whole?"]
GENERAL_SUB_QUESTIONS = {
    "SA": _COMMON + ["Is the " "caption shown?", ("Is the setting " "right?")],
    "PTV": _PTV,
    "persistence": ["Does it " + _THING, _ASK + _THING],
}
_PTV = ("Do causes precede effects?", "Is the pace natural?")
_THING = "keep its shape?"
PHYSICAL_SUB_QUESTIONS: dict = {"gravity": _COMMON, "shadow": ["Is there a shadow?"]}
_G = "Unsupported things " "fall."
PHYSICAL_CRITERIA = {"gravity": _G, "shadow": _G + " Shadows follow."}


def main():
    GENERAL_SUB_QUESTIONS["SA"].append("never read")


if __name__ == "__main__":
    main()
'''
    assert extract_constants(source) == {
        "GENERAL_SUB_QUESTIONS": {
            "SA": ["Does the object stay whole?", "Is the caption shown?", "Is the setting right?"],
            "PTV": ["Do causes precede effects?", "Is the pace natural?"],
            "persistence": ["Does it keep its shape?", "Does the keep its shape?"],
        },
        "PHYSICAL_SUB_QUESTIONS": {
            "gravity": ["Does the object stay whole?"],
            "shadow": ["Is there a shadow?"],
        },
        "PHYSICAL_CRITERIA": {
            "gravity": "Unsupported things fall.",
            "shadow": "Unsupported things fall. Shadows follow.",
        },
    }


@pytest.mark.parametrize(
    "definition",
    [
        'PHYSICAL_CRITERIA = dict(gravity="Things fall.")',
        'PHYSICAL_CRITERIA = {"gravity": f"Things {_VERB}."}',
        'PHYSICAL_CRITERIA = {law: "Things fall." for law in ["gravity"]}',
        'PHYSICAL_CRITERIA = {"gravity": "Things fall.".upper()}',
        'PHYSICAL_CRITERIA = {**_BASE, "shadow": "Shadows follow."}',
        'PHYSICAL_CRITERIA = {"gravity": _UNDEFINED}',
        'PHYSICAL_CRITERIA = {"gravity": "Things fall." + ["a list"]}',
        'PHYSICAL_CRITERIA = {"gravity": "Things fall." * 2}',
        'PHYSICAL_CRITERIA = {["gravity"]: "Things fall."}',
        "PHYSICAL_CRITERIA = _LOOP\n_LOOP = PHYSICAL_CRITERIA",
        'PHYSICAL_CRITERIA = {"gravity": None}',
    ],
)
def test_extract_leaves_out_non_literal_values(definition: str) -> None:
    constants = made_constants()
    source = (
        f'_VERB = "fall"\n_BASE = {{"gravity": "Things fall."}}\n'
        f"GENERAL_SUB_QUESTIONS = {constants['GENERAL_SUB_QUESTIONS']!r}\n{definition}\n"
    )
    found = extract_constants(source)
    assert found == {"GENERAL_SUB_QUESTIONS": constants["GENERAL_SUB_QUESTIONS"]}


@pytest.mark.parametrize(
    "change",
    [
        'PHYSICAL_CRITERIA["gravity"] = "Changed later."',
        'PHYSICAL_CRITERIA.update(gravity="Changed later.")',
        '_G += " Changed later."',
        '_G = "Changed later."',
        'if True:\n    _G = "Changed later."',
        'for _G in ["Changed later."]:\n    pass',
        "del PHYSICAL_CRITERIA",
        "from elsewhere import _G",
    ],
)
def test_extract_leaves_out_values_changed_after_assignment(change: str) -> None:
    """Reading a value the script would change later would silently give the wrong text."""
    source = f'_G = "Things fall."\nPHYSICAL_CRITERIA = {{"gravity": _G}}\n{change}\n'
    assert extract_constants(source) == {}
    unchanged = '_G = "Things fall."\nPHYSICAL_CRITERIA = {"gravity": _G}\nprint(_G.upper())\n'
    assert extract_constants(unchanged) == {"PHYSICAL_CRITERIA": {"gravity": "Things fall."}}


def test_extract_raises_syntax_error() -> None:
    with pytest.raises(SyntaxError):
        extract_constants("GENERAL_SUB_QUESTIONS = {\n")


@pytest.mark.parametrize(
    "definition",
    [
        "dict((law, 'Things fall.') for law in _LAWS)",
        "{law: f'{law} holds.' for law in _LAWS}",
        "{law: 'Things fall.' for law in _LAWS}",
    ],
    ids=["call", "f-string", "comprehension"],
)
def test_non_literal_constant_falls_back_with_warning_naming_it(
    tmp_path: Path, definition: str
) -> None:
    constants = made_constants()
    source = (
        f"_LAWS = {list(PHYSICAL_LAWS)!r}\n"
        f"GENERAL_SUB_QUESTIONS = {constants['GENERAL_SUB_QUESTIONS']!r}\n"
        f"PHYSICAL_SUB_QUESTIONS = {constants['PHYSICAL_SUB_QUESTIONS']!r}\n"
        f"PHYSICAL_CRITERIA = {definition}\n"
    )
    folder = write_adapter(tmp_path, infer_source=source)
    rubric, message = load_warned(folder)
    assert "PHYSICAL_CRITERIA" in message
    assert "GENERAL_SUB_QUESTIONS" not in message and "PHYSICAL_SUB_QUESTIONS" not in message
    assert rubric.physical_criteria == bundled_constants()["PHYSICAL_CRITERIA"]
    assert rubric.physical_sub_questions["gravity"] == tuple(
        constants["PHYSICAL_SUB_QUESTIONS"]["gravity"]
    )


def test_infer_py_with_syntax_error_falls_back_with_warning(tmp_path: Path) -> None:
    folder = write_adapter(tmp_path, infer_source="GENERAL_SUB_QUESTIONS = {'SA': [\n")
    rubric, message = load_warned(folder)
    assert "could not be parsed" in message and str(folder / "infer.py") in message
    assert rubric.origins["template"] == str(folder / "subq+human.yaml")
    assert all(origin == "bundled" for key, origin in rubric.origins.items() if key != "template")


def test_loading_never_runs_infer_py(tmp_path: Path) -> None:
    opened, system, imported = tmp_path / "opened.txt", tmp_path / "system.txt", tmp_path / "lib"
    constants = made_constants()
    source = (
        f"open({str(opened)!r}, 'w').write('x')\n"
        "import os\n"
        f"os.system('echo x > {system}')\n"
        f"__import__('pathlib').Path({str(imported)!r}).mkdir()\n"
        + infer_py_source(constants)
        + f"PHYSICAL_CRITERIA['gravity'] = open({str(opened)!r}, 'w').write('x')\n"
        + "raise SystemExit('a module that cannot even be imported')\n"
    )
    folder = write_adapter(tmp_path / "adapter", infer_source=source)
    rubric, message = load_warned(folder)
    assert not opened.exists() and not system.exists() and not imported.exists()
    # the in-place change makes PHYSICAL_CRITERIA uncertain; the rest was read from the file
    assert "PHYSICAL_CRITERIA" in message
    assert rubric.origins["GENERAL_SUB_QUESTIONS.SA"] == str(folder / "infer.py")
    assert rubric.origins["PHYSICAL_SUB_QUESTIONS.gravity"] == str(folder / "infer.py")


# -- fidelity to the template the judge was trained with --------------------------------------


def test_rendering_matches_the_reference_template_byte_for_byte(tmp_path: Path) -> None:
    if not REAL_TEMPLATE.is_file():
        pytest.skip(f"no reference template at {REAL_TEMPLATE}")
    folder = tmp_path / "adapter"
    folder.mkdir()
    shutil.copyfile(REAL_TEMPLATE, folder / "subq+human.yaml")
    constants = made_constants()
    (folder / "infer.py").write_text(infer_py_source(constants), encoding="utf-8")

    rubric = load_quietly(folder)
    assert rubric.calibrated
    assert rubric.origins["template"] == str(folder / "subq+human.yaml")

    reference = yaml.safe_load(REAL_TEMPLATE.read_text(encoding="utf-8"))
    assert reference["physical_sub_questions"] is True

    def block(questions: list[str]) -> str:
        return "\n".join(f"q{i}: {q}" for i, q in enumerate(questions, start=1))

    for axis in ALL_AXES:
        if is_law(axis):
            expected = reference["physical_template"].format(
                prompt=CAPTION,
                questions_block=block(constants["PHYSICAL_SUB_QUESTIONS"][axis]),
                law=axis,
                criteria=constants["PHYSICAL_CRITERIA"][axis],
            )
        else:
            expected = reference["eval_prompts"][axis].format(
                prompt=CAPTION,
                questions_block=block(constants["GENERAL_SUB_QUESTIONS"][axis]),
            )
        prompt = rubric.render(axis, CAPTION)
        assert prompt.user == expected, axis
        assert prompt.user.encode() == expected.encode(), axis
        assert prompt.system == reference["system_prompt"], axis
        assert json.loads(prompt.user.rstrip().splitlines()[-1]).keys() == {axis}

    override = rubric.render("collision", CAPTION, criteria="Custom criterion.").user
    assert override == reference["physical_template"].format(
        prompt=CAPTION,
        questions_block=block(constants["PHYSICAL_SUB_QUESTIONS"]["collision"]),
        law="collision",
        criteria="Custom criterion.",
    )
