"""Several clips per batch: padding across clips of different lengths changes no reply and no
probability, a clip that cannot be read fails only itself, and the cache, ``score-dir`` and
suites hand the judge up to N clips per call."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pytest_phyjudge import (
    ClipRequest,
    InputError,
    JudgeSettings,
    ScriptedJudge,
    VideoError,
    load_judge,
)
from pytest_phyjudge.judges.settings import parse_batch_clips

pytest_plugins = "pytester"

CAPTION = "A ball rolls down a ramp and knocks over a block."
AXES = ["SA", "PTV", "gravity", "shadow", "momentum"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three clips of different lengths and frame sizes: different prefix lengths."""
    from pytest_phyjudge.testing import write_test_video

    folder = tmp_path_factory.mktemp("clips")
    return [
        write_test_video(folder / "a.mp4", frames=12, size=(64, 64), seed=0),
        write_test_video(folder / "b.mp4", frames=24, size=(96, 64), seed=1),
        write_test_video(folder / "c.mp4", frames=8, size=(64, 48), seed=2),
    ]


@pytest.mark.local
def test_prefixes_prefilled_together_leave_each_row_as_if_run_alone(tiny_judge, clips):
    """One right-padded prefill of three prefixes of different lengths: each row, cut out of
    the batch, holds the keys, values, conv and recurrent states and the rotary offset that
    running its prefix alone gives."""
    import torch

    from pytest_phyjudge.engine.video import decode_video, video_element
    from pytest_phyjudge.judges.local.rows import linear_attention_layers, prefill

    heads, alone = [], []
    for clip in clips:
        element = video_element(clip, fps=2.0, max_pixels=360 * 640)
        text = tiny_judge.chat_text(tiny_judge.render(CAPTION, law="gravity").messages(element))
        decoded = decode_video(clip)
        heads.append(tiny_judge._head(decoded, {"gravity": text}))
        alone.append(tiny_judge.run_prefix(decoded, {"gravity": text}).prefix)
    together = prefill(tiny_judge.model, [inputs for inputs, _ in heads], pad_id=0)
    assert len(set(together.lengths)) == 3  # really padded
    mixers = {m.layer_idx for m in linear_attention_layers(tiny_judge.model.get_base_model())}
    for i, single in enumerate(alone):
        row = together.row(i)
        assert row.lengths == single.lengths and row.rope_deltas == single.rope_deltas
        for index, (mine, theirs) in enumerate(
            zip(row.cache.layers, single.cache.layers, strict=True)
        ):
            if index in mixers:
                pairs = [(mine.conv_states[0], theirs.conv_states[0])]
                pairs.append((mine.recurrent_states[0], theirs.recurrent_states[0]))
            else:
                pairs = [(mine.keys, theirs.keys), (mine.values, theirs.values)]
            for got, want in pairs:
                torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.local
@pytest.mark.parametrize("scoring", ["greedy", "distribution"])
def test_clips_in_one_batch_reply_as_one_clip_at_a_time(tiny_adapter, clips, scoring: str):
    """Batched: each clip's replies equal token for token (greedy: every axis falls back to
    decoding on the random judge, over its own clip's prefix cut out of the batch) and its
    probabilities within 1e-4, while the clips' own probabilities differ by more."""
    judge = load_judge(tiny_adapter, device="cpu", scoring=scoring, max_new_tokens=6)
    together = judge.score_clips([(clip, CAPTION, AXES) for clip in clips])
    alone = [judge.score_many(clip, CAPTION, AXES) for clip in clips]
    for batched, single in zip(together, alone, strict=True):
        assert list(batched) == AXES
        for axis in AXES:
            assert batched[axis].raw == single[axis].raw  # a Judgment or an unparseable reply
            assert type(batched[axis]) is type(single[axis])
            if scoring == "distribution":
                gap = max(
                    abs(x - y) for x, y in zip(batched[axis].probs, single[axis].probs, strict=True)
                )
                assert gap < 1e-4
    if scoring == "distribution":  # the test would see clips swapped or mixed
        spread = max(
            abs(x - y)
            for axis in AXES
            for x, y in zip(alone[0][axis].probs, alone[1][axis].probs, strict=True)
        )
        assert spread > 1e-3
    judge.close()


@pytest.mark.local
def test_verified_replies_go_to_their_own_clip(tiny_adapter, clips, monkeypatch):
    """Rows of several clips verify in one batch: each verified reply lands on its own clip
    and axis, and the one row left unverified is decoded over its own clip's prefix."""
    from pytest_phyjudge.judges.local import axes_batch
    from pytest_phyjudge.judges.local import judge as local

    judge = load_judge(tiny_adapter, device="cpu", max_new_tokens=6)
    end = judge.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def scripted(feed, prompts, encode, tokens):
        feed(list(prompts.values()), [[0]] * len(prompts))  # the batched pass still runs
        return {
            key: None
            if key == (2, "SA")
            else [*encode(axes_batch.expected_reply(key[1], key[0] + 2)), end]
            for key in prompts
        }

    monkeypatch.setattr(local, "verified_replies", scripted)
    got = judge.score_clips([(clip, CAPTION, ["SA", "gravity"]) for clip in clips])
    for i in range(3):
        assert got[i]["gravity"].score == i + 2 and got[i]["gravity"].greedy == "verified"
    assert [got[i]["SA"].greedy for i in range(2)] == ["verified", "verified"]
    monkeypatch.undo()
    decoded = got[2]["SA"]  # the random judge's reply: a Judgment or an unparseable reply
    assert getattr(decoded, "greedy", "decoded") == "decoded"
    assert decoded.raw == judge.score_many(clips[2], CAPTION, ["SA", "PTV"])["SA"].raw
    judge.close()


