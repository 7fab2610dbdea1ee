"""Diffusers pipelines as generators: a suite's `pipeline:` and `image:`, the model folder it
names, and the clips folder (round 5).

Suites are read with ``load_suite`` (what collection does); snapshots are checked with
``check_snapshot`` (what runs before a pipeline is loaded), so a snapshot that passes is a
snapshot that would be loaded; clips are made by ``ClipMaker`` with a stand-in pipeline (a
callable returning numpy frames, inside the real ``LoadedPipeline``, so the real first-frame
path runs). A few inputs run a whole pytest session. Clean is judged on the outcome too: a
user's file intact, no secret printed, a changed or planted clip not taken for the
pipeline's, no raw terminal control in a message.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tally import kit
from tally.model import NotClean, Probe, expect

SUITES = "pipelines: suite fields"
IMAGES = "pipelines: images"
SNAPSHOTS = "pipelines: snapshots"
CLIPS = "pipelines: clips folder"
ERROR = expect("error")
ANY = expect("returned", "error")
QUICK = 20.0
CASE = "cases:\n  - {id: a, prompt: p, laws: [gravity]}\n"


# --------------------------------------------------------------------------- suites


def _suite(text: str, prepare: Callable[[Path], Any] | None = None) -> Callable[[Path], str]:
    """``load_suite`` of ``text`` (written as s.phyjudge.yaml after ``prepare``)."""

    def run(folder: Path) -> str:
        from pytest_phyjudge.suites import load_suite

        folder.mkdir(parents=True, exist_ok=True)
        if prepare is not None:
            prepare(folder)
        path = folder / "s.phyjudge.yaml"
        path.write_text(text, encoding="utf-8")
        (case,) = load_suite(path).cases
        return f"loaded: pipeline {case.pipeline}, image {case.image}"

    return run


def _no_controls(folder: Path, text: str) -> str | None:
    return kit.raw_controls(text)


def _pipeline(fields: str) -> str:
    return f"pipeline: {{{fields}}}\n{CASE}"


SUITE_INPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "id_unknown_user": (_pipeline('id: "~nosuchuser_phyjudge/model"'), ("pipeline.id",)),
    "id_nul": (_pipeline('id: "./a\\0b"'), ("pipeline.id",)),
    "id_too_long": (_pipeline('id: "./' + "a" * 5000 + '"'), ("pipeline.id",)),
    "id_escape": (_pipeline('id: "org/\\e[31mred"'), ("pipeline.id",)),
    "params_num_frames_huge": (
        _pipeline("id: o/m, params: {num_frames: 100000000}"),
        ("num_frames",),
    ),
    "params_num_frames_bigint": (
        _pipeline("id: o/m, params: {num_frames: 1000000000000000000000000000000}"),
        ("num_frames",),
    ),
    "params_height_huge": (_pipeline("id: o/m, params: {height: 100000}"), ("height",)),
    "params_steps_huge": (
        _pipeline("id: o/m, params: {num_inference_steps: 1000000000}"),
        ("num_inference_steps",),
    ),
    "params_clip_too_many_pixels": (
        _pipeline("id: o/m, params: {num_frames: 1024, height: 4096, width: 4096}"),
        ("num_frames",),
    ),
    "params_video_path": (_pipeline("id: o/m, params: {video: /etc/passwd}"), ("video",)),
    "params_last_image_path": (
        _pipeline("id: o/m, params: {last_image: /etc/passwd}"),
        ("last_image",),
    ),
    "params_ip_adapter_image": (
        _pipeline("id: o/m, params: {ip_adapter_image: x.png}"),
        ("ip_adapter_image",),
    ),
    "params_pooled_embeds": (
        _pipeline("id: o/m, params: {pooled_prompt_embeds: 1}"),
        ("pooled_prompt_embeds",),
    ),
    "params_joint_attention_kwargs": (
        _pipeline("id: o/m, params: {joint_attention_kwargs: 1}"),
        ("joint_attention_kwargs",),
    ),
    "params_fullwidth_prompt_key": (
        _pipeline("id: o/m, params: {\uff50rompt: injected}"),
        ("pipeline.params",),
    ),
    "params_negative_prompt_escape": (
        _pipeline('id: o/m, params: {negative_prompt: "blurry\\e[2J\\0"}'),
        ("negative_prompt",),
    ),
    "params_list_with_escape": (
        _pipeline('id: o/m, params: {sigmas: [1.0, "\\e]0;title\\a"]}'),
        ("sigmas",),
    ),
    # Clean before this round too: kept so the tally counts them.
    "params_generator": (_pipeline("id: o/m, params: {generator: 3}"), ("generator",)),
    "params_callback": (_pipeline("id: o/m, params: {callback_on_step_end: x}"), ("callback",)),
    "params_output_type": (_pipeline("id: o/m, params: {output_type: pil}"), ("output_type",)),
    "params_nan": (_pipeline("id: o/m, params: {guidance_scale: .nan}"), ("guidance_scale",)),
    "params_nested": (_pipeline("id: o/m, params: {extra: {a: 1}}"), ("extra",)),
    "id_list": (_pipeline("id: [a]"), ("pipeline.id",)),
    "id_hub_dotdot": (_pipeline("id: org/..x"), ("pipeline.id",)),
    "custom_pipeline_key": (_pipeline("id: o/m, custom_pipeline: evil"), ("custom_pipeline",)),
    "fps_inf": (_pipeline("id: o/m, fps: .inf"), ("pipeline.fps",)),
    "fps_tiny": (_pipeline("id: o/m, fps: 1.0e-300"), ("pipeline.fps",)),
}


def _image_suite(image: str) -> str:
    return f"pipeline: {{id: o/m}}\ncases:\n  - {{id: a, prompt: p, image: {image}}}\n"


def _image_world(folder: Path) -> None:
    kit.secret(folder.parent / f"{folder.name}-outside", "secret.png")
    (folder / "linked.png").symlink_to(folder.parent / f"{folder.name}-outside" / "secret.png")
    os.mkfifo(folder / "fifo.png")


IMAGE_INPUTS: dict[str, str] = {
    "image_outside_dotdot": "../image_outside_dotdot-outside/secret.png",
    "image_absolute_secret": "/etc/passwd",
    "image_symlink_out": "linked.png",
    "image_fifo": "fifo.png",
    "image_device": "/dev/zero",
    "image_unknown_user": '"~nosuchuser_phyjudge/x.png"',
    "image_nul": '"x\\0.png"',
}


def suite_probes() -> list[Probe]:
    probes = [
        Probe(SUITES, name, _suite(text), expect("error", names=names), _no_controls, QUICK)
        for name, (text, names) in SUITE_INPUTS.items()
    ]
    probes += [
        Probe(
            IMAGES,
            name,
            _suite(_image_suite(image), _image_world),
            expect("error", names="image"),
            _no_controls,
            QUICK,
        )
        for name, image in IMAGE_INPUTS.items()
    ]
    probes.append(
        Probe(
            SUITES,
            "params_real_sizes_load",
            _suite(_pipeline("id: o/m, params: {num_frames: 121, height: 720, width: 1280}")),
            expect("returned"),
        )
    )
    return probes


# --------------------------------------------------------------------------- snapshots


def _model(folder: Path) -> Path:
    """A pipeline folder that passes every check, for a probe to spoil."""
    model = folder / "model"
    (model / "transformer").mkdir(parents=True, exist_ok=True)
    index = {"_class_name": "WanPipeline", "transformer": ["diffusers", "WanTransformer3DModel"]}
    (model / "model_index.json").write_text(json.dumps(index))
    (model / "transformer" / "config.json").write_text("{}")
    (model / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"w")
    return model


def _snapshot(change: Callable[[Path], Any]) -> tuple[Callable[[Path], str], Any]:
    state: dict[str, str] = {}

    def run(folder: Path) -> str:
        from pytest_phyjudge.generation.snapshot import check_snapshot

        state["token"] = kit.secret(folder, "secret.json")
        model = _model(folder)
        change(model)
        return f"would load {check_snapshot(model, 'folder model')}"

    def check(folder: Path, text: str) -> str | None:
        return kit.leak(state["token"], text) or kit.raw_controls(text)

    return run, check


def _replace(rel: str, make: Callable[[Path], Any]) -> Callable[[Path], Any]:
    def change(model: Path) -> None:
        (model / rel).unlink()
        make(model / rel)

    return change


def _folder_link_out(model: Path) -> None:
    code = model.parent / "elsewhere"
    code.mkdir()
    (code / "config.json").write_text('{"auto_map": {"AutoModel": "modeling.Evil"}}')
    (code / "modeling.py").write_text("import os")
    (model / "text_encoder").symlink_to(code, target_is_directory=True)


def _index(data: Any) -> Callable[[Path], Any]:
    return lambda model: (model / "model_index.json").write_text(json.dumps(data))


SNAPSHOT_INPUTS: dict[str, Callable[[Path], Any]] = {
    "upper_case_py": lambda m: (m / "PIPELINE.PY").write_text("import os"),
    "mixed_case_bin": lambda m: (m / "transformer" / "w.Bin").write_bytes(b"x"),
    "fifo_config": _replace("transformer/config.json", os.mkfifo),
    "weights_link_to_device": _replace(
        "transformer/diffusion_pytorch_model.safetensors", lambda p: p.symlink_to("/dev/zero")
    ),
    "tokenizer_link_to_secret": lambda m: (m / "tokenizer.json").symlink_to(
        m.parent / "secret.json"
    ),
    "folder_link_to_code": _folder_link_out,
    "dangling_link": lambda m: (m / "gone.json").symlink_to(m / "nothing.json"),
    "three_part_component": _index({"_class_name": "WanPipeline", "vae": ["evil", "Vae", "x"]}),
    "huge_model_index": _index({"_class_name": "WanPipeline", "pad": "x" * 8_000_000}),
    "fifo_model_index": _replace("model_index.json", os.mkfifo),
    "escape_in_file_name": lambda m: (m / "\x1b[2Jevil.py").write_text(""),
    # Clean before this round too.
    "py_file": lambda m: (m / "pipeline.py").write_text("import os"),
    "bin_weights": lambda m: (m / "transformer" / "diffusion_pytorch_model.bin").write_bytes(b"x"),
    "custom_class": _index({"_class_name": ["pipeline", "EvilPipeline"]}),
    "other_library": _index({"_class_name": "WanPipeline", "vae": ["evil_module", "Vae"]}),
    "auto_map": lambda m: (m / "transformer" / "config.json").write_text('{"auto_map": {}}'),
    "trust_remote_code_tokenizer": lambda m: (m / "tokenizer_config.json").write_text(
        '{"trust_remote_code": true}'
    ),
    "deep_model_index": lambda m: (m / "model_index.json").write_text("[" * 5000 + "]" * 5000),
    "model_index_not_json": lambda m: (m / "model_index.json").write_text("not json{"),
}


def _hub_cache(folder: Path) -> str:
    """A snapshot in the Hugging Face cache layout: its files link into ``blobs/``."""
    from pytest_phyjudge.generation.snapshot import check_snapshot

    repo = folder / "models--org--name"
    (repo / "blobs").mkdir(parents=True)
    model = _model(repo / "snapshots")
    model = model.rename(model.parent / ("a" * 40))
    for path in (model / "model_index.json", model / "transformer" / "config.json"):
        blob = repo / "blobs" / f"{path.parent.name}-{path.name}"
        blob.write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(os.path.relpath(blob, path.parent))
    return f"would load {check_snapshot(model, 'hub')}"


def snapshot_probes() -> list[Probe]:
    probes = []
    for name, change in SNAPSHOT_INPUTS.items():
        run, check = _snapshot(change)
        probes.append(Probe(SNAPSHOTS, f"snapshot_{name}", run, ERROR, check, QUICK))
    # What must still load: a plain folder, and a hub cache snapshot linking to its blobs.
    run, check = _snapshot(lambda model: None)
    probes.append(Probe(SNAPSHOTS, "snapshot_plain_loads", run, expect("returned"), check))
    probes.append(Probe(SNAPSHOTS, "snapshot_hub_cache_loads", _hub_cache, expect("returned")))
    return probes


def _no_pipeline_folder(target: str) -> Callable[[Path], str]:
    """``pipeline: {id: TARGET}`` in a pytest session: a folder that is no pipeline."""

    def run(folder: Path) -> str:
        kit.suite(folder)
        (folder / "s.phyjudge.yaml").write_text(
            f"pipeline: {{id: {json.dumps(target)}, device: cpu}}\n"
            "cases:\n  - {id: a, prompt: p, laws: [gravity]}\n"
        )
        code, out = kit.run_pytest(folder, "--phyjudge-judge", "judges:make", limit=40.0)
        return f"exit {code}\n{out}"

    return run


# --------------------------------------------------------------------------- clips


class _Pipe:
    """Stands in for a diffusers pipeline's call: numpy frames, one colour per seed."""

    def __call__(self, prompt: Any, generator: Any, output_type: str, **kwargs: Any) -> Any:
        import numpy as np

        count = len(prompt) if isinstance(prompt, list) else 1
        return SimpleNamespace(frames=[np.full((2, 16, 16, 3), 0.5, "float32")] * count)


