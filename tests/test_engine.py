"""The real loading and scoring path, end to end on the tiny judge (CPU, no hub)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from pytest_phyjudge import JudgeLoadError, JudgeOutputError, Judgment, VideoError, load_judge
from pytest_phyjudge.engine.adapter import resolve_adapter
from pytest_phyjudge.engine.video import decode_video, video_element
from pytest_phyjudge.judges.local.judge import LocalJudge

CAPTION = "A ball rolls down a ramp and knocks over a block."


def _outcome_ok(result: Judgment | JudgeOutputError, axis: str) -> None:
    """A tiny judge's reply is random: either a parsed score or an error keeping the raw text."""
    if isinstance(result, Judgment):
        assert result.key == axis and 1 <= result.score <= 5
    else:
        assert isinstance(result, JudgeOutputError) and isinstance(result.raw, str)


def test_tiny_judge_loads_through_the_adapter_config(tiny_judge, tiny_adapter: Path):
    config = json.loads((tiny_adapter / "adapter_config.json").read_text())
    identity = tiny_judge.identity
    assert identity.kind == "tiny"
    assert identity.base == config["base_model_name_or_path"]
    expected_sha = hashlib.sha256((tiny_adapter / "adapter_model.safetensors").read_bytes())
    assert identity.adapter_sha256 == expected_sha.hexdigest()
    # The PEFT adapter is really applied: LoRA layers wrap the language tower.
    names = [n for n, _ in tiny_judge.model.named_modules() if n.endswith("lora_A")]
    assert names and all("language_model" in n for n in names)
    assert tiny_judge.rubric.calibrated  # its template and constants came from the adapter


@pytest.mark.parametrize("axis", ["SA", "gravity"])
def test_score_runs_the_model_on_a_synthetic_clip(tiny_judge, synthetic_video: Path, axis):
    kwargs = {"metric": axis} if axis == "SA" else {"law": axis}
    try:
        result: Judgment | JudgeOutputError = tiny_judge.score(synthetic_video, CAPTION, **kwargs)
    except JudgeOutputError as exc:
        result = exc
    _outcome_ok(result, axis)
    # Greedy decoding: the same question gives the same reply.
    again = tiny_judge.score_many(synthetic_video, CAPTION, [axis])[axis]
    assert again.raw == result.raw


def test_real_phyground_clips(trained_tiny_judge, phyground_videos: list[Path]):
    """On real generated clips the shared video prefix gives, token for token, the replies
    of independent calls. (The format-trained judge: a random one's 64-token replies hold
    near-ties that float noise between two ways of splitting the work can flip.)"""
    judge = trained_tiny_judge
    for clip in phyground_videos[:2]:
        shared = judge.score_many(clip, CAPTION, ["PTV", "collision"])
        shared_config = judge.config
        judge.config = dataclasses.replace(shared_config, share_prefix=False)
        try:
            alone = judge.score_many(clip, CAPTION, ["PTV", "collision"])
        finally:
            judge.config = shared_config
        assert list(shared) == ["PTV", "collision"]
        for axis, result in shared.items():
            _outcome_ok(result, axis)
            assert result.raw == alone[axis].raw, (clip.name, axis)


@pytest.mark.local
def test_video_sampling_follows_the_reference(phyground_videos: list[Path]):
    decoded = decode_video(phyground_videos[0])
    frames, _, height, width = decoded.frames.shape
    assert height * width <= 360 * 640 and height % 32 == 0 and width % 32 == 0
    duration = decoded.metadata["total_num_frames"] / decoded.metadata["fps"]
    assert abs(frames - 2.0 * duration) <= 2  # about 2 frames a second, an even count
    assert frames % 2 == 0


class _FixedReplyJudge(LocalJudge):
    """The tiny judge with its generation step replaced by a fixed reply (the rest is real)."""

    reply = ""

    def _generate(self, inputs, cache=None):  # type: ignore[override]
        self.seen_inputs = inputs
        return self.reply


