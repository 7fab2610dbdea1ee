"""Files the project reads, written by an outsider (round 5): clip folders and prompt sets for
``score-dir``, suites, baselines, identity files, cache imports, adapter snapshots and clips.

Threat model: each of these comes from whoever hands it over (a PR, a hub snapshot, an
export from another machine). At worst it holds a name that is no name (a terminal escape
or bytes that are not UTF-8 in a clip's file name), a key written twice (so that a reviewer
and the reader see different values), a field of another type than its writer's, a reason
or template that is not text, or a clip of a few KB that decodes to gigabytes. Clean: a
refusal naming the file, line or field, or a safe success; no traceback, no raw terminal
control printed, no file named from a hostile name, and memory under 2.5 GiB.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tally import kit
from tally.model import NotClean, Probe, expect
from tally.probes import cli

SCORE_DIR = "readers: score-dir clips and prompt sets"
SUITES = "readers: suites"
BASELINES = "readers: baselines"
IDENTITIES = "readers: identity files and imports"
ADAPTERS = "readers: adapter snapshots"
CLIPS = "readers: clips"
ENVIRONMENT = "readers: environment"
TARGETS = "readers: a report path that is a pipe or device"
ERROR = expect("error")
ANY = expect("returned", "error")
CAPTION = "A ball falls onto a table."
PROMPTS = {"prompts": [{"video": "a", "prompt": CAPTION, "physical_laws": ["gravity"]}]}


def _refused(text: str) -> str:
    """``cli``'s text, as an error when the command did not exit 0 (so that a refusal
    counts as one, and a silent success where one is due does not)."""
    if text.startswith("exit 0"):
        return text
    from pytest_phyjudge._exceptions import InputError

    raise InputError(text)


# --------------------------------------------------------------------------- score-dir


def _score_dir(
    clips: tuple[bytes, ...],
    prompts: str | None = None,
    special: Callable[[Path], None] | None = None,
) -> Callable[[Path], str]:
    """``phyjudge score-dir`` (scripted judge, in a child) over a folder of ``clips`` (file
    names as bytes) and a prompt set; not clean when a raw terminal control is printed, a
    traceback shows, or a file other than scores.json (or scores.<plain name>.json) is
    written."""

    def run(folder: Path) -> str:
        (folder / "judges.py").write_text(kit.JUDGES, encoding="utf-8")
        videos = folder / "v"
        videos.mkdir()
        for name in clips:
            (videos / os.fsdecode(name)).write_bytes(b"a stand-in clip")
        if special is not None:
            special(videos)
        (folder / "p.json").write_text(prompts or json.dumps(PROMPTS), encoding="utf-8")
        code, out = kit.phyjudge(
            folder,
            *("score-dir", "--videos", "v", "--prompts", "p.json", "--out", "out/scores.json"),
            *("--judge", "judges:make", "--cache-mode", "off"),
            limit=40,
        )
        if problem := kit.raw_controls(out.replace("\r", "")):
            raise NotClean(problem)
        written = sorted(p.name for p in (folder / "out").glob("*")) if code == 0 else []
        odd = [n for n in written if not _plain_results_name(n)]
        if odd:
            raise NotClean(f"wrote a file named from a hostile clip name: {odd[0]!r}")
        return _refused(f"exit {code}\n{out}")

    return run


def _plain_results_name(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"scores(\.[A-Za-z0-9_][A-Za-z0-9_.-]*)?\.json", name))


def _fifo(name: str) -> Callable[[Path], None]:
    return lambda videos: os.mkfifo(videos / name)


def _link(name: str, target: str) -> Callable[[Path], None]:
    return lambda videos: os.symlink(target, videos / name)


def _folder(name: str) -> Callable[[Path], None]:
    return lambda videos: (videos / name).mkdir()


def score_dir_probes() -> Iterator[Probe]:
    good = b"ok__a.mp4"
    clips: dict[str, tuple[bytes, ...]] = {
        "generator_ansi": (b"\x1b[2J\x1b[31mEVIL__a.mp4", good),
        "generator_not_utf8": (b"\xff\xfe__a.mp4", good),
        "generator_empty": (b"__a.mp4", good),
        "generator_dots": (b"..__a.mp4", good),
        "generator_bidi": ("\u202eevil__a.mp4".encode(), good),
        "generator_newline": (b"x\ny__a.mp4", good),
    }
    for name, names in clips.items():
        yield Probe(SCORE_DIR, f"sd_{name}", _score_dir(names), ANY, None, 60.0)
    special = {
        "clip_fifo": _fifo("a.mp4"),
        "clip_folder": _folder("a.mp4"),
        "clip_dev_zero": _link("a.mp4", "/dev/zero"),
        "clip_link_loop": _link("a.mp4", "a.mp4"),
    }
    for name, make in special.items():
        yield Probe(SCORE_DIR, f"sd_{name}", _score_dir((), special=make), ANY, None, 60.0)
    prompts = {
        "prompts_prompt_twice": (
            '{"prompts": [{"video": "a", "prompt": "shown", "prompt": "judged", '
            '"physical_laws": ["gravity"]}]}',
            ERROR,
        ),
        "prompts_list_twice": (
            '{"prompts": [{"video": "zz", "prompt": "x", "physical_laws": []}], '
            f'"prompts": {json.dumps(PROMPTS["prompts"])}}}',
            ERROR,
        ),
        "prompts_utf8_bom": ("\ufeff" + json.dumps(PROMPTS), ERROR),
        "prompts_jsonl": ("\n".join(json.dumps(p) for p in PROMPTS["prompts"] * 2), ERROR),
        "prompts_csv": ("video,prompt,physical_laws\na,A ball falls.,gravity\n", ERROR),
        "prompts_laws_string": (
            '{"prompts": [{"video": "a", "prompt": "x", "physical_laws": "gravity"}]}',
            ERROR,
        ),
        "prompt_controls": (
            json.dumps(
                {
                    "prompts": [
                        {"video": "a", "prompt": "A \x1b[31m\u202e ball", "physical_laws": []}
                    ]
                }
            ),
            ANY,
        ),
        "prompts_id_with_separator": (
            json.dumps(
                [
                    {"id_stem": "a", "prompt": "x", "physical_laws": []},
                    {"id_stem": "ok__a", "prompt": "y", "physical_laws": []},
                ]
            ),
            ANY,
        ),
    }
    for name, (text, want) in prompts.items():
        run = _score_dir((b"a.mp4", good), prompts=text)
        yield Probe(SCORE_DIR, f"sd_{name}", run, want, None, 60.0)


# --------------------------------------------------------------------------- suites

HEAD = "suite: s\nvideos: v/{id}.mp4\ncases:\n"
CASE = "  - id: a\n    prompt: x\n    laws: [gravity]\n"


def _suite(text: str, extra: dict[str, str] | None = None) -> Callable[[Path], str]:
    """``load_suite`` (what pytest collects with): the cases' ids, or the error."""

    def run(folder: Path) -> str:
        from pytest_phyjudge.suites import load_suite

        for name, data in (extra or {}).items():
            (folder / name).write_text(data, encoding="utf-8")
        path = folder / "t.phyjudge.yaml"
        path.write_text(text, encoding="utf-8")
        suite = load_suite(path)
        return "cases: " + ", ".join(c.id for c in suite.cases)

    return run