def _loader(key: Any) -> Any:
    from pytest_phyjudge.generation.pipeline import LoadedPipeline

    return LoadedPipeline(key, _Pipe(), "WanPipeline")


def _job(folder: Path, image: Path | None = None) -> Any:
    from pytest_phyjudge.generation.clips import ClipJob
    from pytest_phyjudge.suites.model import PipelineSpec

    spec = PipelineSpec(id=str(_model(folder)), folder=True, device="cpu")
    return ClipJob("drop", spec, "A ball falls.", 0, image)


def _make(clips: Path, job: Any) -> Any:
    """The clip made (or reused) for ``job``; raises its error."""
    from pytest_phyjudge._exceptions import PhyJudgeError
    from pytest_phyjudge.generation.clips import ClipMaker

    maker = ClipMaker(clips, loader=_loader)
    maker.make([job])
    found = maker.result(job)
    if isinstance(found, PhyJudgeError):
        raise found
    return found


def _clips_probe(plant: Callable[[Path, Path], list[Path]]) -> Callable[[Path], str]:
    """Make a clip, let ``plant(clips, made)`` change the folder (returning the user's files
    to keep), then ask again: what is given as the clip must hold the pipeline's bytes, and
    the user's files must be intact (an error naming the file is clean too)."""

    def run(folder: Path) -> str:
        clips = folder / "clips"
        clips.mkdir(parents=True)
        job = _job(folder)
        made = Path(_make(clips, job))
        original = made.read_bytes()
        before = kit.snapshot(*plant(clips, made))
        try:
            again = Path(_make(clips, job))
        finally:
            problem = kit.changed(before)
            if problem:
                raise NotClean(problem)
        if again.is_symlink() or not again.is_file() or again.read_bytes() != original:
            raise NotClean(f"{again.name}, changed or planted, was taken for the clip")
        return f"clip {again}"

    return run


