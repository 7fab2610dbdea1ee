"""Hostile inputs against diffusers pipelines as generators: the `pipeline:` block and `image:`
of suites, the model snapshot a suite names, and the clips folder the clips are kept in.

A suite is untrusted: it names a model and plain values, never code, a file outside its
folder for a published first frame, or a size that does not fit in memory. A model folder is
untrusted: it is walked without following links and refused for code, pickles, special files
and links out before a byte of it is read or hashed. The clips folder may have been changed:
a clip is reused only when its bytes are the ones its name says, and nothing there is
overwritten. Most tests refuse before anything loads (no torch); those that make a clip use a
fake pipeline of numpy frames (needs the [generate] extra for the encoder path).
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_phyjudge._exceptions import InputError, PhyJudgeError, SuiteError, VideoError
from pytest_phyjudge.engine.extras import GENERATE_MODULES, local_available
from pytest_phyjudge.generation import snapshot
from pytest_phyjudge.generation.clips import ClipJob, ClipMaker, find_clip, store_clip
from pytest_phyjudge.generation.snapshot import check_snapshot, folder_digest
from pytest_phyjudge.suites import load_suite
from pytest_phyjudge.suites.model import PipelineSpec

HAS_GENERATE = local_available(GENERATE_MODULES)
needs_generate = pytest.mark.skipif(
    not HAS_GENERATE, reason='needs the [generate] extra: pip install ".[generate]"'
)
CASE = "cases:\n  - {id: a, prompt: p, laws: [gravity]}\n"


def suite_error(folder: Path, text: str) -> SuiteError:
    path = folder / "s.phyjudge.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    return info.value


def snapshot_folder(folder: Path) -> Path:
    """A pipeline folder that passes every check: the one each test then spoils."""
    folder.mkdir(parents=True, exist_ok=True)
    index = {"_class_name": "WanPipeline", "transformer": ["diffusers", "WanTransformer3DModel"]}
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / "transformer").mkdir(exist_ok=True)
    (folder / "transformer" / "config.json").write_text("{}")
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"w")
    return folder


# --------------------------------------------------------------------------- suites


@pytest.mark.parametrize(
    "model",
    [
        '"~nosuchuser_phyjudge/model"',  # a home folder nobody has
        '"./a\\0b"',  # NUL
        '"./' + "a" * 5000 + '"',  # a name no file system holds
        '"org/\\e[31mred"',  # ESC
    ],
    ids=["unknown-user", "nul", "too-long", "escape"],
)
def test_a_model_path_no_machine_can_use_is_refused_at_its_line(tmp_path: Path, model: str) -> None:
    err = suite_error(tmp_path, f"pipeline: {{id: {model}}}\n{CASE}")
    assert err.line == 1 and "pipeline.id" in str(err)
    assert "\x1b" not in str(err) and "\0" not in str(err)


def test_a_model_path_that_is_a_pipe_is_named_for_what_it_is(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "model")
    err = suite_error(tmp_path, f"pipeline: {{id: ./model}}\n{CASE}")
    assert err.line == 1 and "a pipe" in str(err)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ("{num_frames: 100000000}", "num_frames"),
        ("{num_frames: 1000000000000000000000000000000}", "num_frames"),
        ("{height: 100000}", "height"),
        ("{num_inference_steps: 1000000000}", "num_inference_steps"),
        ("{num_frames: 1024, height: 4096, width: 4096}", "num_frames"),
        ("{video: /etc/passwd}", "video"),
        ("{last_image: /etc/passwd}", "last_image"),
        ("{ip_adapter_image: x.png}", "ip_adapter_image"),
        ("{pooled_prompt_embeds: 1}", "pooled_prompt_embeds"),
        ("{joint_attention_kwargs: 1}", "joint_attention_kwargs"),
        ("{callback_on_step_end_x: os.system}", "callback_on_step_end_x"),
        ("{\uff50rompt: injected}", "pipeline.params"),  # fullwidth p: no ASCII name
        ('{negative_prompt: "blurry\\e[2J\\0"}', "negative_prompt"),
        ('{sigmas: [1.0, "\\e]0;title\\a"]}', "sigmas"),
    ],
)
def test_params_that_size_memory_pass_media_or_hold_controls_are_refused(
    tmp_path: Path, params: str, field: str
) -> None:
    err = suite_error(tmp_path, f"pipeline: {{id: org/model, params: {params}}}\n{CASE}")
    assert err.line == 1 and field in str(err), str(err)
    assert "\x1b" not in str(err)


@pytest.mark.parametrize("fps", ["1.0e-300", "0.001", ".nan", "-16", "1000"])
def test_a_frame_rate_no_clip_can_have_is_refused(tmp_path: Path, fps: str) -> None:
    err = suite_error(tmp_path, f"pipeline: {{id: org/model, fps: {fps}}}\n{CASE}")
    assert err.line == 1 and "pipeline.fps" in str(err)


def test_the_clip_size_is_checked_on_the_merged_params(tmp_path: Path) -> None:
    """The suite gives the frame size and a case the frame count: together too many pixels."""
    err = suite_error(
        tmp_path,
        """
        pipeline: {id: org/model, params: {height: 4096, width: 4096}}
        cases:
          - id: a
            prompt: p
            laws: [gravity]
            pipeline: {params: {num_frames: 1000}}
        """,
    )
    assert err.line == 6 and "num_frames 1000" in str(err), str(err)  # the case's pipeline:


def test_real_video_sizes_still_load(tmp_path: Path) -> None:
    path = tmp_path / "s.phyjudge.yaml"
    path.write_text(
        "pipeline: {id: org/model, params: {num_frames: 121, height: 720, width: 1280, "
        f"num_inference_steps: 50, guidance_scale: 5.0, negative_prompt: blurry}}}}\n{CASE}"
    )
    (case,) = load_suite(path).cases
    assert case.pipeline is not None and case.pipeline.params["num_frames"] == 121


def _image_suite(folder: Path, image: str) -> SuiteError:
    return suite_error(
        folder,
        f"pipeline: {{id: org/model}}\ncases:\n  - {{id: a, prompt: p, image: {image}}}\n",
    )


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("../outside.png", ["outside the suite's folder"]),
        ("/etc/passwd", ["outside the suite's folder"]),
        ("linked.png", ["outside the suite's folder"]),  # a link out
        ("fifo.png", ["a pipe"]),
        ("folder.png", ["a folder"]),
        ('"~nosuchuser_phyjudge/x.png"', ["image of case 'a'"]),
        ('"x\\0.png"', ["image of case 'a'", "control characters"]),
    ],
)
def test_an_image_outside_the_suite_or_not_a_file_is_refused(
    tmp_path: Path, image: str, words: list[str]
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (tmp_path / "outside.png").write_bytes(b"secret")
    (suite / "linked.png").symlink_to(tmp_path / "outside.png")
    os.mkfifo(suite / "fifo.png")
    (suite / "folder.png").mkdir()
    err = _image_suite(suite, image)
    assert err.line == 3
    for word in words:
        assert word in str(err), str(err)
    assert (tmp_path / "outside.png").read_bytes() == b"secret"


def test_an_image_linked_inside_the_suite_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "first.png").write_bytes(b"png")
    (tmp_path / "first.png").symlink_to(tmp_path / "frames" / "first.png")
    path = tmp_path / "s.phyjudge.yaml"
    path.write_text("pipeline: {id: org/model}\ncases:\n  - {id: a, prompt: p, image: first.png}\n")
    (case,) = load_suite(path).cases
    assert case.image == (tmp_path / "frames" / "first.png")


# --------------------------------------------------------------------------- snapshots


def _link_out(folder: Path) -> None:
    secret = folder.parent / "secret.json"
    secret.write_text('{"token": "hunter2"}')
    (folder / "tokenizer.json").symlink_to(secret)


def _folder_link_out(folder: Path) -> None:
    code = folder.parent / "elsewhere"
    code.mkdir()
    (code / "config.json").write_text('{"auto_map": {"AutoModel": "modeling.Evil"}}')
    (code / "modeling.py").write_text("import os")
    (folder / "text_encoder").symlink_to(code, target_is_directory=True)


def _replace(rel: str, make) -> Any:
    def change(folder: Path) -> None:
        (folder / rel).unlink()
        make(folder / rel)

    return change


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda f: (f / "PIPELINE.PY").write_text("import os"), ["code (PIPELINE.PY)"]),
        (lambda f: (f / "transformer" / "w.Bin").write_bytes(b"x"), ["pickled", "w.Bin"]),
        (_replace("transformer/config.json", os.mkfifo), ["config.json is a pipe"]),
        (
            _replace(
                "transformer/diffusion_pytorch_model.safetensors",
                lambda p: p.symlink_to("/dev/zero"),
            ),
            ["is a device"],
        ),
        (_link_out, ["tokenizer.json is a link that leads out"]),
        (_folder_link_out, ["text_encoder is a link that leads out"]),
        (lambda f: (f / "gone.json").symlink_to(f / "nothing.json"), ["gone.json", "no file"]),
        (
            lambda f: (
                (f / "a.json").symlink_to(f / "b.json"),
                (f / "b.json").symlink_to(f / "a.json"),
            ),
            ["a.json", "loop"],
        ),
        (
            lambda f: (f / "model_index.json").write_text(
                json.dumps({"_class_name": "WanPipeline", "vae": ["evil", "Vae", "x"]})
            ),
            ["'vae'", "not [library, class]"],
        ),
        (
            lambda f: (f / "model_index.json").write_text(
                json.dumps({"_class_name": "WanPipeline", "pad": "x" * 2_000_000})
            ),
            ["model_index.json", "larger than 1 MiB"],
        ),
        (
            lambda f: (f / "model_index.json").write_text("[" * 5000 + "]" * 5000),
            ["model_index.json", "nested too deeply"],
        ),
        (lambda f: (f / "model_index.json").write_bytes(b"\xff\xfe"), ["model_index.json"]),
        (_replace("model_index.json", os.mkfifo), ["model_index.json is a pipe"]),
        (lambda f: (f / "\x1b[2Jevil.py").write_text(""), ["\\x1b[2Jevil.py"]),
    ],
    ids=[
        "upper-case-py",
        "mixed-case-bin",
        "fifo-config",
        "link-to-device",
        "link-to-secret",
        "folder-link-to-code",
        "dangling-link",
        "link-loop",
        "three-part-component",
        "huge-index",
        "deep-index",
        "index-not-utf8",
        "fifo-index",
        "escape-in-name",
    ],
)
def test_unsafe_snapshots_are_refused_before_anything_reads_them(
    tmp_path: Path, change, words: list[str]
) -> None:
    folder = snapshot_folder(tmp_path / "model")
    change(folder)
    with pytest.raises(InputError) as info:
        check_snapshot(folder, "folder model")
    text = str(info.value)
    for word in words:
        assert word in text, text
    assert "\x1b" not in text and "hunter2" not in text


def test_a_snapshot_of_too_many_files_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(snapshot, "MAX_SNAPSHOT_ENTRIES", 20)
    folder = snapshot_folder(tmp_path / "model")
    for i in range(30):
        (folder / f"{i}.txt").write_text("")
    with pytest.raises(InputError, match="more than 20 files"):
        check_snapshot(folder, "folder model")


def test_a_hub_cache_snapshot_may_link_into_its_blobs(tmp_path: Path) -> None:
    """The Hugging Face cache keeps files in ``blobs/`` and links to them from each
    snapshot: those links stay inside the repository's cache folder and are fine."""
    repo = tmp_path / "models--org--name"
    blobs = repo / "blobs"
    blobs.mkdir(parents=True)
    folder = repo / "snapshots" / ("a" * 40)
    snapshot_folder(folder)
    for path in (folder / "model_index.json", folder / "transformer" / "config.json"):
        blob = blobs / path.name
        blob.write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(os.path.relpath(blob, path.parent))
    assert check_snapshot(folder, "hub") == "WanPipeline"