def _mark(mark: str) -> str:
    return HEAD + CASE + f"    marks: [{mark}]\n"


SUITE_INPUTS: dict[str, tuple[str, Any, dict[str, str] | None]] = {
    "merge_key_repeats_id": (HEAD + "  - &b {id: a, prompt: x, laws: [gravity]}\n  - <<: *b\n",
                             expect("error", names="'a'"), None),
    "merge_key_new_id": (HEAD + "  - &b {id: a, prompt: x, laws: [gravity]}\n  - <<: *b\n"
                         "    id: b\n", expect("returned"), None),
    "date_id": (HEAD + "  - id: 2020-01-01\n    prompt: x\n    laws: [gravity]\n",
                expect("error", names=":4"), None),
    "ids_nfc_nfd": (HEAD + '  - id: "\\u00e9"\n    prompt: x\n    laws: [gravity]\n'
                    '  - id: "e\\u0301"\n    prompt: x\n    laws: [gravity]\n', ERROR, None),
    "complex_mapping_key": (HEAD + CASE + "    params: {? [a, b] : 1}\n",
                            expect("error", names=":7"), None),
    "omap_tag_params": (HEAD + CASE + "    params: !!omap [a: 1, a: 2]\n",
                        expect("error", names=":7"), None),
    "videos_format_spec_width": ("suite: s\nvideos: 'v/{id:>999999999}.mp4'\ncases:\n" + CASE,
                                 expect("error", names=":2"), None),
    "videos_attribute": ("suite: s\nvideos: 'v/{id.__class__}.mp4'\ncases:\n" + CASE,
                         expect("error", names=":2"), None),
    "videos_index": ("suite: s\nvideos: 'v/{0}.mp4'\ncases:\n" + CASE,
                     expect("error", names=":2"), None),
    "mark_skip_reason_list": (_mark("{skip: {reason: [1]}}"), expect("error", names=":7"), None),
    "mark_skip_number": (_mark("{skip: 5}"), expect("error", names=":7"), None),
    "mark_skip_two_arguments": (_mark("{skip: [a, b]}"), expect("error", names=":7"), None),
    "mark_skip_true": (_mark("{skip: true}"), expect("error", names=":7"), None),
    "mark_xfail_reason_number": (_mark("{xfail: {reason: 3}}"), expect("error", names=":7"),
                                 None),
    "mark_skipif_reason_mapping": (_mark("{skipif: {condition: true, reason: {a: 1}}}"),
                                   expect("error", names=":7"), None),
    "criteria_and_prompt_with_braces": (
        HEAD + "  - id: a\n    prompt: 'A {0} {prompt} }{ {caption:>999999999}'\n"
        "    laws: [gravity]\n    criteria: {gravity: '{0.__class__} {prompt:>99999999}'}\n",
        expect("returned"), None,
    ),
    "prompts_key_twice": (
        "suite: s\nvideos: v/{id}.mp4\nprompts: p.json\n", expect("error", names="p.json"),
        {"p.json": '{"prompts": [{"video": "a", "prompt": "one", "prompt": "two", '
                   '"physical_laws": ["gravity"]}]}'},
    ),
    "prompts_and_cases_same_id": (
        "suite: s\nvideos: v/{id}.mp4\nprompts: p.json\ncases:\n" + CASE,
        expect("error", names="'a'"),
        {"p.json": json.dumps(PROMPTS)},
    ),
}  # fmt: skip


