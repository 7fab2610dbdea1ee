"""Hostile suites against generators: a suite names a generator, it never imports or calls one.

A suite's ``generator:`` is a name; only the ini file, a conftest.py or an installed package
says what a name stands for, and its module is imported only when a clip must be made. Every
run uses a SCRIPTED judge (scores are not the point); the marker files show what ran.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytester_kit import Kit

from pytest_phyjudge import SuiteError
from pytest_phyjudge.suites import load_suite

pytest_plugins = "pytester"

#: At import, writes ``MARKER`` in the run's folder: its existence proves the module ran.
EVIL = """
from pathlib import Path
Path("MARKER").write_text("evilmod ran")

def run(*args, **kwargs):
    Path("CALLED").write_text("evilmod.run called")
"""

#: A well-behaved generator module that logs its import (``IMPORTED``) and each clip it makes.
GOOD = """
from pathlib import Path
with open("IMPORTED", "a") as fh:
    fh.write("imported\\n")

def make(prompt, *, seed, out_path, **params):
    with open("MADE", "a") as fh:
        fh.write(f"make {prompt}\\n")
    Path(out_path).write_bytes(b"clip of " + prompt.encode())

def make_again(prompt, *, seed, out_path, **params):
    with open("MADE", "a") as fh:
        fh.write(f"make_again {prompt}\\n")
    Path(out_path).write_bytes(b"other clip of " + prompt.encode())
"""

CASES = "defaults: {metrics: []}\ncases:\n  - {id: drop, prompt: pwned, laws: [gravity]}\n"
CACHE_MODES = [[], ["--phyjudge-cache-mode", "only"]]


def suite(kit: Kit, generator: str, name: str = "gen") -> None:
    """A one-case suite whose clip comes from ``generator`` (written on line 1)."""
    kit.suite(f"generator: {generator}\n{CASES}", name=name)


def ini(kit: Kit, *lines: str) -> None:
    text = "".join(f"\n    {line}" for line in lines)
    kit.pytester.makeini(f"[pytest]\nphyjudge_generators ={text}\n")


def collection_error(result: pytest.RunResult, *lines: str) -> str:
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(list(lines))
    out = result.stdout.str()
    assert "Traceback" not in out and "_pytest" not in out, out
    return out


def clips(kit: Kit) -> list[str]:
    folder = kit.pytester.path / ".pytest_cache" / "d" / "phyjudge-clips"
    return sorted(p.read_text() for p in folder.glob("*.mp4"))


def lines_of(kit: Kit, name: str) -> list[str]:
    path = kit.pytester.path / name
    return path.read_text().splitlines() if path.exists() else []


# --------------------------------------------------------------------------- import paths


@pytest.mark.parametrize("mode", CACHE_MODES, ids=["use", "only"])
def test_an_import_path_is_refused_and_nothing_is_imported(
    pytester: pytest.Pytester, kit: Kit, mode: list[str]
) -> None:
    kit.conftest(name="scripted-for-tests")
    kit.module("evilmod", EVIL)  # importable: on the path, beside the suite
    suite(kit, "evilmod:run")
    result = pytester.runpytest(*mode)
    out = collection_error(
        result,
        "*gen.phyjudge.yaml:1: generator is the string 'evilmod:run', an import path; a suite "
        "names its generator, it never imports one.*`run = evilmod:run` under "
        "`phyjudge_generators` in your ini file*`pytest_phyjudge_generators(config)`*",
    )
    assert "generator: run" in out
    assert not (pytester.path / "MARKER").exists()
    assert not (pytester.path / "CALLED").exists()


@pytest.mark.parametrize("mode", CACHE_MODES, ids=["use", "only"])
def test_an_importable_callable_is_never_called(
    pytester: pytest.Pytester, kit: Kit, mode: list[str]
) -> None:
    """``numpy:savez`` would write ``pwned.npz`` (named by the prompt) into the run's folder."""
    kit.conftest(name="scripted-for-tests")
    suite(kit, "numpy:savez")
    result = pytester.runpytest(*mode)
    collection_error(result, "*gen.phyjudge.yaml:1: generator is the string 'numpy:savez'*")
    assert not list(pytester.path.rglob("*.npz"))


