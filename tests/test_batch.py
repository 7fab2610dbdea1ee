"""Every axis of a clip in one batched pass: right padding proven harmless for the attention
and the deltanet layers, greedy replies verified or decoded, exactly the reference's."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_phyjudge import InputError, Judgment, load_judge
from pytest_phyjudge.engine.axes import ALL_AXES, is_law
from pytest_phyjudge.engine.video import decode_video, video_element
from pytest_phyjudge.judges.local import axes_batch
from pytest_phyjudge.judges.local.axes_batch import ReplyTokens, expected_reply, verified_replies

CAPTION = "A ball rolls down a ramp and knocks over a block."


def _kwargs(axis: str) -> dict[str, str]:
    return {"law": axis} if is_law(axis) else {"metric": axis}


def _prefix_and_prompts(judge, clip: Path, axes: list[str]):
    """The shared prefix of ``clip`` run once, and each axis's prompt tokens after it."""
    decoded = decode_video(clip)
    element = video_element(clip, fps=2.0, max_pixels=360 * 640)
    texts = {
        axis: judge.chat_text(judge.render(CAPTION, **_kwargs(axis)).messages(element))
        for axis in axes
    }
    shared = judge.run_prefix(decoded, texts)
    tokenizer = judge.processor.tokenizer
    prompts = {
        axis: tokenizer(text[shared.cut :], add_special_tokens=False)["input_ids"]
        for axis, text in texts.items()
    }
    return shared, prompts