def suite_probes() -> Iterator[Probe]:
    for name, (text, want, extra) in SUITE_INPUTS.items():
        yield Probe(SUITES, f"suite_{name}", _suite(text, extra), want, None, 30.0)


# --------------------------------------------------------------------------- baselines

BASELINE = (
    '{"format": "pytest-phyjudge-baseline", "version": %s, "judge": null, '
    '"suites": {"s": {"a": {"SA": %s}}}}'
)


def _baseline(text: str | Callable[[Path], str]) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from pytest_phyjudge.regression.baseline import load_baseline

        path = folder / "baseline.json"
        path.write_text(text(folder) if callable(text) else text, encoding="utf-8")
        baseline = load_baseline(path)
        return f"read {baseline!r}"[:200]

    return run


def _export_text(folder: Path) -> str:
    return _export(folder).read_text(encoding="utf-8")


def _identity_text(folder: Path) -> str:
    return _export(folder).with_suffix(".identity.json").read_text(encoding="utf-8")


BASELINES_INPUTS: dict[str, str | Callable[[Path], str]] = {
    "axis_twice": BASELINE % ("1", '{"score": 5}, "SA": {"score": 1}'),
    "format_twice": BASELINE.replace('"format"', '"format": "x", "format"', 1) % ("1", "{}"),
    "version_true": BASELINE % ("true", '{"score": 4}'),
    "version_float": BASELINE % ("1.0", '{"score": 4}'),
    "is_a_cache_export": _export_text,
    "is_an_identity_file": _identity_text,
    "utf8_bom": "\ufeff" + BASELINE % ("1", '{"score": 4}'),
}