def _tamper(clips: Path, made: Path) -> list[Path]:
    made.write_bytes(made.read_bytes()[:-16] + b"tampered-bytes!!")
    return [made]


def _link_to_user_file(clips: Path, made: Path) -> list[Path]:
    user = clips.parent / "user" / "holiday.mp4"
    user.parent.mkdir()
    user.write_bytes(b"the user's own video " * 100)
    made.unlink()
    made.symlink_to(user)
    return [user]


def _user_file_in_place(clips: Path, made: Path) -> list[Path]:
    made.write_bytes(b"the user's own file under the clip's name " * 50)
    return [made]


def _fifo_in_place(clips: Path, made: Path) -> list[Path]:
    made.unlink()
    os.mkfifo(made)
    return []


def _first_frame(make: Callable[[Path], Path]) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        token = kit.secret(folder, "secret.txt")
        image = make(folder)
        found = _make(folder / "clips", _job(folder, image))
        if token in str(found):
            raise NotClean("a secret was printed")
        return f"clip {found}"

    return run


def _text_image(folder: Path) -> Path:
    path = folder / "first.png"
    path.write_text("API_KEY=hunter2\n")
    return path


def _bomb_image(folder: Path) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    path = folder / "first.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 30001 * 64))
    )
    return path


def _gone_to_folder(folder: Path) -> Path:
    path = folder / "first.png"
    path.mkdir()
    return path