def test_a_folder_that_is_no_pipeline_is_refused_before_it_is_hashed(
    tmp_path: Path, monkeypatch
) -> None:
    """``id: /`` or a home folder: one quick refusal, not a hash of the whole disk."""

    def never(*args: object, **kwargs: object) -> str:
        raise AssertionError("hashed before it was checked")

    monkeypatch.setattr(snapshot, "folder_digest", never)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "big.safetensors").write_bytes(b"x" * 1000)
    for folder in (tmp_path / "home", Path("/")):
        job = ClipJob("a", PipelineSpec(id=str(folder), folder=True, device="cpu"), "p", 0)
        error = ClipMaker(tmp_path / "clips").result(job)
        assert isinstance(error, InputError) and "model_index.json" in str(error)


@pytest.mark.parametrize(
    "entry",
    [{}, {"digest": "forged"}, {"digest": ["a"]}, "not a mapping"],
    ids=["no-digest", "forged-digest", "list-digest", "string"],
)
def test_a_forged_digest_memo_is_not_believed(tmp_path: Path, entry: Any) -> None:
    folder = snapshot_folder(tmp_path / "model")
    memo = tmp_path / "memo"
    memo.mkdir()
    real = folder_digest(folder)
    stamp = json.loads(
        (folder_digest(folder, memo), (memo / ".folder-digests.json").read_text())[1]
    )
    files = stamp[str(folder)]["files"]
    forged = {**entry, "files": files} if isinstance(entry, dict) else entry
    (memo / ".folder-digests.json").write_text(json.dumps({str(folder): forged}))
    assert folder_digest(folder, memo) == real


