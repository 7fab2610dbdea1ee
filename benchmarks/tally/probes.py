"""Hostile inputs tried through the Python API or ``phyjudge``'s ``main``: adapter folders,
baselines, compare reports, cache imports, command lines and clips."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from tally.model import Probe, expect


def cli(*argv: str | Callable[[Path], str]) -> Callable[[Path], str]:
    """``phyjudge ARGV`` in this process: its exit status and what it printed (a callable
    argument builds its input in the probe's folder and returns the argument)."""

    def run(folder: Path) -> str:
        from pytest_phyjudge.cli.main import main

        args = [a(folder) if callable(a) else a for a in argv]
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(out):
            try:
                code = main(args)
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code
        return f"exit {code}\n{out.getvalue()}"

    return run


def _file(name: str, data: bytes | str) -> Callable[[Path], str]:
    def make(folder: Path) -> str:
        path = folder / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    return make


# --------------------------------------------------------------------------- adapters


def _adapter(infer: str | None = None, template: Callable[[dict], object] | None = None):
    """``load_rubric`` on an adapter folder whose infer.py or template is hostile."""

    def run(folder: Path) -> str:
        import yaml

        from pytest_phyjudge.engine.rubric import bundled_template_data, load_rubric

        data = copy.deepcopy(bundled_template_data())
        text = yaml.safe_dump(template(data) if template else data)
        (folder / "subq+human.yaml").write_text(text, encoding="utf-8")
        if infer is not None:  # without one, the bundled sub-questions are used
            (folder / "infer.py").write_text(infer, encoding="utf-8")
        rubric = load_rubric(folder)
        bundled = sum(origin == "bundled" for origin in rubric.origins.values())
        return f"loaded ({bundled} of {len(rubric.origins)} pieces bundled)"

    return run


def _sa(placeholder: str) -> Callable[[dict], dict]:
    def change(data: dict) -> dict:
        data["eval_prompts"]["SA"] = data["eval_prompts"]["SA"].replace("{prompt}", placeholder)
        return data

    return change


INFER = {
    "doubling_strings": 'A0 = "xx"\n'
    + "".join(f"A{i} = A{i - 1} + A{i - 1}\n" for i in range(1, 41))
    + "GENERAL_SUB_QUESTIONS = {'SA': [A40]}\n",
    "doubling_lists": "L0 = ['x']\n"
    + "".join(f"L{i} = L{i - 1} + L{i - 1}\n" for i in range(1, 41))
    + "GENERAL_SUB_QUESTIONS = {'SA': L40}\n",
    "deep_names": "N0 = ['x']\n"
    + "".join(f"N{i} = [N{i - 1}]\n" for i in range(1, 3000))
    + "PHYSICAL_CRITERIA = {'gravity': N2999}\n",
    "plus_chain": "X = " + "+".join(['"a"'] * 10_000) + "\n",
    "unary_chain": "X = " + "-" * 100_000 + "1\n",
    "attribute_chain": "X = a" + ".b" * 100_000 + "\n",
    "deep_parens": "X = " + "(" * 5000 + "1" + ")" * 5000 + "\n",
    "deep_dict": "GENERAL_SUB_QUESTIONS = " + "{'a': " * 3000 + "1" + "}" * 3000 + "\n",
    "huge_file": "# pad\n" + ("#" + "x" * 1_000_000 + "\n") * 3,
    "syntax_error": "GENERAL_SUB_QUESTIONS = {\n",
    "nul_bytes": "X = 1\x00\n",
    "self_reference": "A = A + 'x'\nGENERAL_SUB_QUESTIONS = {'SA': [A]}\n",
    "mutual_reference": "A = B\nB = A\nPHYSICAL_CRITERIA = {'gravity': A}\n",
    "call_code": "GENERAL_SUB_QUESTIONS = {'SA': [__import__('os').system('touch pwned')]}\n",
    "lambda_code": "PHYSICAL_CRITERIA = (lambda: open('pwned', 'w'))()\n",
    "wrong_types": "GENERAL_SUB_QUESTIONS = 5\nPHYSICAL_SUB_QUESTIONS = 'x'\nPHYSICAL_CRITERIA = [1]\n",  # noqa: E501
    "huge_int": "X = " + "9" * 5000 + "\n",
    "fstring": "GENERAL_SUB_QUESTIONS = {'SA': [f'{__import__(\"os\").system(\"touch pwned\")}']}\n",  # noqa: E501
    "string_times": "GENERAL_SUB_QUESTIONS = {'SA': ['x' * 10**10]}\n",
}

TEMPLATES = {
    "spec_width": _sa("{prompt:>900000000}"),
    "nested_spec": _sa("{prompt:{questions_block}}"),
    "conversion": _sa("{prompt!r}"),
    "attribute": _sa("{prompt.__class__}"),
    "index": _sa("{prompt[0]}"),
    "unknown_field": _sa("{secret}"),
    "positional": _sa("{0}"),
    "unbalanced": _sa("{prompt"),
    "not_mapping": lambda d: [1, 2],
    "eval_prompts_list": lambda d: {**d, "eval_prompts": ["x"]},
    "template_number": lambda d: {**d, "physical_template": 42},
    "missing_sa": lambda d: {
        **d,
        "eval_prompts": {k: v for k, v in d["eval_prompts"].items() if k != "SA"},
    },
    "huge_template": lambda d: {**d, "system_prompt": "x" * 5_000_000},
}


def adapters() -> Iterator[Probe]:
    cls = "adapter: infer.py"
    for name, source in INFER.items():
        kinds = ("returned", "error")
        yield Probe(
            cls,
            f"infer_{name}",
            _adapter(infer=source),
            expect(*kinds, names="infer.py" if name != "syntax_error" else "", absent=("pwned",)),
        )
    cls = "adapter: template"
    for name, change in TEMPLATES.items():
        kinds = ("error", "returned") if name == "huge_template" else ("error",)  # size: bounded
        yield Probe(
            cls,
            f"template_{name}",
            _adapter(template=change),
            expect(*kinds, names="subq+human.yaml"),
        )


# --------------------------------------------------------------------------- baselines, compare


def _baseline(entry: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from pytest_phyjudge.regression.baseline import load_baseline

        path = folder / "baseline.json"
        path.write_text(
            '{"format": "pytest-phyjudge-baseline", "version": 1, "judge": null, '
            f'"suites": {{"basics": {{"ball": {{"gravity": {entry}}}}}}}}}',
            encoding="utf-8",
        )
        load_baseline(path)
        return "accepted"

    return run


def _baseline_raw(raw: bytes) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from pytest_phyjudge.regression.baseline import load_baseline

        path = folder / "baseline.json"
        path.write_bytes(raw)
        load_baseline(path)
        return "accepted"

    return run


BASELINE_ENTRIES = [
    '{"score": NaN}',
    '{"score": Infinity}',
    '{"score": -1e308}',
    '{"score": 0}',
    '{"score": 6}',
    '{"score": "4"}',
    '{"score": null}',
    '{"score": true}',
    '{"score": 4, "samples": "abc"}',
    '{"score": 4, "samples": [4, NaN]}',
    '{"score": 4, "expected": 1e999}',
    "[4]",
    "4",
]
BASELINE_RAW = {
    # A number too long fails the whole file's parse, before any entry can be named.
    "huge_int_entry": b'{"format": "pytest-phyjudge-baseline", "version": 1, "suites": '
    + b'{"basics": {"ball": {"gravity": {"score": '
    + b"9" * 5000
    + b"}}}}}",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "not_utf8": b"\xff\xfe",
    "not_json": b"{",
    "list": b"[]",
    "huge_int": b"[" + b"9" * 5000 + b"]",
    "no_format": b'{"suites": {}}',
    "suites_list": b'{"format": "pytest-phyjudge-baseline", "version": 1, "suites": []}',
    "version_string": b'{"format": "pytest-phyjudge-baseline", "version": "1", "suites": {}}',
}


def _report(gravity: str = "4", sa: str = "4", raw: str | None = None) -> str:
    rows = [
        f'{{"video": "{v}", "SA": 4, "physical": {{"laws": {{"gravity": {{"score": 4}}}}}}}}'
        for v in "ac"
    ]
    rows.insert(
        1,
        f'{{"video": "b", "SA": {sa}, "physical": {{"laws": {{"gravity": {{"score": {gravity}}}}}}}}}',  # noqa: E501
    )
    return raw if raw is not None else '{"results": [' + ", ".join(rows) + "]}"


COMPARE = {
    "nan": _report(gravity="NaN"),
    "inf": _report(sa="Infinity"),
    "huge": _report(gravity="1e308"),
    "neg_huge": _report(gravity="-1e308"),
    "string": _report(gravity='"4"'),
    "word": _report(sa='"high"'),
    "nine": _report(sa="9"),
    "null": _report(sa="null"),
    "bool": _report(sa="true"),
    "list": _report(sa="[4]"),
    "huge_int": _report(sa="9" * 5000),
    "deep": '{"results": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "not_json": "{",
    "results_dict": '{"results": {"a": 1}}',
    "row_string": '{"results": ["a"]}',
    "laws_list": '{"results": [{"video": "b", "physical": {"laws": [1]}}]}',
    "empty": "",
}


def data_files() -> Iterator[Probe]:
    cls = "baseline files"
    for number, entry in enumerate(BASELINE_ENTRIES):
        yield Probe(
            cls,
            f"baseline_entry_{number}",
            _baseline(entry),
            expect("error", names=("baseline.json", "basics::ball::gravity")),
        )
    for name, raw in BASELINE_RAW.items():
        yield Probe(
            cls, f"baseline_{name}", _baseline_raw(raw), expect("error", names="baseline.json")
        )
    cls = "compare reports"
    good = _file("a.json", _report())
    for name, text in COMPARE.items():
        # null is PhyGround's "not scored": that case leaves the axis's n, by design.
        want = ("exit 0", "n") if name == "null" else ("exit 2", "b.json")
        yield Probe(
            cls,
            f"compare_{name}",
            cli("compare", good, _file("b.json", text)),
            expect("returned", names=want),
        )


# --------------------------------------------------------------------------- cache import


def _record(**change: object) -> str:
    judgment = {"key": "gravity", "score": 4, "raw": '{"gravity": 4}', "seconds": 1.0, **change}
    return json.dumps({"key": "k" + json.dumps(change), "judgment": judgment})


IMPORTS = {
    "score_7": _record(score=7),
    "score_neg": _record(score=-3),
    "score_word": _record(score="high"),
    "score_null": _record(score=None),
    "score_true": _record(score=True),
    "score_float": _record(score=3.5),
    "probs_short": _record(probs=[0.5, 0.5]),
    "probs_nan": '{"key": "x", "judgment": {"key": "gravity", "score": 4, "probs": [NaN, 0, 0, 1, 0]}}',  # noqa: E501
    "axis_unknown": _record(key="levitation"),
    "raw_number": _record(raw=4),
    "seconds_nan": '{"key": "x", "judgment": {"key": "gravity", "score": 4, "seconds": NaN}}',
    "no_judgment": '{"key": "x"}',
    "judgment_list": '{"key": "x", "judgment": [1]}',
    "key_number": '{"key": 5, "judgment": {}}',
    "not_json": "{",
    "list_line": "[1, 2]",
    "deep": "[" * 100_000 + "]" * 100_000,
    "huge_int": '{"key": "x", "judgment": {"score": ' + "9" * 5000 + "}}",
    "nul_key": '{"key": "a\\u0000b", "judgment": {"key": "gravity", "score": 4}}',
    "not_utf8": "\udcff",
}


def cache_imports() -> Iterator[Probe]:
    cls = "cache import lines"
    for name, line in IMPORTS.items():
        data = line.encode("utf-8", "surrogateescape")
        argv = ("cache", "import", _file("in.jsonl", data + b"\n"), "--cache", "cache")
        yield Probe(cls, f"import_{name}", cli(*argv), expect("returned", names="in.jsonl:1"))


def all_api_probes() -> list[Probe]:
    from tally.cli_probes import clips, command_lines

    return [*adapters(), *data_files(), *cache_imports(), *command_lines(), *clips()]