@pytest.mark.local
def test_a_clip_that_cannot_be_read_fails_only_its_own_axes(tiny_adapter, clips, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    judge = load_judge(tiny_adapter, device="cpu", scoring="distribution")
    got = judge.score_clips(
        [(clips[0], CAPTION, AXES), (broken, CAPTION, AXES), (clips[1], CAPTION, ["gravity"])]
    )
    assert all(isinstance(got[1][axis], VideoError) for axis in AXES)
    assert "broken.mp4" in str(got[1]["SA"])
    assert got[0]["SA"].probs == pytest.approx(
        judge.score_many(clips[0], CAPTION, ["SA", "PTV"])["SA"].probs, abs=1e-4
    )
    assert got[2]["gravity"].score in range(1, 6)
    judge.close()


def test_a_judge_that_cannot_batch_judges_clips_one_by_one(tmp_path: Path):
    """The default ``score_clips``: ``score_many`` per clip, in order; a missing video maps
    its own axes to its error; tuples and ClipRequests both work; a bad axis is refused."""
    first, second = tmp_path / "one.mp4", tmp_path / "two.mp4"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    judge = ScriptedJudge(lambda axis, caption, video: 2 if video.name == "one.mp4" else 5)
    got = judge.score_clips(
        [
            (first, CAPTION, ["SA", "SA", "gravity"]),
            ClipRequest(tmp_path / "gone.mp4", CAPTION, ["SA"]),
            ClipRequest(second, CAPTION, ["gravity"], {"gravity": "Things fall down."}),
        ]
    )
    assert [list(outcome) for outcome in got] == [["SA", "gravity"], ["SA"], ["gravity"]]
    assert got[0]["SA"].score == 2 and got[2]["gravity"].score == 5
    assert isinstance(got[1]["SA"], VideoError)
    with pytest.raises(InputError, match="criteria can only be overridden for a law"):
        judge.score_clips([(first, CAPTION, ["SA"], {"SA": "no"})])


class _CountingJudge(ScriptedJudge):
    """A scripted judge that logs the clips and axes of each ``score_clips`` batch."""

    def __init__(self) -> None:
        super().__init__({"*": 4})
        self.batches: list[list[tuple[str, tuple[str, ...]]]] = []

    def _score_clips(self, clips):
        self.batches.append([(Path(c.video).name, tuple(c.axes)) for c in clips])
        return super()._score_clips(clips)


def test_the_cache_asks_the_judge_only_for_its_misses_in_one_batch(tmp_path: Path):
    from pytest_phyjudge.judges.cache.judge import CachedJudge
    from pytest_phyjudge.judges.cache.store import JudgmentCache

    videos = []
    for name in ("a", "b", "c"):
        videos.append(tmp_path / f"{name}.mp4")
        videos[-1].write_bytes(name.encode())
    inner = _CountingJudge()
    cached = CachedJudge(
        identity=inner.identity,
        rubric=inner.rubric,
        settings={},
        cache=JudgmentCache(tmp_path / "cache"),
        load=lambda: inner,
    )
    cached.score_clips([(videos[0], CAPTION, ["SA"]), (videos[1], CAPTION, ["SA"])])
    got = cached.score_clips(
        [
            (videos[0], CAPTION, ["SA", "gravity"]),
            (tmp_path / "gone.mp4", CAPTION, ["SA"]),
            (videos[1], CAPTION, ["SA"]),
            (videos[2], CAPTION, ["SA"]),
        ]
    )
    assert inner.batches == [
        [("a.mp4", ("SA",)), ("b.mp4", ("SA",))],
        [("a.mp4", ("gravity",)), ("c.mp4", ("SA",))],
    ]
    assert got[0]["SA"].cached and not got[0]["gravity"].cached and got[2]["SA"].cached
    assert isinstance(got[1]["SA"], VideoError)
    cached.close()


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_batch_clips_must_be_a_positive_whole_number(value: str, pytester: pytest.Pytester):
    with pytest.raises(argparse.ArgumentTypeError, match="number of clips per batch"):
        parse_batch_clips(value)
    with pytest.raises(InputError, match="batch_clips=0"):
        JudgeSettings(batch_clips=0)
    result = pytester.runpytest_inprocess(f"--phyjudge-batch-clips={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--phyjudge-batch-clips*number of clips per batch*"])