def baseline_probes() -> Iterator[Probe]:
    for name, text in BASELINES_INPUTS.items():
        want = expect("error", names="baseline.json")
        yield Probe(BASELINES, f"baseline_{name}", _baseline(text), want, None, 30.0)


# --------------------------------------------------------------------------- identities


def _export(folder: Path) -> Path:
    """A real export of two judgments (a scripted judge recorded as the tiny judge), with
    its identity file beside it."""
    from pytest_phyjudge import ScriptedJudge
    from pytest_phyjudge.engine.judgment import JudgeIdentity
    from pytest_phyjudge.judges.cache.judge import CachedJudge
    from pytest_phyjudge.judges.cache.store import JudgmentCache
    from pytest_phyjudge.testing import write_test_video

    out = folder / "export" / "judgments.jsonl"
    if out.exists():
        return out
    video = folder / "clip.mp4"
    write_test_video(video, seed=1, frames=6)
    scripted = ScriptedJudge({"*": 4})
    judge = CachedJudge(
        identity=JudgeIdentity(kind="tiny", adapter="tiny-judge", base="b", adapter_sha256="w"),
        rubric=scripted.rubric,
        settings={"fps": 2.0, "max_pixels": 230400, "max_new_tokens": 64, "scoring": "greedy"},
        cache=JudgmentCache(folder / "cache"),
        mode="use",
        load=lambda: scripted,
    )
    judge.score_many(video, CAPTION, ["SA", "gravity"])
    judge.close()
    out.parent.mkdir()
    text = cli("cache", "export", str(out), "--cache", str(folder / "cache"))(folder)
    if not text.startswith("exit 0"):
        raise RuntimeError(text)
    return out


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data[key]
    data[last] = value


def _identity(field: str, value: Any) -> Callable[[Path], str]:
    """An identity file with ``field`` set to ``value``, read and every axis' prompt rendered
    from it (what a replay does first)."""

    def run(folder: Path) -> str:
        from pytest_phyjudge.engine.axes import ALL_AXES
        from pytest_phyjudge.judges.cache.record import read_identity_file

        path = _export(folder).with_suffix(".identity.json")
        data = json.loads(path.read_text(encoding="utf-8"))
        _put(data, field, value)
        path.write_text(json.dumps(data), encoding="utf-8")
        record = read_identity_file(path)
        for axis in ALL_AXES:
            record.rubric.render(axis, CAPTION)
        return f"read {record.describe()}"

    return run


def _identity_key_twice(folder: Path) -> str:
    from pytest_phyjudge.judges.cache.record import read_identity_file

    path = _export(folder).with_suffix(".identity.json")
    text = path.read_text(encoding="utf-8").replace('"format"', '"format": "x", "format"', 1)
    path.write_text(text, encoding="utf-8")
    return f"read {read_identity_file(path).describe()}"


IDENTITY_FIELDS: list[tuple[str, Any]] = [
    ("rubric.general_templates.SA", 5),
    ("rubric.general_templates", {}),
    ("rubric.physical_template", None),
    ("rubric.physical_sub_questions", "gravity"),
    ("rubric.physical_criteria.gravity", ["a", "list"]),
    ("rubric.physical_sub_questions_enabled", "false"),
    ("rubric.general_sub_questions.PTV", [1, 2]),
    ("judge.kind", 7),
]


def _import(change: Callable[[list[str]], list[str]], keep_identity: bool = True):
    """``phyjudge cache import`` of an export whose lines ``change`` rewrote, into a new
    cache; not clean when a refused import left anything behind."""

    def run(folder: Path) -> str:
        export = _export(folder)
        if not keep_identity:
            export.with_suffix(".identity.json").unlink()
        lines = export.read_text(encoding="utf-8").splitlines()
        export.write_text("\n".join(change(lines)) + "\n", encoding="utf-8")
        target = str(folder / "new-cache")
        text = cli("cache", "import", str(export), "--cache", target)(folder)
        if not text.startswith("exit 0"):
            info = cli("cache", "info", "--cache", target)(folder)
            if " 0 judgments" not in info:
                raise NotClean(f"a refused import left judgments behind: {info[:120]}")
        return _refused(text)

    return run