@pytest.mark.parametrize(
    "generator", ["os.system", "'__import__(\"os\"):system'", "'a:b:c'", "'numpy.savez'"]
)
def test_dotted_or_odd_names_are_refused(pytester: pytest.Pytester, kit: Kit, generator) -> None:
    kit.conftest(name="scripted-for-tests")
    suite(kit, generator)
    collection_error(
        pytester.runpytest(),
        "*gen.phyjudge.yaml:1: generator is the string*under `phyjudge_generators` in your "
        "ini file*",
    )


def test_a_registered_name_with_dots_cannot_be_written_in_the_ini_either(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    kit.conftest(name="scripted-for-tests")
    ini(kit, "os.system = os:system")
    suite(kit, "run")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*ini option phyjudge_generators (entry 1, 'os.system = os:system'): 'os.system' is "
         "not a generator name*"]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        (["wan"], "write each entry as `name = package.module:function`"),
        (["wan = mypkg video"], "'mypkg video' is not an import path"),
        (["wan = a:f", "wan = b:g"], "the generator 'wan' is already registered as 'a:f'"),
    ],
)
def test_bad_ini_lines_are_usage_errors(
    pytester: pytest.Pytester, kit: Kit, lines: list[str], words: str
) -> None:
    kit.conftest(name="scripted-for-tests")
    ini(kit, *lines)
    suite(kit, "wan")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*ini option phyjudge_generators (entry *{words}*"])


# --------------------------------------------------------------------------- unknown names


def test_an_unknown_name_says_what_is_registered_and_how_to_register(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    kit.conftest(name="scripted-for-tests")
    kit.module("videogen", GOOD)
    ini(kit, "wan = videogen:make", "cogvideo = videogen:make")
    kit.suite(
        "videos: v/{id}.mp4\ndefaults: {metrics: []}\ncases:\n"
        "  - {id: ok, prompt: p, laws: [gravity]}\n"
        "  - {id: typo, prompt: p, laws: [gravity], generator: wam}\n",
        name="gen",
    )
    collection_error(
        pytester.runpytest(),
        "*gen.phyjudge.yaml:5: the generator 'wam' is not registered. Did you mean 'wan'? "
        "Registered generators: cogvideo, wan. Generators are named, not imported: register "
        "`NAME = package.module:function` under `phyjudge_generators`*",
    )
    assert lines_of(kit, "IMPORTED") == []


def test_an_unknown_name_with_nothing_registered(pytester: pytest.Pytester, kit: Kit) -> None:
    kit.conftest(name="scripted-for-tests")
    suite(kit, "wan")
    collection_error(
        pytester.runpytest(),
        "*gen.phyjudge.yaml:1: the generator 'wan' is not registered. No generator is "
        "registered. Generators are named*pytest_phyjudge_generators(config)*",
    )


# --------------------------------------------------------------------------- registered names


def test_a_name_registered_in_the_ini_file_is_imported_only_to_make_a_clip(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    kit.conftest(name="scripted-for-tests")
    kit.module("videogen", GOOD)
    ini(kit, "wan = videogen:make")
    suite(kit, "wan")
    for mode in CACHE_MODES:  # collecting imports nothing, also replaying from the cache
        pytester.runpytest("--collect-only", *mode).assert_outcomes()
    assert lines_of(kit, "IMPORTED") == []
    pytester.runpytest().assert_outcomes(passed=1)
    assert lines_of(kit, "MADE") == ["make pwned"]
    assert clips(kit) == ["clip of pwned"]
    (pytester.path / "IMPORTED").unlink()
    pytester.runpytest().assert_outcomes(passed=1)  # the clip is cached: nothing imported
    assert lines_of(kit, "IMPORTED") == [] and lines_of(kit, "MADE") == ["make pwned"]
    ini(kit, "wan = videogen:make_again")  # the name now stands for another function
    pytester.runpytest().assert_outcomes(passed=1)
    assert lines_of(kit, "MADE") == ["make pwned", "make_again pwned"]


def test_a_name_registered_in_pyproject_toml(pytester: pytest.Pytester, kit: Kit) -> None:
    kit.conftest(name="scripted-for-tests")
    kit.module("videogen", GOOD)
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\nphyjudge_generators = ["wan = videogen:make"]\n'
    )
    suite(kit, "wan")
    pytester.runpytest().assert_outcomes(passed=1)
    assert clips(kit) == ["clip of pwned"]


def test_a_name_registered_by_a_conftest_hook(pytester: pytest.Pytester, kit: Kit) -> None:
    kit.conftest(
        name="scripted-for-tests",
        extra="\nfrom pathlib import Path\n\n"
        "def make(prompt, *, seed, out_path, size):\n"
        "    Path(out_path).write_text(f'{prompt} {seed} {size}')\n\n"
        "def pytest_phyjudge_generators(config):\n"
        "    return {'from-conftest': make}\n",
    )
    kit.suite(
        "generator: from-conftest\ndefaults: {metrics: [], seed: 5, params: {size: 64}}\n"
        "cases:\n  - {id: drop, prompt: pwned, laws: [gravity]}\n",
        name="gen",
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert clips(kit) == ["pwned 5 64"]


def test_a_conftest_names_generators_for_its_own_folder(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    """The nearest conftest wins; a sibling folder does not see its names."""
    kit.conftest(
        name="scripted-for-tests",
        extra="\nfrom pathlib import Path\n\n"
        "def pytest_phyjudge_generators(config):\n"
        "    return {'gen': lambda prompt, out_path, **kw: Path(out_path).write_text('root')}\n",
    )
    (pytester.path / "near").mkdir()
    (pytester.path / "near" / "conftest.py").write_text(
        "from pathlib import Path\n\n"
        "def pytest_phyjudge_generators(config):\n"
        "    return {\n"
        "        'gen': lambda prompt, out_path, **kw: Path(out_path).write_text('near'),\n"
        "        'only-near': lambda prompt, out_path, **kw: None,\n"
        "    }\n"
    )
    (pytester.path / "near" / "a.phyjudge.yaml").write_text(f"generator: gen\n{CASES}")
    (pytester.path / "far").mkdir()
    (pytester.path / "far" / "b.phyjudge.yaml").write_text(f"generator: only-near\n{CASES}")
    result = pytester.runpytest("--continue-on-collection-errors")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*b.phyjudge.yaml:1: the generator 'only-near' is not regist*"])
    assert clips(kit) == ["near"]


@pytest.mark.parametrize(
    ("returned", "words"),
    [
        ("['wan']", "pytest_phyjudge_generators returned list; return a dict {name: function}"),
        ("{'wan': 'videogen:make'}", "pytest_phyjudge_generators returned str for 'wan'"),
        ("{'a.b': print}", "pytest_phyjudge_generators returned the name 'a.b'"),
    ],
)
def test_a_conftest_hook_returning_something_else_is_a_collection_error(
    pytester: pytest.Pytester, kit: Kit, returned: str, words: str
) -> None:
    kit.conftest(
        name="scripted-for-tests",
        extra=f"\ndef pytest_phyjudge_generators(config):\n    return {returned}\n",
    )
    suite(kit, "wan")
    collection_error(pytester.runpytest(), f"*gen.phyjudge.yaml: {words}*")


def test_a_name_registered_by_an_installed_package(pytester: pytest.Pytester, kit: Kit) -> None:
    """An entry point in the ``pytest_phyjudge.generators`` group; the ini file wins over it."""
    kit.conftest(name="scripted-for-tests")
    kit.module("videogen", GOOD)
    info = pytester.path / "videogen_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: videogen-pkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[pytest_phyjudge.generators]\n"
        "installed = videogen:make\n"
        "overridden = videogen:make\n"
        "bad.name = videogen:make\n"
    )
    ini(kit, "overridden = videogen:make_again")
    kit.suite(
        f"generator: installed\n{CASES}  - {{id: other, prompt: p, laws: [gravity], "
        "generator: overridden}\n",
        name="gen",
    )
    result = pytester.runpytest("-W", "always::pytest.PytestConfigWarning")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*ignoring the entry point 'bad.name' of videogen-pkg*"])
    assert sorted(lines_of(kit, "MADE")) == ["make pwned", "make_again p"]


def test_a_registered_target_that_cannot_be_imported_fails_its_case(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    kit.conftest(name="scripted-for-tests")
    ini(kit, "wan = no_such_module:make")
    suite(kit, "wan")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*Case 'drop': Cannot import the generator 'wan' (ini option phyjudge_generators), "
         "registered as 'no_such_module:make'*"]
    )  # fmt: skip


# --------------------------------------------------------------------------- other fields


def test_a_plugin_marks_text_condition_is_refused(pytester: pytest.Pytester, kit: Kit) -> None:
    """pytest-rerunfailures evaluates ``flaky(condition="...")`` as Python."""
    kit.conftest(name="scripted-for-tests")
    kit.pytester.makeini("[pytest]\nmarkers =\n    flaky: rerun\n")
    kit.suite(
        "videos: v/{id}.mp4\ncases:\n  - id: a\n    prompt: p\n    laws: [gravity]\n"
        "    marks: [{flaky: {reruns: 2, condition: \"__import__('os').system('x')\"}}]\n",
        name="gen",
    )
    collection_error(
        pytester.runpytest(),
        "*gen.phyjudge.yaml:6: the mark 'flaky' has a text condition*a suite never runs code*",
    )


def test_a_mark_name_with_a_leading_underscore_is_refused_at_its_line(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    kit.conftest(name="scripted-for-tests")
    kit.suite(
        "videos: v/{id}.mp4\ncases:\n  - {id: a, prompt: p, laws: [gravity], marks: [_private]}\n",
        name="gen",
    )
    collection_error(
        pytester.runpytest(), "*gen.phyjudge.yaml:3: the string '_private' is not a mark name*"
    )


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ("{seed: 1}", "params has the key 'seed'; the generator is called as function(prompt"),
        ("{out_path: /etc/passwd}", "params has the key 'out_path'"),
        ("{1: 2}", "params has the key 1; each key becomes a keyword argument"),
        ("{'a b': 2}", "params has the key the string 'a b'"),
    ],
)
def test_params_that_would_clash_with_the_generator_call_are_refused_at_their_line(
    tmp_path: Path, params: str, words: str
) -> None:
    path = tmp_path / "p.phyjudge.yaml"
    path.write_text(
        f"generator: wan\ndefaults:\n  params: {params}\n"
        "cases:\n  - {id: drop, prompt: p, laws: [gravity]}\n"
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.line == 3 and words in info.value.reason, str(info.value)


def test_a_generated_clip_changed_since_it_was_made_is_neither_reused_nor_overwritten(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    """The clips folder is a cache others may write: a clip whose bytes are not those its
    name records is made again, and the changed file is left for the user to delete."""
    kit.conftest(name="scripted-for-tests")
    kit.module("videogen", GOOD)
    ini(kit, "wan = videogen:make")
    suite(kit, "wan")
    pytester.runpytest().assert_outcomes(passed=1)
    (clip,) = (pytester.path / ".pytest_cache" / "d" / "phyjudge-clips").glob("drop-*.mp4")
    clip.write_bytes(b"edited by someone else")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{clip.name}*neither used nor overwritten*"])
    assert clip.read_bytes() == b"edited by someone else"
    assert lines_of(kit, "MADE") == ["make pwned", "make pwned"]