# --------------------------------------------------------------------------- clips folder


def _clip(folder: Path, stem: str, data: bytes, *, replace: bool = False) -> Path:
    partial = folder / f".{stem}.partial.mp4"
    partial.write_bytes(data)
    return store_clip(partial, folder, stem, replace=replace)


def test_a_clip_changed_after_it_was_made_is_not_reused(tmp_path: Path) -> None:
    made = _clip(tmp_path, "drop-0123456789abcdef", b"the clip the pipeline made")
    assert find_clip(tmp_path, "drop-0123456789abcdef") == made
    made.write_bytes(b"a clip edited by someone else")
    assert find_clip(tmp_path, "drop-0123456789abcdef") is None


def test_a_clip_is_never_written_over_other_bytes(tmp_path: Path) -> None:
    """A tampered clip, a link to a user's file, a pipe or a folder at the clip's name:
    refused with the name, left as it was."""
    data = b"the clip the pipeline made"
    made = _clip(tmp_path, "drop-0123456789abcdef", data)
    made.write_bytes(b"edited")
    with pytest.raises(InputError, match=made.name):
        _clip(tmp_path, "drop-0123456789abcdef", data)
    assert made.read_bytes() == b"edited"
    user = tmp_path / "user.txt"
    user.write_text("mine")
    for plant in (lambda p: p.symlink_to(user), os.mkfifo, Path.mkdir):
        made.unlink() if not made.is_dir() else made.rmdir()
        plant(made)
        with pytest.raises(InputError, match="neither used nor overwritten"):
            _clip(tmp_path, "drop-0123456789abcdef", data)
    assert user.read_text() == "mine" and made.is_dir()