def _score_first(lines: list[str]) -> list[str]:
    return [lines[0], lines[1].replace('"judgment": {', '"judgment": {"score": 1, ', 1)]


def _key_first(lines: list[str]) -> list[str]:
    return [lines[0], lines[1].replace("{", '{"key": "0000", ', 1), *lines[2:]]


def _record_rubric_list(lines: list[str]) -> list[str]:
    record = json.loads(lines[0])
    record["judge_record"]["rubric"]["physical_template"] = ["not", "text"]
    return [json.dumps(record), *lines[1:]]


def _record_kind_number(lines: list[str]) -> list[str]:
    record = json.loads(lines[0])
    record["judge_record"]["judge"]["kind"] = 7
    return [json.dumps(record), *lines[1:]]


def _provenance(field: str, value: Any) -> Callable[[Path], str]:
    """A ``--remote-identity`` provenance file with ``field`` of another type, read, and the
    judge it names described and keyed (what a run does first)."""

    def run(folder: Path) -> str:
        from pytest_phyjudge.judges.cache.record import judge_material
        from pytest_phyjudge.judges.remote.provenance import read_provenance

        path = folder / "phyjudge_provenance.json"
        path.write_text(json.dumps({"adapter": "acme/judge", field: value}), encoding="utf-8")
        identity, _ = read_provenance(path)
        return f"{identity.describe(portable=True)} {json.dumps(judge_material(identity))}"

    return run


def identity_probes() -> Iterator[Probe]:
    for field in ("base", "revision"):
        want = expect("error", names=field)
        run = _provenance(field, ["a", "list"])
        yield Probe(IDENTITIES, f"provenance_{field}_list", run, want, None, 30.0)
    for field, value in IDENTITY_FIELDS:
        want = expect("error", names=field.rsplit(".", 1)[-1])
        yield Probe(IDENTITIES, f"identity_{field}", _identity(field, value), want, None, 30.0)
    yield Probe(IDENTITIES, "identity_key_twice", _identity_key_twice, ERROR, None, 30.0)
    imports: dict[str, tuple[Callable[[Path], str], Any]] = {
        "import_score_key_twice": (_import(_score_first), expect("error", names=":2")),
        "import_key_twice": (_import(_key_first), expect("error", names=":2")),
        "import_record_rubric_not_text": (
            _import(_record_rubric_list, keep_identity=False),
            expect("error", names=":1"),
        ),
        "import_record_kind_number": (
            _import(_record_kind_number, keep_identity=False),
            expect("error", names=":1"),
        ),
        "import_utf8_bom": (
            _import(lambda lines: ["\ufeff" + lines[0], *lines[1:]]),
            expect("error", names=":1"),
        ),
        "import_crlf_lines": (_import(lambda lines: [line + "\r" for line in lines]), ANY),
        "import_judge_record_last": (
            _import(lambda lines: [*lines[1:], lines[0]], keep_identity=False),
            expect("error", names=":1"),
        ),
    }
    for name, (run, want) in imports.items():
        yield Probe(IDENTITIES, name, run, want, None, 30.0)


# --------------------------------------------------------------------------- adapters


