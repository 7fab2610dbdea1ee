"""Files the project reads, written by an outsider (round 5): clip names that are not names,
JSON keys written twice, identity files and adapter snapshots of the wrong shape, marks
whose reason is not text, and clips too large to decode. Each is a clear refusal naming
the file and the field, or a safe success; never a traceback, never a silent choice."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from pytester_kit import Kit

from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge._exceptions import (
    InputError,
    JudgeLoadError,
    RubricError,
    SuiteError,
    VideoError,
)
from pytest_phyjudge._files import write_json_atomic
from pytest_phyjudge._outputs import replace_file
from pytest_phyjudge.cli.main import main
from pytest_phyjudge.cli.score import pair_clips
from pytest_phyjudge.engine.adapter import resolve_adapter
from pytest_phyjudge.engine.frames import check_frame_size, frame_size
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.engine.rubric import load_rubric
from pytest_phyjudge.engine.video import require_sampler
from pytest_phyjudge.judges.cache.judge import CachedJudge
from pytest_phyjudge.judges.cache.record import read_identity_file
from pytest_phyjudge.judges.cache.store import JudgmentCache
from pytest_phyjudge.judges.local.loading import plan_judge
from pytest_phyjudge.judges.remote.http import auth_headers
from pytest_phyjudge.judges.remote.provenance import read_provenance
from pytest_phyjudge.regression.baseline import load_baseline
from pytest_phyjudge.suites import load_prompt_set, load_suite
from pytest_phyjudge.testing import write_test_video

pytest_plugins = "pytester"

CAPTION = "A ball falls onto a table."
IDENTITY = JudgeIdentity(kind="tiny", adapter="tiny-judge", base="tiny-base", adapter_sha256="w")
SETTINGS = {"fps": 2.0, "max_pixels": 230400, "max_new_tokens": 64, "scoring": "greedy"}
PROMPTS = {"prompts": [{"video": "a", "prompt": CAPTION, "physical_laws": ["gravity"]}]}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# --------------------------------------------------------------------------- score-dir clips


def _clip_folder(tmp_path: Path, *names: str | bytes) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in names:
        (folder / os.fsdecode(name)).write_bytes(b"a stand-in clip")
    return folder


@pytest.mark.parametrize(
    "name",
    [b"\x1b[31mEVIL__a.mp4", b"\xff__a.mp4", b"__a.mp4", b"a b__a.mp4", b"..__a.mp4"],
    ids=["ansi", "not-utf8", "empty", "space", "dots"],
)
def test_a_generator_part_that_is_no_name_leaves_the_clip_unpaired(
    tmp_path: Path, name: bytes
) -> None:
    """The generator part names a results file and is printed and stored: one that is not a
    plain name (a terminal escape, bytes that are not UTF-8) must not become one."""
    folder = _clip_folder(tmp_path, name, b"good__a.mp4")
    groups, stray = pair_clips(folder, [{"id": "a", "prompt": CAPTION, "laws": []}])
    assert list(groups) == ["good"]
    assert [p.name for p in stray] == [os.fsdecode(name)]


def test_score_dir_prints_no_terminal_escape_from_a_clip_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "readers_judge.py").write_text(
        "from pytest_phyjudge import ScriptedJudge\n\n"
        "def make(*args, **kwargs):\n    return ScriptedJudge({'*': 4})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = _clip_folder(tmp_path, b"\x1b[2J\x1b[31mEVIL__a.mp4", b"\xfe__a.mp4", b"ok__a.mp4")
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps(PROMPTS))
    out = tmp_path / "out" / "scores.json"
    args = ("--videos", str(folder), "--prompts", str(prompts), "--out", str(out))
    code, text = _cli(
        capsys, "score-dir", *args, "--judge", "readers_judge:make", "--cache-mode", "off"
    )
    assert code == 0, text
    assert "\x1b" not in text and "Traceback" not in text
    assert [p.name for p in out.parent.iterdir()] == ["scores.json"]
    assert json.loads(out.read_text())["meta"]["generator"] == "ok"


# --------------------------------------------------------------------------- keys written twice


def test_a_prompt_set_entry_with_a_key_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prompts.json"
    path.write_text(
        '{"prompts": [{"video": "a", "prompt": "shown", "prompt": "judged", '
        '"physical_laws": ["gravity"]}]}'
    )
    with pytest.raises(SuiteError) as info:
        load_prompt_set(path)
    assert "'prompt'" in str(info.value) and "twice" in str(info.value)


def test_a_prompt_set_with_two_prompts_lists_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prompts.json"
    first = {"video": "hidden", "prompt": "x", "physical_laws": []}
    path.write_text(f'{{"prompts": [{json.dumps(first)}], "prompts": []}}')
    with pytest.raises(SuiteError, match="'prompts' twice"):
        load_prompt_set(path)


def _baseline(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "baseline.json"
    path.write_text(text)
    return path


BASELINE = (
    '{"format": "pytest-phyjudge-baseline", "version": %s, "judge": null, '
    '"suites": {"s": {"a": {"SA": %s}}}}'
)


def test_a_baseline_entry_written_twice_is_refused(tmp_path: Path) -> None:
    """A reviewer reads the first entry, json the last: neither may silently count."""
    path = _baseline(tmp_path, BASELINE % ("1", '{"score": 5}, "SA": {"score": 1}'))
    with pytest.raises(InputError) as info:
        load_baseline(path)
    assert str(path) in str(info.value) and "'SA' twice" in str(info.value)


@pytest.mark.parametrize("version", ["true", "1.0", '"1"'])
def test_a_baseline_version_that_only_equals_one_is_refused(tmp_path: Path, version: str) -> None:
    path = _baseline(tmp_path, BASELINE % (version, '{"score": 4}'))
    with pytest.raises(InputError, match="version"):
        load_baseline(path)


def test_an_adapter_config_with_a_key_twice_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(
        '{"base_model_name_or_path": "evil/base", "base_model_name_or_path": "Qwen/Qwen3.5-9B"}'
    )
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    with pytest.raises(JudgeLoadError, match="twice"):
        resolve_adapter(folder)


# --------------------------------------------------------------------------- identities


@pytest.fixture
def export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A real export: two judgments of a scripted judge recorded as the tiny judge, and
    the identity file beside it."""
    video = tmp_path / "clip.mp4"
    write_test_video(video, seed=1, frames=6)
    scripted = ScriptedJudge({"*": 4})
    judge = CachedJudge(
        identity=IDENTITY,
        rubric=scripted.rubric,
        settings=SETTINGS,
        cache=JudgmentCache(tmp_path / "cache"),
        mode="use",
        load=lambda: scripted,
    )
    judge.score_many(video, CAPTION, ["SA", "gravity"])
    judge.close()
    out = tmp_path / "export" / "judgments.jsonl"
    out.parent.mkdir()
    code, text = _cli(capsys, "cache", "export", str(out), "--cache", str(tmp_path / "cache"))
    assert code == 0, text
    return out


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data[key]
    data[last] = value