def test_a_clip_made_again_replaces_only_its_own_older_clip(tmp_path: Path) -> None:
    old = _clip(tmp_path, "drop-0123456789abcdef", b"first clip")
    other = _clip(tmp_path, "roll-0123456789abcdef", b"another case")
    kept = _clip(tmp_path, "drop-0123456789abcdef", b"made by another process meanwhile")
    assert old.exists() and kept.exists()  # without --phyjudge-regenerate, none goes
    new = _clip(tmp_path, "drop-0123456789abcdef", b"made again", replace=True)
    assert not old.exists() and not kept.exists() and other.exists()
    assert new.read_bytes() == b"made again"
    assert find_clip(tmp_path, "drop-0123456789abcdef") == new


@pytest.mark.parametrize("image", ["text", "bomb", "folder"])
def test_an_image_that_is_no_usable_picture_fails_its_case_before_loading(
    tmp_path: Path, image: str
) -> None:
    import struct
    import zlib

    path = tmp_path / "first.png"
    if image == "text":
        path.write_text("API_KEY=hunter2")
    elif image == "bomb":  # a header of 30000 x 30000 pixels: refused before decoding

        def chunk(kind: bytes, data: bytes) -> bytes:
            crc = zlib.crc32(kind + data) & 0xFFFFFFFF
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

        header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
        pixels = zlib.compress(b"\0" * 30001 * 64)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels))
    else:  # the image became a folder after the suite was read
        path.mkdir()
    spec = PipelineSpec(id=str(snapshot_folder(tmp_path / "model")), folder=True, device="cpu")
    job = ClipJob("a", spec, "p", 0, path)
    maker = ClipMaker(tmp_path / "clips", loader=lambda key: pytest.fail("loaded"))
    maker.make([job])
    error = maker.result(job)
    assert isinstance(error, InputError), error
    assert "image of case 'a'" in str(error) and "hunter2" not in str(error)
    if image == "bomb":  # named for what it is, not "not a PNG"
        assert "decompression bomb" in str(error) or "pixels" in str(error), error