def _adapter(make: Callable[[Path], None]) -> Callable[[Path], str]:
    """``plan_judge`` (the adapter resolved and its rubric read, no model loaded) on a
    snapshot folder that ``make`` made hostile; not clean when code ran."""

    def run(folder: Path) -> str:
        from pytest_phyjudge.judges.local.loading import plan_judge

        adapter = folder / "adapter"
        adapter.mkdir()
        config = {"base_model_name_or_path": "Qwen/Qwen3.5-9B", "peft_type": "LORA"}
        (adapter / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
        (adapter / "adapter_model.safetensors").write_bytes(b"stand-in weights")
        make(adapter)
        plan = plan_judge(adapter)
        return f"planned {plan.identity.describe()}"

    return run


def _write(name: str, data: bytes | str) -> Callable[[Path], None]:
    def make(adapter: Path) -> None:
        (adapter / name).write_bytes(data.encode() if isinstance(data, str) else data)

    return make


def _replace_link(name: str, target: str) -> Callable[[Path], None]:
    def make(adapter: Path) -> None:
        (adapter / name).unlink(missing_ok=True)
        os.symlink(target, adapter / name)

    return make


def _replace_fifo(name: str) -> Callable[[Path], None]:
    def make(adapter: Path) -> None:
        (adapter / name).unlink(missing_ok=True)
        os.mkfifo(adapter / name)

    return make


_TEMPLATE_CODE = "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}"
ADAPTER_INPUTS: dict[str, tuple[Callable[[Path], None], Any]] = {
    "readme_not_utf8": (_write("README.md", b"caf\xe9 \xff\xfe"), expect("returned")),
    "readme_fifo": (_replace_fifo("README.md"), expect("returned")),
    "readme_dev_zero": (_replace_link("README.md", "/dev/zero"), expect("returned")),
    "template_not_utf8": (_write("subq+human.yaml", b"scheme: caf\xe9\n"),
                          expect("error", names="subq+human.yaml")),
    "template_fifo": (_replace_fifo("subq+human.yaml"), ANY),
    "template_dev_zero": (_replace_link("subq+human.yaml", "/dev/zero"), ANY),
    "config_key_twice": (
        _write("adapter_config.json", '{"base_model_name_or_path": "evil/base", '
               '"base_model_name_or_path": "Qwen/Qwen3.5-9B"}'),
        expect("error", names="adapter_config.json"),
    ),
    "config_auto_map_remote_code": (
        _write("adapter_config.json", json.dumps({
            "base_model_name_or_path": "Qwen/Qwen3.5-9B", "trust_remote_code": True,
            "auto_map": {"AutoModel": "evil.Model"},
            "auto_mapping": {"base_model_class": "X", "parent_library": "os"}})),
        expect("returned", absent=("adapter/PWNED",)),
    ),
    "chat_template_code": (
        _write("chat_template.jinja", _TEMPLATE_CODE),
        expect("returned", absent=("adapter/PWNED",)),
    ),
    "weights_dev_zero": (_replace_link("adapter_model.safetensors", "/dev/zero"),
                         expect("error", names="adapter_model.safetensors")),
    "weights_pickle_only": (
        lambda a: (a / "adapter_model.safetensors").rename(a / "adapter_model.bin"),
        expect("error", names="adapter_model.safetensors"),
    ),
}  # fmt: skip


def adapter_probes() -> Iterator[Probe]:
    for name, (make, want) in ADAPTER_INPUTS.items():
        yield Probe(ADAPTERS, f"adapter_{name}", _adapter(make), want, None, 30.0)


# --------------------------------------------------------------------------- clips


def _huge_frames(folder: Path) -> str:
    """Three black 8192x8192 frames (about 200 KB), judged with ``phyjudge score`` in a
    child whose peak memory is measured: the reference sampler decoded them whole."""
    import av
    import numpy as np

    clip = folder / "huge.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=2)
        stream.width = stream.height = 8192
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "51"}
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        frame = frame.reformat(width=8192, height=8192, format="yuv420p")
        for index in range(3):
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    (folder / "judges.py").write_text(kit.JUDGES, encoding="utf-8")
    code, out = kit.phyjudge(
        folder,
        *("score", "--video", str(clip), "--caption", CAPTION, "--law", "gravity"),
        *("--judge", "judges:make"),
        limit=150,
    )
    return _refused(f"exit {code}\n{out}")


def _renamed_gif(folder: Path) -> str:
    from PIL import Image

    clip = folder / "anim.mp4"
    frames = [Image.new("RGB", (64, 64), (i * 40, 0, 0)) for i in range(4)]
    frames[0].save(clip, format="GIF", save_all=True, append_images=frames[1:])
    (folder / "judges.py").write_text(kit.JUDGES, encoding="utf-8")
    code, out = kit.phyjudge(
        folder,
        *("score", "--video", str(clip), "--caption", CAPTION, "--law", "gravity"),
        *("--judge", "judges:make"),
        limit=60,
    )
    return _refused(f"exit {code}\n{out}")


def clip_probes() -> Iterator[Probe]:
    yield Probe(CLIPS, "clip_8192x8192_frames", _huge_frames, ANY, None, 180.0)
    yield Probe(CLIPS, "clip_gif_renamed_mp4", _renamed_gif, ANY, None, 90.0)


