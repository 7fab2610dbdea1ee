"""The judges' rooms keep their doors: deploy/ is used by no judge, LocalJudge's own methods
stay its own, and the tiny judge is a product feature whose build key is made of values.

All light: no model is built (the trained build itself is tests/test_trained_tiny.py)."""

from __future__ import annotations

import ast
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest_phyjudge
from pytest_phyjudge.judges.tiny import build, recipe
from pytest_phyjudge.judges.tiny.training import fit

PACKAGE = Path(pytest_phyjudge.__file__).parent


def _every_import(path: Path) -> set[str]:
    """Every module a file imports, inside functions too."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_judge_imports_the_deployment_tools() -> None:
    """The contract between a server and its clients lives on the client's side
    (judges/remote/contract.py): deploy/ uses the judges, never the other way."""
    offenders = [
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in sorted((PACKAGE / "judges").rglob("*.py"))
        for module in sorted(_every_import(path))
        if module.startswith("pytest_phyjudge.deploy")
    ]
    assert offenders == []


def test_no_module_calls_local_judges_private_methods() -> None:
    """Completion and the tiny judge's training use LocalJudge's public interface only."""
    judge_file = PACKAGE / "judges" / "local" / "judge.py"
    tree = ast.parse(judge_file.read_text(encoding="utf-8"))
    (local_judge,) = [
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "LocalJudge"
    ]
    private = {
        n.name
        for n in local_judge.body
        if isinstance(n, ast.FunctionDef) and n.name.startswith("_") and not n.name.endswith("__")
    }
    offenders = [
        f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != judge_file
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and node.attr in private - {"_score_axes", "_score_clips"}
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]
    assert offenders == []


def test_the_factory_imports_the_tiny_judge_as_code_not_by_name() -> None:
    source = (PACKAGE / "judges" / "factory.py").read_text(encoding="utf-8")
    assert "pytest_phyjudge.judges.tiny" in _every_import(PACKAGE / "judges" / "factory.py")
    assert "pytest_phyjudge.testing" not in source


def test_the_build_key_is_made_of_the_recipes_values_and_versions() -> None:
    """Same values, same key; any value or version changed, another key."""
    values, versions = recipe.recipe_values(), recipe.library_versions()
    key = recipe.build_key(values, versions)
    assert recipe.build_id() == key == recipe.build_key(dict(values), dict(versions))
    assert key.startswith(f"format-trained-v{recipe.VERSION}-")
    assert values["training"]["TRAINING_STEPS"] == fit.TRAINING_STEPS
    for changed in (
        {**values, "version": values["version"] + 1},
        {**values, "training": {**values["training"], "TRAINING_STEPS": 301}},
        {**values, "build": {**values["build"], "hidden": 32}},
    ):
        assert recipe.build_key(changed, versions) != key
    assert recipe.build_key(values, {**versions, "torch": "0.0"}) != key


def test_the_recipes_build_arguments_are_the_builders_defaults() -> None:
    defaults = {
        name: p.default
        for name, p in inspect.signature(build.build_tiny_judge).parameters.items()
        if name in recipe.BUILD
    }
    assert defaults == dict(recipe.BUILD)


def test_editing_a_comment_does_not_retrain_the_tiny_judge(tmp_path: Path) -> None:
    """A copy of the package with a comment and a docstring changed in every module of the
    tiny judge gives the same build key; a changed constant gives another."""
    code = "from pytest_phyjudge.judges.tiny.recipe import build_id; print(build_id())"

    def key_of(root: Path) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(root), "PATH": ""},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    copy = tmp_path / "pytest_phyjudge"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for module in sorted((copy / "judges" / "tiny").rglob("*.py")):
        text = module.read_text(encoding="utf-8")
        edited = text.replace('"""', '"""Edited. ', 1) + "\n# a comment\n"
        module.write_text(edited, encoding="utf-8")
    assert key_of(tmp_path) == recipe.build_id()
    fit_file = copy / "judges" / "tiny" / "training" / "fit.py"
    fit_file.write_text(
        fit_file.read_text(encoding="utf-8").replace("TRAINING_STEPS = 300", "TRAINING_STEPS = 3"),
        encoding="utf-8",
    )
    assert key_of(tmp_path) != recipe.build_id()
