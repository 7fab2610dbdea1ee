"""Diffusers pipelines as generators: ``pipeline:`` in suites (data, checked at its line),
snapshots refused before loading, and clips keyed, made, reused and released.

The light tests need no model; those marked ``generate`` run the tiny random Wan pipeline
(pytest_phyjudge.testing.pipelines), built once for the module, on the CPU.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from pytest_phyjudge._exceptions import InputError, SuiteError
from pytest_phyjudge.engine import extras
from pytest_phyjudge.engine.extras import GENERATE_MODULES, local_available
from pytest_phyjudge.generation.snapshot import check_snapshot, folder_digest
from pytest_phyjudge.suites import load_suite
from pytest_phyjudge.testing.pipelines import TINY_PARAMS

HAS_GENERATE = local_available(GENERATE_MODULES)
if HAS_GENERATE:
    # Before any pytester run: its in-process runs drop modules first imported during them.
    import diffusers  # noqa: F401
    import transformers  # noqa: F401

needs_generate = pytest.mark.skipif(
    not HAS_GENERATE, reason='needs the [generate] extra: pip install ".[generate]"'
)


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Wan text-to-video pipeline, saved once for this module."""
    if not HAS_GENERATE:
        pytest.skip('needs the [generate] extra: pip install ".[generate]"')
    from pytest_phyjudge.testing.pipelines import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-pipeline"))