# --------------------------------------------------------------------------- environment


def _api_key(shape: str) -> Callable[[Path], str]:
    """A pytest run against a judge server with ``$PHYJUDGE_API_KEY`` a secret token that
    no header can carry as it is (``shape`` places the token); not clean when the token is
    printed or written into the report."""

    def run(folder: Path) -> str:
        token = kit.secret(folder, "unused.txt")
        kit.suite(folder, cases=("a",))
        with kit.FakeServer() as server:
            code, out = kit.run_pytest(
                folder,
                *("--phyjudge-url", server.url, "--phyjudge-retries", "0"),
                *("--phyjudge-report", "r/scores.json"),
                env={"PHYJUDGE_API_KEY": shape.format(token)},
                limit=60,
            )
        if problem := kit.leak(token, out, folder / "r"):
            raise NotClean(problem)
        return _refused(f"exit {code}\n{out}")

    return run


def _seq_len(value: str) -> Callable[[Path], str]:
    """``phyjudge score`` with qwen-vl-utils' ``$MODEL_SEQ_LEN`` set to ``value``."""

    def run(folder: Path) -> str:
        import sys

        kit.clips(folder, "a")
        (folder / "judges.py").write_text(kit.JUDGES, encoding="utf-8")
        code = "import sys; from pytest_phyjudge.cli.main import main; sys.exit(main(sys.argv[1:]))"
        args = ("score", "--video", "v/a.mp4", "--caption", CAPTION, "--law", "gravity")
        status, out = kit.run_child(
            [sys.executable, "-c", code, *args, "--judge", "judges:make"],
            folder,
            env={"MODEL_SEQ_LEN": value},
            limit=60,
        )
        return _refused(f"exit {status}\n{out}")

    return run


def environment_probes() -> Iterator[Probe]:
    for name, shape in {"newline": "{}\n", "space": " {}", "not_ascii": "{}\u00e9"}.items():
        want = expect("error", "failed", names="PHYJUDGE_API_KEY")
        yield Probe(ENVIRONMENT, f"api_key_{name}", _api_key(shape), want, None, 90.0)
    for value in ("abc", "nan", "1e999"):
        want = expect("error", names="MODEL_SEQ_LEN")
        yield Probe(ENVIRONMENT, f"model_seq_len_{value}", _seq_len(value), want, None, 90.0)


# --------------------------------------------------------------------------- report targets


def _node(kind: str) -> Callable[[Path], None]:
    """Make a pipe, or (as root) a character device like /dev/full, at a path."""

    def make(path: Path) -> None:
        import stat

        if kind == "device" and os.geteuid() == 0:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        else:
            os.mkfifo(path)

    return make


def _kept(path: Path) -> str | None:
    import stat

    mode = os.lstat(path).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        return f"{path.name}, a pipe or device, was replaced by a file"
    return None


def _pytest_report_onto(kind: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        kit.suite(folder, cases=("a",))
        _node(kind)(folder / "scores.json")
        args = ("--phyjudge-judge", "judges:make", "--phyjudge-report", "scores.json")
        code, out = kit.run_pytest(folder, *args, limit=60)
        if problem := _kept(folder / "scores.json"):
            raise NotClean(problem)
        return _refused(f"exit {code}\n{out}")

    return run


def _score_dir_onto(kind: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        out = folder / "out"
        out.mkdir()
        _node(kind)(out / "scores.json")
        text = _score_dir((b"a.mp4",))(folder)
        if problem := _kept(out / "scores.json"):
            raise NotClean(problem)
        return text

    return run


def target_probes() -> Iterator[Probe]:
    for kind in ("pipe", "device"):
        want = expect("error", names="scores.json")
        yield Probe(TARGETS, f"pytest_report_onto_{kind}", _pytest_report_onto(kind), want)
        yield Probe(TARGETS, f"score_dir_out_onto_{kind}", _score_dir_onto(kind), want)


def reader_probes() -> list[Probe]:
    return [
        *score_dir_probes(),
        *suite_probes(),
        *baseline_probes(),
        *identity_probes(),
        *adapter_probes(),
        *clip_probes(),
        *environment_probes(),
        *target_probes(),
    ]