class _FakePipeline:
    """Stands in for a loaded diffusers pipeline: numpy frames, the same for a seed."""

    class_name = "WanPipeline"
    where = "fake"

    def frames(self, prompts, seeds, params, image) -> list[Any]:
        import numpy as np

        return [np.full((2, 16, 16, 3), seed * 40, dtype=np.uint8) for seed in seeds]

    def release(self) -> None:
        pass


@needs_generate
@pytest.mark.local
def test_the_maker_neither_reuses_nor_overwrites_a_changed_clip(tmp_path: Path) -> None:
    spec = PipelineSpec(id=str(snapshot_folder(tmp_path / "model")), folder=True, device="cpu")
    job = ClipJob("drop", spec, "p", 1)
    clips = tmp_path / "clips"
    clips.mkdir()
    maker = ClipMaker(clips, loader=lambda key: _FakePipeline())  # type: ignore[arg-type,return-value]
    maker.make([job])
    made = maker.result(job)
    assert isinstance(made, Path)
    again = ClipMaker(clips, loader=lambda key: pytest.fail("loaded"))
    again.make([job])
    assert again.result(job) == made and again.stats.reused == 1
    made.write_bytes(b"tampered")
    third = ClipMaker(clips, loader=lambda key: _FakePipeline())  # type: ignore[arg-type,return-value]
    third.make([job])
    error = third.result(job)
    assert isinstance(error, VideoError) and made.name in str(error)
    assert made.read_bytes() == b"tampered" and third.stats.reused == 0


@needs_generate
@pytest.mark.local
def test_a_clips_folder_that_cannot_be_written_fails_the_clip_with_the_folder(
    tmp_path: Path,
) -> None:
    spec = PipelineSpec(id=str(snapshot_folder(tmp_path / "model")), folder=True, device="cpu")
    job = ClipJob("drop", spec, "p", 1)
    clips = tmp_path / "clips"
    clips.write_text("a file where the folder should be")
    maker = ClipMaker(clips, loader=lambda key: _FakePipeline())  # type: ignore[arg-type,return-value]
    maker.make([job])
    error = maker.result(job)
    assert isinstance(error, PhyJudgeError) and "clips folder" in str(error), error
    assert "pipeline.params" not in str(error)  # not blamed on the suite
    assert clips.read_text() == "a file where the folder should be"


def test_a_model_folder_this_user_cannot_read_fails_its_case_in_one_paragraph(
    tmp_path: Path, monkeypatch
) -> None:
    """``id: /`` walked as root met /proc/1/cwd: a PermissionError, once an INTERNALERROR."""

    def unreadable(*args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", "/proc/1/cwd")

    monkeypatch.setattr(snapshot, "folder_digest", unreadable)
    spec = PipelineSpec(id=str(snapshot_folder(tmp_path / "model")), folder=True, device="cpu")
    job = ClipJob("a", spec, "p", 0)
    maker = ClipMaker(tmp_path / "clips")
    maker.make([job])
    error = maker.result(job)
    assert isinstance(error, InputError) and "cannot be read" in str(error)
    assert maker.stats.failed == 1


def test_a_shared_temporary_clips_folder_of_someone_else_is_not_used(
    tmp_path: Path, monkeypatch
) -> None:
    """Without a pytest cache the clips go to a folder of a predictable name in the temp
    folder; one planted there first (a link, or writable by others) is passed over."""
    from types import SimpleNamespace

    from pytest_phyjudge.plugin import generate

    monkeypatch.setattr(generate.tempfile, "tempdir", str(tmp_path))
    planted = tmp_path / f"pytest-phyjudge-clips-{os.getuid()}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    planted.symlink_to(elsewhere)
    config = SimpleNamespace(cache=None)
    first = generate.clips_dir(config)  # type: ignore[arg-type]
    assert first != planted and first.is_dir() and not first.is_symlink()
    planted.unlink()
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)
    assert generate.clips_dir(config) not in (planted, first)  # type: ignore[arg-type]
    planted.chmod(0o700)
    assert generate.clips_dir(config) == planted  # type: ignore[arg-type]