WRONG_FIELDS = [
    ("rubric.general_templates.SA", 5),
    ("rubric.general_templates", {}),
    ("rubric.physical_template", None),
    ("rubric.physical_sub_questions", "gravity"),
    ("rubric.physical_criteria.gravity", ["a", "list"]),
    ("rubric.physical_sub_questions_enabled", "false"),
    ("rubric.general_sub_questions.PTV", [1, 2]),
    ("judge.kind", 7),
]


@pytest.mark.parametrize(("field", "value"), WRONG_FIELDS, ids=[f for f, _ in WRONG_FIELDS])
def test_an_identity_file_of_the_wrong_shape_names_its_field(
    export: Path, field: str, value: Any
) -> None:
    """Before: read, then a TypeError or KeyError on the first prompt a replay rendered."""
    identity = export.with_suffix(".identity.json")
    data = json.loads(identity.read_text())
    _put(data, field, value)
    identity.write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        read_identity_file(identity)
    message = str(info.value)
    assert str(identity) in message and field.rsplit(".", 1)[-1] in message, message


def test_an_import_whose_judge_record_has_the_wrong_shape_names_its_line(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export.with_suffix(".identity.json").unlink()  # only the file's own judge_record names it
    lines = export.read_text().splitlines()
    record = json.loads(lines[0])
    record["judge_record"]["rubric"]["physical_template"] = ["not", "text"]
    export.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    code, text = _cli(capsys, "cache", "import", str(export), "--cache", str(tmp_path / "new"))
    assert code == 2 and f"{export}:1" in text and "physical_template" in text, text
    assert "Traceback" not in text


def test_an_import_line_with_a_key_twice_is_refused_and_nothing_imported(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``"score": 1`` before the real one: a reader that keeps the first sees another
    judgment than the one the import would store."""
    lines = export.read_text().splitlines()
    lines[1] = lines[1].replace('"judgment": {', '"judgment": {"score": 1, ', 1)
    export.write_text("\n".join(lines) + "\n")
    code, text = _cli(capsys, "cache", "import", str(export), "--cache", str(tmp_path / "new"))
    assert code == 2 and f"{export}:2" in text and "twice" in text, text
    code, text = _cli(capsys, "cache", "info", "--cache", str(tmp_path / "new"))
    assert code == 0 and "0 judgments" in text, text


@pytest.mark.parametrize("field", ["base", "revision", "adapter_sha256"])
@pytest.mark.parametrize("value", [["a", "list"], {"an": "object"}, 5])
def test_a_provenance_field_that_is_not_text_names_the_field(
    tmp_path: Path, field: str, value: Any
) -> None:
    """Before: a TypeError on hashing the judge (or on reading ``base`` as a path)."""
    path = tmp_path / "phyjudge_provenance.json"
    path.write_text(json.dumps({"adapter": "acme/judge", field: value}))
    with pytest.raises(JudgeLoadError) as info:
        read_provenance(path)
    assert str(path) in str(info.value) and repr(field) in str(info.value)


# --------------------------------------------------------------------------- adapter snapshots


def _adapter(tmp_path: Path) -> Path:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"base_model_name_or_path": "Qwen/Qwen3.5-9B"}')
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    return folder


def test_an_adapter_readme_that_is_not_utf8_is_read_as_not_the_tiny_judge(
    tmp_path: Path,
) -> None:
    folder = _adapter(tmp_path)
    (folder / "README.md").write_bytes(b"caf\xe9 \xff\xfe")
    with pytest.warns(UserWarning):  # the bundled rubric stands in: said, not raised
        plan = plan_judge(folder)
    assert plan.identity.kind == "local"


def test_an_adapter_template_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    folder = _adapter(tmp_path)
    (folder / "subq+human.yaml").write_bytes(b"scheme: caf\xe9\n")
    with pytest.raises(RubricError) as info:
        load_rubric(folder)
    assert "subq+human.yaml" in str(info.value) and "UTF-8" in str(info.value)


# --------------------------------------------------------------------------- suite marks

MARK_SUITE = (
    "suite: s\nvideos: v/{id}.mp4\ncases:\n  - id: a\n    prompt: x\n    laws: [gravity]\n"
    "    marks: [%s]\n"
)


@pytest.mark.parametrize(
    "mark",
    ["{skip: {reason: [1]}}", "{skip: 5}", "{skip: [a, b]}", "{xfail: {reason: 3}}",
     "{skipif: {condition: true, reason: {a: 1}}}", "{skip: true}"],
)  # fmt: skip
def test_a_mark_reason_that_is_not_text_is_refused_at_its_line(tmp_path: Path, mark: str) -> None:
    """Before: collected, then every item of the case errored with pytest's TypeError."""
    path = tmp_path / "m.phyjudge.yaml"
    path.write_text(MARK_SUITE % mark)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.line == 7 and "reason" in str(info.value), str(info.value)


@pytest.mark.parametrize("mark", ["{skip: [a]}", "{skip: ok}", "skip", "{xfail: known}"])
def test_a_mark_reason_in_text_is_kept(tmp_path: Path, mark: str) -> None:
    path = tmp_path / "m.phyjudge.yaml"
    path.write_text(MARK_SUITE % mark)
    assert load_suite(path).cases[0].marks


# --------------------------------------------------------------------------- clips


def test_frames_larger_than_8k_are_refused_before_decoding(tmp_path: Path) -> None:
    """A few KB of black 8192x8192 frames took the reference sampler 3 GB to read."""
    clip = tmp_path / "huge.mp4"
    with pytest.raises(VideoError) as info:
        check_frame_size(clip, 8192, 8192)
    assert "8192x8192" in str(info.value) and str(clip) in str(info.value)
    check_frame_size(clip, 7680, 4320)  # 8K UHD itself is read


# --------------------------------------------------------------------------- environment


@pytest.mark.parametrize("key", ["sk-SECRET-1\n", " sk-SECRET-1", "sk-SECRET-\u00e9"])
def test_an_api_key_no_header_can_carry_is_refused_without_its_value(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """Before: httpx refused the header with an error quoting it, and that error went to
    the terminal and into scores.json: the secret with it."""
    monkeypatch.setenv("PHYJUDGE_API_KEY", key)
    with pytest.raises(JudgeLoadError) as info:
        auth_headers()
    assert "PHYJUDGE_API_KEY" in str(info.value) and "SECRET" not in str(info.value)


def test_an_api_key_that_is_a_plain_token_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHYJUDGE_API_KEY", "sk-abc.DEF_123")
    assert auth_headers()["Authorization"] == "Bearer sk-abc.DEF_123"


@pytest.mark.parametrize("value", ["abc", "nan", "inf"])
def test_a_model_seq_len_that_is_no_number_is_named(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """qwen-vl-utils reads MODEL_SEQ_LEN when imported and failed with a bare ValueError."""
    monkeypatch.setenv("MODEL_SEQ_LEN", value)
    for sample in (lambda: frame_size(360, 640, 4, 230400), lambda: require_sampler("A test")):
        with pytest.raises(InputError, match="MODEL_SEQ_LEN"):
            sample()


# --------------------------------------------------------------------------- written in place


@pytest.mark.parametrize("write", [write_json_atomic, lambda p, d: replace_file(p, b"{}")])
def test_a_report_is_never_renamed_over_a_pipe(tmp_path: Path, write: Any) -> None:
    """Before: the rename replaced the node itself; run as root, ``--phyjudge-report
    /dev/full`` put a scores.json in the device's place."""
    fifo = tmp_path / "named.json"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a file"):
        write(fifo, {"a": 1})
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["named.json"]


def test_pytest_report_onto_a_pipe_is_a_red_run_and_keeps_the_pipe(
    pytester: pytest.Pytester, kit: Kit
) -> None:
    kit.conftest()
    kit.clip("a")
    kit.suite("suite: s\nvideos: clips/{id}.mp4\ncases:\n  - {id: a, prompt: x, laws: [gravity]}\n")
    os.mkfifo(pytester.path / "scores.json")
    result = pytester.runpytest("--phyjudge-report", "scores.json", "-p", "no:cacheprovider")
    assert result.ret == 4, result.stdout.str()
    assert stat.S_ISFIFO(os.lstat(pytester.path / "scores.json").st_mode)