def _gone_to_fifo(folder: Path) -> Path:
    path = folder / "first.png"
    os.mkfifo(path)
    return path


def _unwritable_folder(folder: Path) -> str:
    clips = folder / "clips"
    clips.write_text("a file where the clips folder should be")
    try:
        return f"clip {_make(clips, _job(folder))}"
    finally:
        if clips.read_text() != "a file where the clips folder should be":
            raise NotClean("the user's file was changed")


def clip_probes() -> list[Probe]:
    probes = [
        Probe(CLIPS, f"clips_{name}", _clips_probe(plant), ANY, None, 40.0)
        for name, plant in (
            ("tampered_clip", _tamper),
            ("symlink_to_user_file", _link_to_user_file),
            ("user_file_under_clip_name", _user_file_in_place),
            ("fifo_under_clip_name", _fifo_in_place),
        )
    ]
    probes.append(
        Probe(
            CLIPS,
            "clips_folder_is_a_file",
            _unwritable_folder,
            expect("error", names="clips"),
            None,
            40.0,
        )
    )
    probes += [
        Probe(IMAGES, f"first_frame_{name}", _first_frame(make), expect("error", names="first.png"))
        for name, make in (
            ("text_file", _text_image),
            ("decompression_bomb", _bomb_image),
            ("became_a_folder", _gone_to_folder),
            ("became_a_fifo", _gone_to_fifo),
        )
    ]
    return probes


def pipeline_probes() -> list[Probe]:
    return [
        *suite_probes(),
        *snapshot_probes(),
        Probe(SNAPSHOTS, "pytest_id_root", _no_pipeline_folder("/"), ANY, None, 40.0),
        Probe(SNAPSHOTS, "pytest_id_usr", _no_pipeline_folder("/usr"), ANY, None, 40.0),
        *clip_probes(),
    ]