def test_judgment_records_what_was_asked(tiny_judge, synthetic_video: Path):
    judge = _FixedReplyJudge.__new__(_FixedReplyJudge)
    judge.__dict__.update(tiny_judge.__dict__)
    judge.reply = '<think>\n\n</think>\n\n{"gravity": 4}'
    result = judge.score(synthetic_video, CAPTION, law="gravity", criteria="Things fall down.")
    assert (result.key, result.score, result.raw) == ("gravity", 4, judge.reply)
    assert result.video_sha256 == hashlib.sha256(synthetic_video.read_bytes()).hexdigest()
    prompt = tiny_judge.render(CAPTION, law="gravity", criteria="Things fall down.")
    element = video_element(synthetic_video, fps=2.0, max_pixels=360 * 640)
    text = tiny_judge.processor.apply_chat_template(
        prompt.messages(element), tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert result.prompt_sha256 == prompt.sha256
    assert result.prompt_sha256 != tiny_judge.render(CAPTION, law="gravity").sha256
    assert "Things fall down." in text
    # The video comes first in the user turn, then the rendered text.
    assert text.index("<|video_pad|>") < text.index(CAPTION)
    assert "video_grid_thw" in judge.seen_inputs and "mm_token_type_ids" in judge.seen_inputs
    data = result.to_dict()
    assert data["judge"]["kind"] == "tiny" and json.dumps(data)

    judge.reply = '{"gravity": 6}'
    with pytest.raises(JudgeOutputError) as info:
        judge.score(synthetic_video, CAPTION, law="gravity")
    assert info.value.raw == '{"gravity": 6}'


def test_bad_videos_are_refused_before_the_model_runs(tiny_judge, tmp_path: Path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    for path, words in [
        (tmp_path / "missing.mp4", "does not exist"),
        (tmp_path, "is a directory"),
        (empty, "zero-byte"),
        (text, "cannot be decoded"),
    ]:
        with pytest.raises(VideoError, match=words):
            tiny_judge.score(path, CAPTION, metric="SA")


def test_adapter_folder_problems(tmp_path: Path):
    with pytest.raises(JudgeLoadError, match=r"has no adapter_config\.json"):
        load_judge(tmp_path, device="cpu")
    broken = tmp_path / "no-base"
    broken.mkdir()
    (broken / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(JudgeLoadError, match="names no base model"):
        resolve_adapter(broken)
    # With the base given explicitly it resolves, and then asks for safetensors weights.
    with pytest.raises(JudgeLoadError, match=r"adapter_model\.safetensors"):
        resolve_adapter(broken, base_model="somewhere/base")


def test_a_whole_adapter_folder_resolves_to_its_base(tiny_adapter: Path):
    assert resolve_adapter(tiny_adapter).base_model.endswith("base")


@pytest.mark.local
def test_hub_id_offline_without_cache_says_how_to_fix(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    with pytest.raises(JudgeLoadError) as info:
        resolve_adapter("someone/not-cached-adapter", revision="v1")
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message and "hf download someone/not-cached-adapter" in message
    assert "--revision v1" in message and "--adapter-dir" in message


@pytest.mark.local
def test_large_base_without_cuda_stops_with_alternatives(monkeypatch, tmp_path: Path):
    """A 9B-shaped base (config only, no weights) is refused on a CPU unless device='cpu'."""
    from transformers.models.qwen3_5 import Qwen3_5Config

    base = tmp_path / "big-base"
    Qwen3_5Config().save_pretrained(base)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    (adapter / "adapter_model.safetensors").write_bytes(b"{}")
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(JudgeLoadError) as info:
        load_judge(adapter)
    message = str(info.value)
    assert "no CUDA device" in message and "--phyjudge-judge tiny" in message
    assert "device='cpu'" in message


def test_every_axis_of_a_random_judge_falls_back_to_decoding(tiny_judge, phyground_videos):
    """A random judge's replies never verify: score_many decodes each axis from the shared
    prefix (whose replies equal independent calls: the next test, on decisive replies)."""
    from pytest_phyjudge.engine.axes import ALL_AXES

    shared = tiny_judge.score_many(phyground_videos[0], CAPTION, ALL_AXES)
    assert list(shared) == list(ALL_AXES)
    for axis, result in shared.items():
        if isinstance(result, Judgment):  # a reply that parses still was not verified
            assert result.greedy == "decoded", axis


def test_decoding_from_the_shared_prefix_equals_independent_calls(
    trained_tiny_judge, phyground_videos: list[Path], monkeypatch
):
    """The fallback path (every axis decoded from the video prefix run once) gives, token for
    token, the replies of 16 independent reference-style calls. On the format-trained judge,
    verification is switched off to force it: a random judge's replies hold near-ties that
    float noise between the two ways of running a prompt can flip, and did, on one CPU."""
    from pytest_phyjudge.engine.axes import ALL_AXES
    from pytest_phyjudge.judges.local import judge as local

    judge, clip = trained_tiny_judge, phyground_videos[0]
    monkeypatch.setattr(local, "verified_replies", lambda feed, prompts, *_: dict.fromkeys(prompts))
    shared = judge.score_many(clip, CAPTION, ALL_AXES)
    monkeypatch.undo()
    for axis in ALL_AXES:
        kwargs = {"law": axis} if axis not in ("SA", "PTV", "persistence") else {"metric": axis}
        alone = judge.score(clip, CAPTION, **kwargs)
        assert (shared[axis].raw, shared[axis].greedy) == (alone.raw, "decoded"), axis


def test_distribution_scoring_shared_equals_independent(tiny_adapter: Path, synthetic_video: Path):
    """Digit probabilities after the forced answer prefix: one forward step per axis, the same
    from the shared prefix as from a full prompt; the score is their argmax."""
    axes = ["SA", "gravity", "shadow"]
    shared = load_judge(tiny_adapter, device="cpu", scoring="distribution")
    alone = load_judge(tiny_adapter, device="cpu", scoring="distribution", share_prefix=False)
    a = shared.score_many(synthetic_video, CAPTION, axes)
    b = alone.score_many(synthetic_video, CAPTION, axes)
    for axis in axes:
        ja, jb = a[axis], b[axis]
        assert isinstance(ja, Judgment) and isinstance(jb, Judgment)
        assert len(ja.probs) == 5 and abs(sum(ja.probs) - 1) < 1e-5
        assert max(abs(x - y) for x, y in zip(ja.probs, jb.probs, strict=True)) < 1e-4
        assert ja.score == 1 + max(range(5), key=lambda i: ja.probs[i])
        assert ja.expected == pytest.approx(sum((i + 1) * p for i, p in enumerate(ja.probs)))
        assert ja.raw == f'{{"{axis}": {ja.score}'
        assert 0 < ja.extra["digit_mass"] <= 1
    assert len({a[x].probs for x in axes}) == 3  # the prompt matters


def test_distribution_argmax_is_the_greedy_digit(tiny_adapter: Path, synthetic_video: Path):
    """Greedy decoding that has reached the answer prefix, kept to the digits 1-5, writes the
    digit that distribution scoring reports as its argmax, on every axis."""
    import torch

    from pytest_phyjudge.engine.axes import ALL_AXES
    from pytest_phyjudge.engine.parse import answer_prefix

    judge = load_judge(tiny_adapter, device="cpu", scoring="distribution")
    scored = judge.score_many(synthetic_video, CAPTION, ALL_AXES)
    digits = judge.digit_ids()
    decoded = decode_video(synthetic_video)
    element = video_element(synthetic_video, fps=2.0, max_pixels=360 * 640)
    for axis in ALL_AXES:
        kwargs = {"law": axis} if axis not in ("SA", "PTV", "persistence") else {"metric": axis}
        text = judge.chat_text(judge.render(CAPTION, **kwargs).messages(element))
        inputs = judge.encode(decoded, text + answer_prefix(axis))
        with torch.inference_mode():
            out = judge.model.generate(
                **inputs,
                do_sample=False,
                max_new_tokens=1,
                prefix_allowed_tokens_fn=lambda _batch, _ids: digits,
            )
        greedy = judge.processor.tokenizer.decode(out[0, -1:])
        assert int(greedy) == scored[axis].score, axis