def write(folder: Path, text: str, name: str = "gen.phyjudge.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- suites


def test_pipeline_is_read_and_merged_per_case(tmp_path: Path) -> None:
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    (tmp_path / "first.png").write_bytes(b"png")
    path = write(
        tmp_path,
        """
        pipeline:
          id: ./models/tiny
          dtype: float32
          device: cpu
          params: {num_frames: 5, height: 32, guidance_scale: 1}
        cases:
          - id: drop
            prompt: A glass falls.
            laws: [gravity]
          - id: roll
            prompt: A ball rolls.
            laws: [gravity]
            image: first.png
            pipeline:
              fps: 8
              params: {num_frames: 9, negative_prompt: blurry}
          - id: hub
            prompt: A ball rolls.
            laws: [gravity]
            pipeline: {id: Wan-AI/Wan2.1-T2V-1.3B-Diffusers, revision: main, device: cuda}
          - id: filed
            prompt: A ball rolls.
            laws: [gravity]
            video: clip.mp4
        """,
    )
    suite = load_suite(path)
    drop, roll, hub, filed = suite.cases
    assert drop.pipeline is not None and drop.pipeline.folder
    assert drop.pipeline.id == str((tmp_path / "models" / "tiny").resolve())
    assert dict(drop.pipeline.params) == {"num_frames": 5, "height": 32, "guidance_scale": 1}
    assert drop.generator is None and drop.video is None
    assert roll.pipeline is not None and roll.pipeline.fps == 8.0
    assert dict(roll.pipeline.params) == {
        "num_frames": 9,
        "height": 32,
        "guidance_scale": 1,
        "negative_prompt": "blurry",
    }
    assert roll.image == (tmp_path / "first.png").resolve()
    assert hub.pipeline is not None and not hub.pipeline.folder
    assert (hub.pipeline.id, hub.pipeline.revision) == ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "main")
    assert hub.pipeline.params == drop.pipeline.params  # the suite's params still apply
    assert filed.pipeline is None and filed.video == (tmp_path / "clip.mp4").resolve()


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("params", "{generator: 3}", ["pipeline.params.generator", "seed"]),
        ("params", "{callback_on_step_end: x}", ["never code"]),
        ("params", "{num_frames: five}", ["pipeline.params.num_frames", "whole number"]),
        ("params", "{guidance_scale: [1]}", ["pipeline.params.guidance_scale", "number"]),
        ("params", "{extra: {a: 1}}", ["pipeline.params.extra", "plain value"]),
        ("dtype", "float64", ["pipeline.dtype", "bfloat16"]),
        ("device", "tpu", ["pipeline.device", "cuda:N"]),
        ("fps", "0", ["pipeline.fps"]),
        ("id", "'not a hub id!'", ["pipeline.id", "hub id"]),
        ("id", "./missing", ["pipeline.id", "does not exist"]),
        ("custom_pipeline", "x", ["unknown key 'custom_pipeline'"]),
    ],
)
def test_bad_pipeline_fields_are_named_at_their_line(
    tmp_path: Path, field: str, value: str, words: list[str]
) -> None:
    body = {"id": "org/model", field: value}
    lines = "\n".join(f"  {key}: {text}" for key, text in body.items())
    path = write(
        tmp_path,
        f"pipeline:\n{lines}\ncases:\n  - id: a\n    prompt: p\n    laws: [gravity]\n",
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    err = info.value
    line = 2 if field == "id" else 3
    assert err.line == line, str(err)
    for word in words:
        assert word in str(err), str(err)


def test_case_sources_conflict_and_image_without_pipeline(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        cases:
          - id: both
            prompt: p
            laws: [gravity]
            generator: make
            pipeline: {id: org/model}
          - id: lone
            prompt: p
            laws: [gravity]
            video: clip.mp4
            image: first.png
        """,
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    text = str(info.value)
    assert ":6: case 'both' sets both `generator:` and `pipeline:`" in text
    assert ":11: case 'lone' has an `image:`" in text


# --------------------------------------------------------------------------- snapshots


def _snapshot(folder: Path, index: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    index = index or {
        "_class_name": "WanPipeline",
        "transformer": ["diffusers", "WanTransformer3DModel"],
        "text_encoder": ["transformers", "UMT5EncoderModel"],
        "transformer_2": [None, None],
    }
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / "transformer").mkdir(exist_ok=True)
    (folder / "transformer" / "config.json").write_text("{}")
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"w")
    return folder


def test_a_clean_snapshot_passes_and_its_digest_follows_its_bytes(tmp_path: Path) -> None:
    folder = _snapshot(tmp_path / "ok")
    assert check_snapshot(folder, "here") == "WanPipeline"
    first = folder_digest(folder, tmp_path)
    assert folder_digest(folder, tmp_path) == first  # remembered, same answer
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"other")
    assert folder_digest(folder, tmp_path) != first


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda f: (f / "pipeline.py").write_text("import os"), ["holds code (pipeline.py)"]),
        (
            lambda f: (f / "transformer" / "diffusion_pytorch_model.bin").write_bytes(b"x"),
            ["pickled weights (transformer/diffusion_pytorch_model.bin)"],
        ),
        (
            lambda f: (f / "model_index.json").write_text(
                json.dumps({"_class_name": ["pipeline", "EvilPipeline"]})
            ),
            ["custom class"],
        ),
        (
            lambda f: (f / "model_index.json").write_text(
                json.dumps({"_class_name": "WanPipeline", "vae": ["evil_module", "Vae"]})
            ),
            ["'vae'", "'evil_module'"],
        ),
        (
            lambda f: (f / "transformer" / "config.json").write_text('{"auto_map": {}}'),
            ["transformer/config.json sets 'auto_map'"],
        ),
    ],
    ids=["py-file", "bin-weights", "custom-class", "other-library", "auto-map"],
)
def test_unsafe_snapshots_are_refused(tmp_path: Path, change, words: list[str]) -> None:
    folder = _snapshot(tmp_path / "bad")
    change(folder)
    with pytest.raises(InputError) as info:
        check_snapshot(folder, "folder bad")
    text = str(info.value)
    assert text.startswith("The pipeline folder bad is refused:")
    for word in words:
        assert word in text, text
    assert "safetensors" in text and "\n" not in text


def test_the_clip_key_follows_everything_that_makes_the_clip(tmp_path: Path) -> None:
    """Model bytes, dtype, device type, params, prompt, image bytes, seed and fps each change
    the key; the folder's path does not (a clips folder restored elsewhere is found)."""
    import dataclasses
    import shutil

    from PIL import Image

    from pytest_phyjudge.generation.clips import ClipJob, ClipMaker
    from pytest_phyjudge.suites.model import PipelineSpec

    folder = _snapshot(tmp_path / "model")
    image = tmp_path / "first.png"
    Image.new("RGB", (4, 4), "red").save(image)
    spec = PipelineSpec(id=str(folder), folder=True, device="cpu", params={"num_frames": 5})
    job = ClipJob("drop", spec, "A glass falls.", 0, image)
    key = ClipMaker(tmp_path / "clips").key(job)
    changed = [
        dataclasses.replace(job, spec=dataclasses.replace(spec, dtype="bfloat16")),
        dataclasses.replace(job, spec=dataclasses.replace(spec, device="cuda:1")),
        dataclasses.replace(job, spec=dataclasses.replace(spec, params={"num_frames": 9})),
        dataclasses.replace(job, spec=dataclasses.replace(spec, fps=8.0)),
        dataclasses.replace(job, prompt="A glass falls slowly."),
        dataclasses.replace(job, seed=1),
    ]
    keys = {ClipMaker(tmp_path / "clips").key(other) for other in changed}
    assert key not in keys and len(keys) == len(changed)
    assert ClipMaker(tmp_path / "clips").key(
        dataclasses.replace(job, spec=dataclasses.replace(spec, device="cuda:0"))
    ) == ClipMaker(tmp_path / "clips").key(changed[1])  # the device type, not its index
    Image.new("RGB", (4, 4), "blue").save(image)
    assert ClipMaker(tmp_path / "clips").key(job) != key
    Image.new("RGB", (4, 4), "red").save(image)
    moved = Path(shutil.copytree(folder, tmp_path / "elsewhere"))
    elsewhere = dataclasses.replace(job, spec=dataclasses.replace(spec, id=str(moved)))
    assert ClipMaker(tmp_path / "clips").key(elsewhere) == key
    (moved / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"retrained")
    assert ClipMaker(tmp_path / "clips").key(elsewhere) != key


def test_a_hub_model_pinned_to_a_commit_is_keyed_without_asking_the_hub(
    tmp_path: Path, monkeypatch
) -> None:
    """What a CPU replay job computes: the key of a pinned hub model needs no network and
    no huggingface_hub; a branch name is resolved (here, offline, from an empty cache: one
    paragraph asking to pin a commit)."""
    import builtins

    from pytest_phyjudge.generation.clips import ClipJob, ClipMaker
    from pytest_phyjudge.suites.model import PipelineSpec

    real_import = builtins.__import__

    def no_hub(name: str, *args, **kwargs):
        if name.startswith("huggingface_hub"):
            raise ImportError("no huggingface_hub here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hub)
    spec = PipelineSpec(
        id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers", folder=False, revision="a" * 40, device="cuda"
    )
    job = ClipJob("drop", spec, "A glass falls.", 0)
    assert len(ClipMaker(tmp_path).key(job)) == 64
    branch = ClipJob("drop", PipelineSpec(id=spec.id, folder=False, revision="main"), "p", 0)
    error = ClipMaker(tmp_path).result(branch)
    assert isinstance(error, InputError)
    assert "Pin `revision:` to a commit hash" in str(error)


def test_missing_extra_is_one_paragraph_naming_the_install(monkeypatch) -> None:
    real = extras.importlib.import_module

    def fake(name: str, *args, **kwargs):
        if name == "diffusers":
            raise ModuleNotFoundError("No module named 'diffusers'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(extras.importlib, "import_module", fake)
    with pytest.raises(InputError) as info:
        extras.require_generate("Making the clips of a suite's `pipeline:`")
    text = str(info.value)
    assert 'pip install "pytest-phyjudge[generate]"' in text
    assert text.startswith("Making the clips of a suite's `pipeline:` needs the generate extra")
    # the modules named are the ones missing here (torch too, on the light core)
    assert "diffusers" in text and "cannot be imported" in text and "\n" not in text


# --------------------------------------------------------------------------- clips


def _jobs(folder: Path, seeds, **params):
    from pytest_phyjudge.generation.clips import ClipJob
    from pytest_phyjudge.suites.model import PipelineSpec

    spec = PipelineSpec(id=str(folder), folder=True, device="cpu", params={**TINY_PARAMS, **params})
    return [ClipJob(f"c{seed}", spec, "a ball rolls down a ramp", seed) for seed in seeds]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_generate
@pytest.mark.local
def test_same_seed_same_bytes_other_seed_other_clip(tiny_pipeline: Path, tmp_path: Path) -> None:
    from pytest_phyjudge.generation.clips import ClipMaker

    maker = ClipMaker(tmp_path, batch=2)
    jobs = _jobs(tiny_pipeline, [0, 1, 0])
    maker.make(jobs)
    first, second, again = (maker.result(job) for job in jobs)
    assert isinstance(first, Path) and isinstance(second, Path)
    assert again == first and first != second  # one key, one clip
    assert _sha(first) != _sha(second)  # another seed, another clip
    assert (maker.stats.made, maker.stats.reused, maker.stats.loads) == (2, 0, 1)
    made = _sha(first)
    maker.release()
    # Made again (alone this time, not in a batch of two): the same bytes.
    remade = ClipMaker(tmp_path, regenerate=True)
    remade.make(jobs[:1])
    assert remade.stats.made == 1 and _sha(first) == made
    remade.release()


# --------------------------------------------------------------------------- in a pytest run

#: A conftest that watches the pipelines loaded (weak references) and, when the judge is made,
#: records whether any is still alive; the judge is SCRIPTED (4 for every axis).
WATCHING_CONFTEST = """
import json, weakref
from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge.generation import clips

LOADED = []
_load = clips.load_pipeline

def watched(key):
    loaded = _load(key)
    LOADED.append(weakref.ref(loaded.pipe))
    return loaded

clips.load_pipeline = watched

def pytest_phyjudge_make_judge(config):
    alive = sum(ref() is not None for ref in LOADED)
    with open("judge_made.json", "w") as fh:
        json.dump({"loaded": len(LOADED), "alive_when_judge_made": alive}, fh)
    return ScriptedJudge({"*": 4}, name="scripted")
"""


def _pipeline_suite(pytester: pytest.Pytester, folder: Path, steps: int = 2) -> None:
    params = json.dumps(TINY_PARAMS)
    pytester.makefile(
        ".phyjudge.yaml",
        gen=textwrap.dedent(
            f"""
            defaults: {{metrics: [SA]}}
            pipeline: {{id: {json.dumps(str(folder))}, device: cpu, params: {params}}}
            cases:
              - id: drop
                prompt: A glass falls off a table.
                samples: 2
              - id: roll
                prompt: A ball rolls down a ramp.
                seed: 5
                pipeline: {{params: {{num_inference_steps: {steps}}}}}
              - id: broken
                prompt: A ball rolls down a ramp.
                pipeline: {{params: {{no_such_param: 1}}}}
            """
        ),
    )


@needs_generate
@pytest.mark.local
def test_suite_generates_first_releases_then_judges_and_reuses(
    pytester: pytest.Pytester, tiny_pipeline: Path
) -> None:
    pytester.makeconftest(WATCHING_CONFTEST)
    _pipeline_suite(pytester, tiny_pipeline)
    result = pytester.runpytest("-p", "no:randomly", "--phyjudge-generate-batch", "2")
    result.assert_outcomes(passed=2, failed=1)
    made = json.loads((pytester.path / "judge_made.json").read_text())
    assert made == {"loaded": 1, "alive_when_judge_made": 0}  # released before the judge
    result.stdout.fnmatch_lines(
        [
            "VideoError: The pipeline * failed making the clip of case 'broken' (seed 0): *"
            "unexpected keyword argument 'no_such_param'. Fix the case's pipeline.params*",
            "*generated clips: 3 made, 0 reused, 1 failed, * s generating (1 pipeline load)*",
        ]
    )
    clips = sorted((pytester.path / ".pytest_cache" / "d" / "phyjudge-clips").glob("*.mp4"))
    assert [p.name.split("-")[0] for p in clips] == ["drop", "drop", "roll"]

    again = pytester.runpytest("-p", "no:randomly")
    again.assert_outcomes(passed=2, failed=1)
    again.stdout.fnmatch_lines(["*generated clips: 0 made, 3 reused, 1 failed*"])

    _pipeline_suite(pytester, tiny_pipeline, steps=3)  # a param of one case changed
    changed = pytester.runpytest("-p", "no:randomly")
    changed.stdout.fnmatch_lines(["*generated clips: 1 made, 2 reused, 1 failed*"])


#: A conftest whose pipeline makes its second clip only once the judge has judged a first one
#: (the judge writes ``judged.flag``), and records whether it had to give up waiting.
OVERLAP_CONFTEST = """
import json, time
from pathlib import Path
from pytest_phyjudge.generation import clips

_load = clips.load_pipeline

def watched(key):
    loaded = _load(key)
    frames = loaded.frames
    calls = []

    def gated(*args, **kwargs):
        if calls:
            end = time.monotonic() + 60
            while not Path("judged.flag").exists() and time.monotonic() < end:
                time.sleep(0.02)
            Path("overlap.json").write_text(json.dumps(Path("judged.flag").exists()))
        calls.append(1)
        return frames(*args, **kwargs)

    loaded.frames = gated
    return loaded

clips.load_pipeline = watched
"""


@needs_generate
@pytest.mark.local
def test_a_served_judge_judges_while_the_next_clips_are_made(
    pytester: pytest.Pytester, tiny_pipeline: Path
) -> None:
    from pytest_phyjudge import ScriptedJudge
    from pytest_phyjudge.testing.faults import FaultyJudgeServer

    def reply(axis: str, caption: str, video: Path) -> int:
        (pytester.path / "judged.flag").touch()
        return 4

    pytester.makeconftest(OVERLAP_CONFTEST)
    params = json.dumps(TINY_PARAMS)
    pytester.makefile(
        ".phyjudge.yaml",
        gen=f"defaults: {{metrics: [SA]}}\n"
        f"pipeline: {{id: {json.dumps(str(tiny_pipeline))}, device: cpu, params: {params}}}\n"
        "cases:\n  - {id: first, prompt: A ball rolls.}\n"
        "  - {id: second, prompt: A glass falls., seed: 1}\n",
    )
    with FaultyJudgeServer(ScriptedJudge(reply, name="served-scripted")) as server:
        result = pytester.runpytest("-p", "no:randomly", "--phyjudge-url", server.url)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*generated clips: 2 made, 0 reused*"])
    # The second clip was made after the first was judged, not before the tests ran.
    assert json.loads((pytester.path / "overlap.json").read_text()) is True


def test_a_pipeline_without_the_extra_fails_its_cases_with_the_install(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch
) -> None:
    # The in-process run's conftest changes the module: restored after this test.
    monkeypatch.setattr(extras, "GENERATE_MODULES", extras.GENERATE_MODULES)
    folder = _snapshot(tmp_path / "model")
    pytester.makeconftest(
        """
from pytest_phyjudge import ScriptedJudge
from pytest_phyjudge.engine import extras

extras.GENERATE_MODULES = ("diffusers_is_not_installed_here",)

def pytest_phyjudge_make_judge(config):
    return ScriptedJudge({"*": 4})
"""
    )
    pytester.makefile(
        ".phyjudge.yaml",
        gen=f"defaults: {{metrics: [SA]}}\npipeline: {{id: {json.dumps(str(folder))}}}\n"
        "cases:\n  - {id: drop, prompt: A glass falls.}\n  - {id: roll, prompt: A ball rolls.}\n",
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "VideoError: Case 'drop': Making the clips of a suite's `pipeline:` needs the "
            "generate extra (diffusers), which this install lacks "
            "(diffusers_is_not_installed_here cannot be imported;*"
            'Install them with pip install "pytest-phyjudge?generate?"*',  # fnmatch: [ ]
        ]
    )