_BATCH_CONFTEST = """
import json
from pathlib import Path
from pytest_phyjudge import ScriptedJudge

class Counting(ScriptedJudge):
    def _score_clips(self, clips):
        with open("batches.json", "a") as fh:
            fh.write(json.dumps([Path(c.video).name for c in clips]) + "\\n")
        return super()._score_clips(clips)

def reply(axis, caption, video):
    return json.loads(Path(video).read_text()).get(axis, 4)

def pytest_phyjudge_make_judge(config):
    return Counting(reply)
"""


def test_suite_cases_go_to_the_judge_n_clips_at_a_time(kit):
    """``--phyjudge-batch-clips 3``: the first item of a case judges it with the next cases
    whose videos are files, up to 3 clips per ``score_clips`` call (a sampled case counts
    its samples); each case gets its own scores, and a missing clip fails only its case."""
    kit.pytester.makeconftest(_BATCH_CONFTEST)
    for name, score in (("one", 2), ("two", 4), ("four", 5), ("s0", 4), ("s1", 4)):
        kit.clip(name, {"gravity": score})
    cases = [("one", "one"), ("two", "two"), ("three", "missing"), ("four", "four")]
    kit.suite(
        "defaults: {metrics: []}\ncases:\n"
        + "".join(
            f"  - {{id: {cid}, prompt: A ball falls., video: clips/{clip}.mp4, laws: [gravity]}}\n"
            for cid, clip in cases
        )
        + "  - {id: sampled, prompt: A ball falls., video: 'clips/s{sample}.mp4', samples: 2,"
        " laws: [gravity]}\n"
    )
    result = kit.pytester.runpytest_inprocess("--phyjudge-batch-clips", "3", "-rf")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["FAILED *::one::gravity*2*", "FAILED *::three::gravity*"])
    result.stdout.fnmatch_lines(["*missing.mp4*"])
    lines = (kit.pytester.path / "batches.json").read_text().splitlines()
    batches = [json.loads(line) for line in lines]
    assert batches == [["one.mp4", "two.mp4"], ["four.mp4", "s0.mp4", "s1.mp4"]]
    result = kit.pytester.runpytest_inprocess("--phyjudge-cache-mode", "off", "-rf")
    result.assert_outcomes(passed=3, failed=2)  # one clip at a time: the same outcomes
    lines = (kit.pytester.path / "batches.json").read_text().splitlines()
    assert [json.loads(line) for line in lines[2:]] == [
        ["one.mp4"],
        ["two.mp4"],
        ["four.mp4"],
        ["s0.mp4"],
        ["s1.mp4"],
    ]


def test_score_dir_hands_the_judge_n_clips_per_call(capsys, tmp_path: Path, monkeypatch):
    from pytest_phyjudge.cli.main import main

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("drop", "roll", "spin"):
        (videos / f"{name}.mp4").write_bytes(name.encode())
    (videos / "spin.mp4").write_bytes(b"")  # an empty clip: it fails alone
    entries = [
        {"video": n, "prompt": f"A ball {n}s.", "physical_laws": ["gravity"]}
        for n in ("drop", "roll", "spin")
    ]
    (tmp_path / "prompts.json").write_text(json.dumps({"prompts": entries}))
    (tmp_path / "batch_judges.py").write_text(
        "from pathlib import Path\n"
        "from pytest_phyjudge import ScriptedJudge\n\n"
        "BATCHES = []\n\n"
        "class Counting(ScriptedJudge):\n"
        "    def _score_clips(self, clips):\n"
        "        BATCHES.append([Path(c.video).stem for c in clips])\n"
        "        return super()._score_clips(clips)\n\n"
        "def make():\n"
        "    return Counting(lambda axis, caption, video: 1 + len(video.stem))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import batch_judges

    def score_dir(out: str, *extra: str) -> tuple[int, str]:
        args = ["score-dir", "--videos", str(videos), "--prompts", str(tmp_path / "prompts.json")]
        args += ["--out", str(tmp_path / out), "--metrics", "SA", "--judge", "batch_judges:make"]
        try:
            code = main([*args, "--cache-mode", "off", *extra])
        except SystemExit as exc:
            code = int(exc.code)
        return code, capsys.readouterr().err

    code, err = score_dir("two.json", "--batch-clips", "2")
    assert code == 0, err
    assert batch_judges.BATCHES == [["drop", "roll"], ["spin"]]
    assert score_dir("one.json")[0] == 0
    assert batch_judges.BATCHES[2:] == [["drop"], ["roll"], ["spin"]]
    two, one = (json.loads((tmp_path / f).read_text()) for f in ("two.json", "one.json"))
    assert [r["SA"] for r in two["results"]] == [5, 5, None] == [r["SA"] for r in one["results"]]
    assert two["results"][2]["physical"]["laws"]["gravity"]["status"] == "failed"
    code, err = score_dir("bad.json", "--batch-clips", "0")
    assert code == 2 and "--batch-clips" in err and "number of clips per batch" in err
