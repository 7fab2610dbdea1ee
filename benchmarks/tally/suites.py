"""Hostile suite files: YAML bombs, deep nesting, huge numbers, control bytes, marks that
would run code, every field given a bad value, and paths that are not files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from tally.model import SuiteInput, expect

#: Lines 1-6; a case field added after them is on line 7.
HEAD = "suite: s\nvideos: v/{id}.mp4\ncases:\n  - id: a\n    prompt: A ball falls.\n    laws: [gravity]\n"  # noqa: E501
#: Run time outcomes of a case whose video is bad: its items fail or error, naming it.
FAILS = ("failed", "error")


def _at(name: str, line: int | None) -> str:
    return f"{name}.phyjudge.yaml" + (f":{line}" if line else "")


def refused(cls: str, name: str, text: str | bytes, line: int | None, *also: str) -> SuiteInput:
    """A suite refused at collection, naming its file and line (and ``also``)."""
    return SuiteInput(cls, name, text, expect("error", names=(_at(name, line), *also)))


def yaml_bombs() -> Iterator[SuiteInput]:
    cls = "suite: YAML bombs, depth, size"
    for levels, width in ((9, 9), (12, 6), (20, 2), (30, 2)):
        lines = ["    params:", "      l0: &l0 [lol, lol]"]
        lines += [
            f"      l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)
        ]
        yield refused(
            cls, f"alias_bomb_{levels}x{width}", HEAD + "\n".join(lines) + "\n", None, "alias"
        )
    refs = ", ".join(["*b"] * 40)
    bomb_case = f"suite: s\nvideos: v/{{id}}.mp4\nx: &b [{', '.join(['q'] * 40)}]\ny: &c [{refs}]\n"
    bomb_case += "z: [" + ", ".join(["*c"] * 40) + ", " + ", ".join(["*c"] * 40) + "]\ncases: []\n"
    yield refused(cls, "alias_bomb_top_level", bomb_case, None, "alias")
    chain = ["    params:", "      n0: &n0 [x]"] + [
        f"      n{i}: &n{i} [*n{i - 1}]" for i in range(1, 3000)
    ]
    yield refused(cls, "alias_depth_chain", HEAD + "\n".join(chain) + "\n", None, "nested")
    for depth in (101, 1000, 20_000, 200_000):
        text = HEAD + "    params: {x: " + "[" * depth + "]" * depth + "}\n"
        yield refused(cls, f"flow_list_depth_{depth}", text, 7, "nested")
    yield refused(
        cls,
        "flow_map_depth_5000",
        HEAD + "    params: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
        7,
        "nested",
    )
    block = "".join("  " * (i + 3) + f"k{i}:\n" for i in range(300))
    yield refused(
        cls,
        "block_map_depth_300",
        HEAD + "    params:\n" + block + "  " * 303 + "v: 1\n",
        None,
        "nested",
    )
    yield refused(
        cls, "file_17_mib", HEAD.encode() + b"#" * (17 * 1024 * 1024) + b"\n", None, "16 MiB"
    )
    yield refused(
        cls,
        "prompt_17_mib_line",
        HEAD.replace("A ball falls.", "x" * (17 * 1024 * 1024)),
        None,
        "16 MiB",
    )
    for key, line in (("seed", 7), ("min_score", 7), ("samples", 7), ("tolerance", 7)):
        yield refused(cls, f"huge_int_{key}", HEAD + f"    {key}: {'7' * 5000}\n", line, "digits")
    yield refused(cls, "huge_int_case_id", HEAD.replace("id: a", "id: " + "9" * 5000), 4, "digits")
    yield refused(
        cls, "huge_int_in_params", HEAD + "    params: {n: " + "1" * 20000 + "}\n", 7, "digits"
    )
    yield SuiteInput(
        cls,
        "huge_hex_int",
        HEAD + "    seed: 0x" + "f" * 5000 + "\n",
        expect("passed", "error", names=_at("huge_hex_int", 7)),
    )
    yield refused(cls, "huge_float_exponent", HEAD + "    min_score: 1e99999\n", 7, "min_score")
    yield refused(
        cls,
        "many_cases_no_video_dup_ids",
        HEAD + "  - {id: a, prompt: p, laws: [gravity]}\n" * 3,
        7,
        "'a'",
    )


def control_bytes() -> Iterator[SuiteInput]:
    cls = "suite: control bytes, encoding"
    for byte in (0x00, 0x01, 0x07, 0x08, 0x0B, 0x0C, 0x1B, 0x7F, 0x85):
        data = HEAD.encode() + b"    seed: 3" + bytes([byte]) + b"\n"
        yield refused(cls, f"byte_{byte:02x}_in_value", data, 7 if byte < 0x80 else None)
    yield refused(cls, "nul_in_key", HEAD.encode() + b"    se\x00ed: 3\n", 7)
    yield refused(cls, "nul_in_prompt", HEAD.replace("A ball", "A\x00ball").encode(), 5)
    yield refused(cls, "invalid_utf8", HEAD.encode() + b"    seed: \xff\xfe\xfa\n", None)
    yield refused(cls, "utf16_file", HEAD.encode("utf-16"), None)
    lone = HEAD + '    params: {x: "\\udc80"}\n'
    yield SuiteInput(
        cls,
        "lone_surrogate_escape",
        lone,
        expect("passed", "error", names=_at("lone_surrogate_escape", 7)),
    )
    ok = expect("passed", "error", names=("escaped_nul_prompt.phyjudge.yaml",))
    yield SuiteInput(cls, "escaped_nul_prompt", HEAD.replace("A ball falls.", '"A\\0ball"'), ok)
    yield refused(cls, "tab_indentation", HEAD + "\tseed: 3\n", 7)
    yield refused(
        cls,
        "python_object_tag",
        HEAD + '    params: !!python/object/apply:os.system ["touch pwned"]\n',
        7,
    )
    yield refused(cls, "python_name_tag", HEAD + "    params: {x: !!python/name:os.system }\n", 7)
    yield refused(cls, "unknown_local_tag", HEAD + "    seed: !boom 3\n", 7)
    yield refused(cls, "binary_tag_prompt", HEAD.replace("A ball falls.", "!!binary aGVsbG8="), 5)
    yield refused(cls, "set_tag_laws", HEAD.replace("laws: [gravity]", "laws: !!set {gravity}"), 6)
    yield refused(cls, "merge_key_bad", HEAD + "    <<: [1, 2]\n", 7)
    yield refused(cls, "duplicate_key", HEAD + "    prompt: again\n", 7, "prompt")
    yield refused(cls, "unclosed_flow", HEAD + "    laws: [gravity\n", None)
    yield refused(cls, "bad_indentation", HEAD + "  laws: [gravity]\n   x: 1\n", None)
    yield refused(cls, "two_documents", HEAD + "---\n" + HEAD, 7)
    yield refused(cls, "empty_file", "", None, "empty")
    yield refused(cls, "only_comment", "# nothing\n", None, "empty")
    yield refused(cls, "top_level_list", "- a\n- b\n", 1)
    yield refused(cls, "top_level_scalar", "just text\n", 1)
    yield refused(cls, "bom_then_tab", b"\xef\xbb\xbf\t" + HEAD.encode(), None)


def marks() -> Iterator[SuiteInput]:
    cls = "suite: marks (code execution)"
    shell = "__import__('os').system('touch pwned') == 1"
    bad = {
        "skipif_string": f'[{{skipif: "{shell}"}}]',
        "xfail_string_list": f'[{{xfail: ["{shell}"]}}]',
        "skipif_condition_kw": f'[{{skipif: {{condition: "{shell}", reason: r}}}}]',
        "xfail_condition_kw": f'[{{xfail: {{condition: "{shell}", reason: r}}}}]',
        "skipif_list_two": f'[{{skipif: [true, "{shell}"]}}]',
        "skipif_number": "[{skipif: [1]}]",
        "skipif_null_list": "[{skipif: [null]}]",
        "filterwarnings": '[{filterwarnings: "error::pwned.Warn"}]',
        "filterwarnings_name": "[filterwarnings]",
        "xfail_raises_string": '[{xfail: {raises: "SystemExit", reason: r}}]',
        "xfail_run_string": '[{xfail: {run: "False", reason: r}}]',
        "xfail_strict_string": '[{xfail: {strict: "yes", reason: r}}]',
        "parametrize": '[{parametrize: ["x", [1, 2]]}]',
        "usefixtures_missing": "[{usefixtures: [no_such_fixture]}]",
        "usefixtures_code": f'[{{usefixtures: ["{shell}"]}}]',
        "mark_two_keys": "[{skip: a, xfail: b}]",
        "mark_name_dotted": "[os.system]",
        "mark_name_dunder_code": "[\"__import__('os')\"]",
        "mark_name_number": "[42]",
        "mark_list_of_lists": "[[slow]]",
        "mark_name_empty": '[""]',
        "skip_kw_unknown": "[{skip: {because: x}}]",
        "xfail_kw_unknown": "[{xfail: {condition: true, reason: r, extra: 1}}]",
        "marks_mapping": "{skip: x}",
        "mark_null": "[null]",
        "mark_deep": "[" + "[" * 50 + "]" * 50 + "]",
    }
    for name, value in bad.items():
        yield SuiteInput(
            cls,
            name,
            HEAD + f"    marks: {value}\n",
            expect(
                "error",
                "skipped",
                "xfailed",
                "failed",
                "passed",
                names=_at(name, 7),
                absent=("pwned",),
            ),
        )


FIELDS: dict[str, tuple[str, ...]] = {
    "id": (
        "",
        "'a/b'",
        "'a::b'",
        "[a]",
        "{a: 1}",
        "null",
        "true",
        "'" + "x" * 5000 + "'",
        "'a b'",
        "'..'",
        "'\\u202e'",
    ),
    "prompt": ("", "[a]", "{a: b}", "null", "42", "'   '"),
    "laws": (
        "[levitation]",
        "gravity",
        "[[gravity]]",
        "[gravity, gravity]",
        "[]",
        "{gravity: 1}",
        "[SA]",
        "[null]",
    ),
    "metrics": ("[levitation]", "SA", "[gravity]", "[[SA]]", "{SA: 1}"),
    "min_score": (
        "0",
        "6",
        "-1",
        "3.5",
        "high",
        "true",
        "null",
        ".nan",
        ".inf",
        "{gravity: 9}",
        "{levitation: 3}",
        "{gravity: .nan}",
        "[3]",
        "'3'",
    ),
    "samples": (
        "0",
        "-1",
        "1001",
        "2.5",
        "abc",
        "true",
        ".nan",
        "10000000000000000000000000000",
        "[4]",
    ),
    "pass_rate": (
        "0",
        "1.5",
        "-0.5",
        ".nan",
        ".inf",
        "abc",
        "true",
        "{gravity: 2}",
        "{levitation: 0.5}",
    ),
    "confidence": ("0", "1", "-1", ".nan", "abc", "{gravity: 1}"),
    "tolerance": ("-1", "5", ".inf", ".nan", "abc", "{gravity: -1}"),
    "min_mean": ("0", "6", ".nan", "abc"),
    "seed": ("-1", "abc", "2.5", ".nan", "[1]"),
    "params": ("[1, 2]", "abc", "{1: 2}", "{x: .nan}", "{[a]: b}"),
    "video": (
        "''",
        "[a.mp4]",
        "{x: 1}",
        "'clips/{nope}.mp4'",
        "'clips/{id!r}.mp4'",
        "'clips/{id:>999999999}.mp4'",
        "'clips/{id.__class__}.mp4'",
        "'{'",
    ),
    "unknown_key": ("1",),
    "criteria": ("{gravity: 1}",),
}


#: Values read leniently by design: one law or metric for a list, repeats dropped, no laws
#: (the general metrics only), and seeds and params only a generator reads.
LENIENT = {"laws_1", "laws_3", "laws_4", "metrics_1", "seed_0", "params_2", "params_3"}


def fields() -> Iterator[SuiteInput]:
    cls = "suite: bad fields"
    for key, values in FIELDS.items():
        for number, value in enumerate(values):
            name = f"field_{key}_{number}"
            if key in ("id", "prompt", "laws"):
                line = {"id": 4, "prompt": 5, "laws": 6}[key]
                text = HEAD.replace(
                    {"id": "id: a", "prompt": "prompt: A ball falls.", "laws": "laws: [gravity]"}[
                        key
                    ],
                    f"{key}: {value}",
                )
            else:
                line, text = 7, HEAD + f"    {key}: {value}\n"
            if key == "video" or name == "field_id_7":  # read at run time: items fail
                yield SuiteInput(cls, name, text, expect("error", "failed", names="video of case"))
            elif f"{key}_{number}" in LENIENT:  # read leniently; harmless without a generator
                yield SuiteInput(cls, name, text, expect("passed", "error", names=_at(name, line)))
            else:
                yield refused(cls, name, text, line)
    top = "suite: s\nvideos: v/{id}.mp4\n"
    case = "cases:\n  - {id: a, prompt: p, laws: [gravity]}\n"
    for number, (head, line) in enumerate(
        (
            ("suite: [a]\nvideos: v/{id}.mp4\n", 1),
            ("suite: s\nvideos: 'v/{id!s}.mp4'\n", 2),
            ("suite: s\nvideos: 'v/{id:>999999999}.mp4'\n", 2),
            ("suite: s\nvideos: 'v/{0}.mp4'\n", 2),
            ("suite: s\nvideos: [a]\n", 2),
            (top + "defaults: [1]\n", 3),
            (top + "defaults: {min_score: 9}\n", 3),
            (top + "defaults: {laws: [levitation]}\n", 3),
            (top + "defaults: {nope: 1}\n", 3),
            (top + "generator: 'os.system'\n", 3),
            (top + "generator: 'a:b:c'\n", 3),
            (top + "generator: '__import__(\"os\"):system'\n", 3),
            (top + "extra_top: 1\n", 3),
        )
    ):
        yield refused(cls, f"top_{number}", head + case, line)
    yield refused(cls, "cases_not_list", top + "cases: {a: 1}\n", 3)
    yield refused(cls, "case_not_mapping", top + "cases: [a, b]\n", 3)
    yield refused(cls, "cases_empty", top + "cases: []\n", 3, "no case")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _loop(path: Path) -> None:
    other = path.with_name(path.name + ".other")
    path.symlink_to(other)
    other.symlink_to(path)


def _prompts(**entry: object) -> bytes:
    base = {"video": "a", "prompt": "A ball falls.", "physical_laws": ["gravity"]}
    return json.dumps({"prompts": [{**base, **entry}]}).encode()


def paths() -> Iterator[SuiteInput]:
    """Videos and prompt sets that are missing, folders, devices, pipes or symlink loops."""
    cls = "suite: videos and prompt sets"
    videos = {
        "missing": None,
        "folder": lambda p: p.mkdir(parents=True),
        "fifo": _fifo,
        "symlink_loop": _loop,
        "empty": b"",
        "device": lambda p: p.symlink_to("/dev/zero"),
    }
    for kind, make in videos.items():
        name = f"video_{kind}"
        rel = f"clips/{name}.mp4"
        extra = () if make is None else ((rel, make),)
        text = f"suite: s\ncases:\n  - id: a\n    prompt: A ball falls.\n    laws: [gravity]\n    video: {rel}\n"  # noqa: E501
        shown = "/dev/zero" if kind == "device" else f"{name}.mp4"
        yield SuiteInput(cls, name, text, expect(*FAILS, names=(shown,)), extra)
    yield SuiteInput(
        cls, "video_dev_zero", HEAD + "    video: /dev/zero\n", expect(*FAILS, names="/dev/zero")
    )
    yield SuiteInput(
        cls,
        "videos_template_dotdot",
        "suite: s\nvideos: ../../../../{id}\ncases:\n  - {id: a, prompt: p, laws: [gravity]}\n",
        expect(*FAILS, names="a"),
    )
    prompt_sets = {
        "missing": (None, "prompts_missing.json"),
        "folder": (lambda p: p.mkdir(parents=True), "a folder"),
        "fifo": (_fifo, "a pipe"),
        "loop": (_loop, "loop"),
        "empty": (b"", "prompts_empty.json"),
        "not_json": (b"{nope", "prompts_not_json.json"),
        "list": (b"[1, 2]", "prompts_list.json"),
        "deep": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        "no_prompts_key": (b'{"x": 1}', "prompts_no_prompts_key.json"),
        "entry_not_object": (b'{"prompts": [1]}', "prompts_entry_not_object.json"),
        "unknown_law": (_prompts(physical_laws=["levitation"]), "levitation"),
        "laws_string": (_prompts(physical_laws="gravity"), "physical_laws"),
        "no_video": (_prompts(video=None), "video"),
        "video_path_escape": (_prompts(video="../../etc/passwd"), "video"),
        "prompt_number": (_prompts(prompt=42), "prompt"),
        "nan": (
            b'{"prompts": [{"video": "a", "prompt": "p", "physical_laws": ["gravity"], "x": NaN}]}',
            "prompts_nan.json",
        ),
        "huge_int": (
            b'{"prompts": [{"video": ' + b"9" * 5000 + b', "prompt": "p", "physical_laws": []}]}',
            "prompts_huge_int.json",
        ),
        "nul": (
            b'{"prompts": [{"video": "a\\u0000b", "prompt": "p", "physical_laws": ["gravity"]}]}',
            "video",
        ),
        "bad_utf8": (b'{"prompts": [{"video": "\xff", "prompt": "p"}]}', "prompts_bad_utf8.json"),
    }
    for kind, (make, shown) in prompt_sets.items():
        name = f"prompts_{kind}"
        rel = f"{name}.json"
        extra = () if make is None else ((rel, make),)
        text = f"suite: s\nvideos: v/{{id}}.mp4\nprompts: {rel}\n"
        kinds = ("error", "passed") if kind == "nan" else ("error",)  # NaN in an unread field
        yield SuiteInput(cls, name, text, expect(*kinds, names=(shown,)), extra)
    yield refused(
        cls, "prompts_dev_zero", "suite: s\nvideos: v/{id}.mp4\nprompts: /dev/zero\n", 3, "a device"
    )
    yield refused(
        cls, "prompts_etc", "suite: s\nvideos: v/{id}.mp4\nprompts: /etc\n", 3, "a folder"
    )


def all_suites() -> list[SuiteInput]:
    return [*yaml_bombs(), *control_bytes(), *marks(), *fields(), *paths()]