@pytest.mark.local
def test_right_padding_changes_no_position_and_no_row_state(tiny_judge, synthetic_video: Path):
    """Rows of different lengths in one padded call give, at every real position, the logits
    of each row run alone; fed again (two tokens more), they still do, so each row's KV, conv
    and recurrent state was left as if it had run alone."""
    import torch

    from pytest_phyjudge.judges.local.rows import RowBatch

    shared, prompts = _prefix_and_prompts(tiny_judge, synthetic_video, ["SA", "PTV", "shadow"])
    rows = list(prompts.values())
    assert len({len(r) for r in rows}) == 3  # really padded
    tails = [[40, 41], [42, 43], [44, 45]]
    batch = RowBatch(tiny_judge.model, shared.prefix, len(rows), pad_id=0)
    together = batch.feed(rows, [range(len(r)) for r in rows])
    after = batch.feed(tails, [[0, 1]] * 3)
    for i, row in enumerate(rows):
        alone = RowBatch(tiny_judge.model, shared.prefix, 1, pad_id=0)
        (first,) = alone.feed([row], [range(len(row))])
        (second,) = alone.feed([tails[i]], [[0, 1]])
        torch.testing.assert_close(together[i], first, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(after[i], second, atol=1e-4, rtol=1e-4)
    # The deltanet states themselves: row 0 (the shortest) against its lone run.
    solo = RowBatch(tiny_judge.model, shared.prefix, 1, pad_id=0)
    solo.feed([rows[0]], [[0]])
    solo.feed([tails[0]], [[0]])
    for mixer in batch.mixers:
        layer = mixer.layer_idx
        torch.testing.assert_close(
            batch.cache.get_conv_state(layer)[:1], solo.cache.get_conv_state(layer)
        )
        torch.testing.assert_close(
            batch.cache.get_recurrent_state(layer)[:1],
            solo.cache.get_recurrent_state(layer),
            atol=1e-5,
            rtol=1e-5,
        )


@pytest.mark.local
def test_distribution_batched_equals_unbatched_on_every_axis(
    tiny_adapter: Path, synthetic_video: Path
):
    batched = load_judge(tiny_adapter, device="cpu", scoring="distribution")
    one_by_one = load_judge(tiny_adapter, device="cpu", scoring="distribution", batch_axes=False)
    a = batched.score_many(synthetic_video, CAPTION, ALL_AXES)
    b = one_by_one.score_many(synthetic_video, CAPTION, ALL_AXES)
    for axis in ALL_AXES:
        assert max(abs(x - y) for x, y in zip(a[axis].probs, b[axis].probs, strict=True)) < 1e-4
        assert a[axis].score == b[axis].score and a[axis].greedy is None


def _scripted_feed(replies: dict[str, list[int]], prompts: dict[str, list[int]]):
    """A stand-in for RowBatch.feed: a 'model' whose greedy continuation of each axis's
    prompt is ``replies[axis]``; logits are one-hot on that next token."""
    import torch

    seen: dict[str, list[int]] = {axis: [] for axis in prompts}
    calls = []

    def feed(rows, keep):
        calls.append([list(r) for r in rows])
        out = []
        for axis, row, positions in zip(seen, rows, keep, strict=True):
            start = len(seen[axis])
            seen[axis] = seen[axis] + list(row)
            logits = torch.zeros(len(positions), 100)
            for j, pos in enumerate(positions):
                done = start + pos + 1 - len(prompts[axis])  # reply tokens written so far
                logits[j, replies[axis][done]] = 1.0
            out.append(logits)
        return out

    return feed, calls


@pytest.mark.local
def test_a_disagreement_mid_reply_sends_that_axis_alone_to_decoding():
    """Tokens: 1-5 are the digits, 9 ends the turn; an axis's expected reply is its
    characters' codes. The 'model' gives every axis its expected reply except ``gravity``,
    where it writes another token after the digit: only gravity is left to decode."""

    def encode(text: str) -> list[int]:
        return [10 + (ord(c) % 80) if not c.isdigit() else int(c) for c in text]

    axes = ["SA", "gravity", "shadow"]
    prompts = {axis: [10 + i] * (3 + 2 * i) for i, axis in enumerate(axes)}
    replies = {axis: [*encode(expected_reply(axis, 4)), 9] for axis in axes}
    replies["gravity"] = [*encode(expected_reply("gravity", 2))[:-1], 11, 9]
    feed, calls = _scripted_feed(replies, prompts)
    tokens = ReplyTokens(digits=[1, 2, 3, 4, 5], stops={9}, budget=64)
    found = verified_replies(feed, prompts, encode, tokens)
    assert found["SA"] == replies["SA"] and found["shadow"] == replies["shadow"]
    assert found["gravity"] is None
    assert len(calls) == 2  # the prompts with the answer prefix, then digit + brace


@pytest.mark.local
def test_a_reply_over_the_token_budget_is_not_verified():
    def encode(text: str) -> list[int]:
        return [10 + (ord(c) % 80) if not c.isdigit() else int(c) for c in text]

    prompts = {"SA": [10, 10]}
    reply = [*encode(expected_reply("SA", 3)), 9]
    feed, calls = _scripted_feed({"SA": reply}, prompts)
    found = verified_replies(feed, prompts, encode, ReplyTokens([1, 2, 3, 4, 5], {9}, 5))
    assert found == {"SA": None} and len(calls) == 1


@pytest.mark.local
def test_the_fallback_decodes_only_the_axes_that_were_not_verified(
    tiny_adapter: Path, synthetic_video: Path, monkeypatch
):
    """The judge side of the fallback: verified axes take the verified reply without any
    decoding; the one axis left unverified is decoded, and only it."""
    from pytest_phyjudge.judges.local import judge as local

    judge = load_judge(tiny_adapter, device="cpu", max_new_tokens=8)
    tokenizer = judge.processor.tokenizer
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def scripted(feed, prompts, encode, tokens):
        feed(list(prompts.values()), [[0]] * len(prompts))  # the batched pass still runs
        axes = {key: axes_batch.axis_of(key) for key in prompts}  # keys are (clip, axis)
        return {
            key: None if axis == "momentum" else [*encode(expected_reply(axis, 3)), end]
            for key, axis in axes.items()
        }

    monkeypatch.setattr(local, "verified_replies", scripted)
    decoded: list[int] = []
    real_generate = judge.generate_ids
    monkeypatch.setattr(
        judge, "generate_ids", lambda *a, **k: decoded.append(1) or real_generate(*a, **k)
    )
    axes = ["SA", "momentum", "shadow"]
    got = judge.score_many(synthetic_video, CAPTION, axes)
    assert len(decoded) == 1
    for axis in ("SA", "shadow"):
        assert got[axis].greedy == "verified" and got[axis].raw == expected_reply(axis, 3)
        assert got[axis].score == 3
    alone = judge.score_many(synthetic_video, CAPTION, ["momentum", "SA"])  # unverified path
    assert got["momentum"].raw == alone["momentum"].raw
    judge.close()


def test_the_fallback_decodes_from_the_prefix_without_running_the_video_again(
    tiny_judge, synthetic_video: Path
):
    """A random judge verifies nothing, so every axis is decoded after the batched pass: each
    from the video prefix already run. The batch's rows must not leave the prefix's cache
    counting their tokens as its own (the linear-attention layers count in a tensor they add
    to in place); it did once, and every fallback then ran the whole prompt, video included,
    again."""
    video_id = tiny_judge.model.get_base_model().config.video_token_id
    with_video: list[int] = []

    def count(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and bool((ids == video_id).any()):
            with_video.append(int(ids.shape[1]))

    inner = tiny_judge.model.get_base_model().model
    handle = inner.register_forward_pre_hook(count, with_kwargs=True)
    try:
        got = tiny_judge.score_many(synthetic_video, CAPTION, ["SA", "gravity", "shadow"])
    finally:
        handle.remove()
    assert [getattr(r, "greedy", "decoded") for r in got.values()] == ["decoded"] * 3
    assert len(with_video) == 1  # the prefix, once


def test_judgment_records_how_the_reply_was_obtained(tmp_path: Path):
    from pytest_phyjudge.engine.judgment import JudgeIdentity

    judgment = Judgment(
        key="SA",
        score=4,
        raw='{"SA": 4}',
        video="v.mp4",
        video_sha256="0" * 64,
        prompt_sha256="1" * 64,
        judge=JudgeIdentity(kind="tiny", adapter="a"),
        seconds=0.5,
        greedy="verified",
    )
    data = judgment.to_dict()
    assert Judgment.from_dict(data).greedy == "verified"
    del data["greedy"]  # a cache written before the field existed
    assert Judgment.from_dict(data).greedy is None
    with pytest.raises(InputError, match="'greedy'"):
        Judgment.from_dict({**data, "greedy": "guessed"})
    assert axes_batch.VERIFIED == "verified" and axes_batch.DECODED == "decoded"
