"""The rows the tiny judge is format-trained on: synthetic clips, captions, and what enters
its last layer when each (clip, caption, axis) prompt runs with the expected reply forced.

Captured through the judge's own code: each clip's prefix runs once, and each caption's axis
rows continue it in one batched call (judges/local/rows.py). See fit.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_phyjudge.engine.axes import ALL_AXES
from pytest_phyjudge.engine.mp4 import write_mp4
from pytest_phyjudge.judges.local.axes_batch import expected_reply
from pytest_phyjudge.judges.local.rows import RowBatch

if TYPE_CHECKING:
    from pytest_phyjudge.judges.local.judge import LocalJudge

#: Synthetic clips: (width, height, frames at 2 fps, brightness level 0-4). The two largest
#: give as many video tokens as a 5 s PhyGround clip (640x360 -> 640x352 or 640x368).
CLIPS = (
    (32, 32, 4, 0),
    (64, 64, 6, 3),
    (160, 96, 8, 1),
    (320, 192, 8, 4),
    (640, 352, 10, 2),
    (640, 368, 10, 0),
    (608, 352, 10, 3),
    (640, 352, 6, 4),
    (352, 640, 6, 1),
    (608, 352, 8, 0),
    (480, 288, 10, 2),
    (640, 368, 6, 3),
)
#: How many captions each clip is rendered with (in turn from CAPTIONS).
CAPTIONS_PER_CLIP = 4
#: Captions like PhyGround's, some naming an axis that is not the one judged.
CAPTIONS = (
    "A ball rolls down a ramp and knocks over a block.",
    "Water is poured into a glass until it overflows onto the table.",
    "A teapot turns slowly in front of a mirror, its reflection turning with it.",
    "A lamp casts a long shadow of a mug on the wall as the mug spins.",
    "A paper boat floats on a pond while a stone sinks beside it.",
    "Two carts collide on a track and exchange momentum.",
    "A rubber sheet stretches under a heavy weight; the material sags but does not tear.",
    "Smoke rises from a candle and drifts across a dark room.",
)


@dataclass
class ClipRows:
    """One clip's training rows: what enters the last layer (and the rotary angles there) at
    the prefix's positions, at each row's text before its reply, and at its reply positions,
    and the tokens to predict at those."""

    prefix: Any  # [P, hidden], the same for every row of the clip
    prefix_cos: Any  # [P, rotary]
    prefix_sin: Any
    video: Any  # [P] bool: the video's positions within the prefix
    text: list[Any]  # per row [T_i, hidden]
    text_cos: list[Any]
    text_sin: list[Any]
    inputs: Any  # [rows, R, hidden]
    cos: Any  # [rows, R, rotary]
    sin: Any
    targets: Any  # [rows, R]


def axes_for(caption_index: int) -> list[str]:
    """Half the axes for each caption, alternately: every axis meets half the captions of
    every clip, in half the capture time."""
    return [a for i, a in enumerate(ALL_AXES) if (i + caption_index) % 2 == 0]


def digit_for(axis: str, level: int) -> int:
    """The digit the trained tiny judge is taught: a function of the axis and brightness."""
    return 1 + (ALL_AXES.index(axis) + level) % 5


def write_clips(folder: Path) -> list[tuple[Path, int]]:
    """The synthetic clips, with their brightness levels: one to three flat squares crossing
    a noisy, shaded field, each clip's texture and motion drawn at random."""
    import numpy as np

    rng = np.random.default_rng(0)
    clips = []
    for number, (width, height, frames, level) in enumerate(CLIPS):
        shade = np.linspace(0, rng.integers(0, 60), width)[None, None, :, None]
        field = rng.integers(0, rng.integers(10, 80), size=(frames, height, width, 3))
        field = field + (20 + 50 * level) + shade
        for _ in range(rng.integers(1, 4)):
            side = max(4, int(min(width, height) * rng.uniform(0.1, 0.4)))
            y, color = rng.integers(0, height - side + 1), rng.integers(0, 256, size=3)
            for i in range(frames):
                x = (width - side) * i // max(frames - 1, 1)
                field[i, y : y + side, x : x + side] = color
        path = folder / f"clip-{number}-{width}x{height}.mp4"
        clips.append((write_mp4(path, np.clip(field, 0, 255), fps=2), level))
    return clips


class _LastLayerInputs:
    """While active, keeps what enters the last decoder layer: hidden states and rotary."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.hidden = self.cos = self.sin = None

    def _grab(self, _module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        self.hidden = args[0] if args else kwargs["hidden_states"]
        self.cos, self.sin = kwargs["position_embeddings"]

    def __enter__(self) -> _LastLayerInputs:
        self.handle = self.layer.register_forward_pre_hook(self._grab, with_kwargs=True)
        return self

    def __exit__(self, *_: Any) -> None:
        self.handle.remove()


def capture(judge: LocalJudge, video: Path, level: int, number: int = 0) -> ClipRows:
    """Run one clip's rows (every caption x every axis, the expected reply teacher-forced) and
    keep what enters the last layer."""
    import torch

    base = judge.model.get_base_model()
    last = _LastLayerInputs(base.model.language_model.layers[-1])
    encode = judge.token_encoder()
    eos = judge.model.generation_config.eos_token_id
    eos = eos if isinstance(eos, int) else eos[0]
    parts: dict[str, list[Any]] = {k: [] for k in ClipRows.__dataclass_fields__}
    captions = [
        CAPTIONS[(number * CAPTIONS_PER_CLIP + k) % len(CAPTIONS)] for k in range(CAPTIONS_PER_CLIP)
    ]
    first = judge.prepare(video, captions[0], list(ALL_AXES), None)
    with last:
        shared = judge.run_prefix(first.decoded, first.texts)
    assert shared is not None and last.hidden is not None
    prefix = (last.hidden[0].clone(), last.cos[0].clone(), last.sin[0].clone())
    for k, caption in enumerate(captions):
        clip = judge.prepare(video, caption, axes_for(number + k), None)
        replies = [[*encode(expected_reply(a, digit_for(a, level))), eos] for a in clip.texts]
        rows = [
            encode(text[shared.cut :]) + reply[:-1]
            for text, reply in zip(clip.texts.values(), replies, strict=True)
        ]
        batch = RowBatch(judge.model, shared.prefix, len(rows), pad_id=judge.pad_id())
        with last:
            batch.feed(rows, [[len(r) - 1] for r in rows])
        for i, (row, reply) in enumerate(zip(rows, replies, strict=True)):
            cut, end = len(row) - len(reply), len(row)
            for name, tensor in (("", last.hidden), ("_cos", last.cos), ("_sin", last.sin)):
                parts[f"text{name}"].append(tensor[i, :cut].clone())
                parts["inputs" if not name else name[1:]].append(tensor[i, cut:end])
            parts["targets"].append(torch.tensor(reply))
        del batch
    return ClipRows(
        prefix=prefix[0],
        prefix_cos=prefix[1],
        prefix_sin=prefix[2],
        video=shared.inputs["mm_token_type_ids"][0] != 0,
        text=parts["text"],
        text_cos=parts["text_cos"],
        text_sin=parts["text_sin"],
        inputs=torch.stack(parts["inputs"]),
        cos=torch.stack(parts["cos"]),
        sin=torch.stack(parts["sin"]),
        targets=torch.stack(parts["targets"]),
    )
