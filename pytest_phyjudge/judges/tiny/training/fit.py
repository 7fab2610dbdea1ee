"""Teach the tiny test judge PhyJudge's reply format, ``{"<axis>": d}``, in a minute on a CPU.

A random tiny judge replies with noise, so greedy dry runs end in unparseable replies and the
verified fast path (judges/local/axes_batch.py) never takes. Here its last layer's LoRA and its head
are fitted so that, after any rubric prompt, its greedy reply is the expected one. Its digits
follow the axis and the clip's brightness: they are MEANINGLESS as physics scores.

The earlier layers stay as built, so what enters the last layer never changes during training.
It is captured once, through the judge's own code: each synthetic clip's prefix is run once,
and each caption's axis rows continue it in one batched call (judges/local/rows.py). A training step
then computes the last layer's keys and values at every position but its queries, attention
and head only at the few reply positions (``reply_logits``; a test checks that this equals the
whole layer). The video's hidden states are noised, so that the reply does not hang on what a
synthetic clip looks like.

Measured: on the six real PhyGround clips, with their own captions and with 24 others, every
axis verifies (README, "The format-trained tiny judge").
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_phyjudge.judges.tiny.layout import write_adapter
from pytest_phyjudge.judges.tiny.training.rows import ClipRows, capture, write_clips

if TYPE_CHECKING:
    from pytest_phyjudge.judges.local.judge import LocalJudge

#: The training's constants; they enter the tiny judge's build key (judges/tiny/recipe.py).
TRAINING_STEPS = 300
LEARNING_RATE = 2e-2
ROWS_PER_STEP = 16
WARMUP_STEPS = 20
GRADIENT_CLIP = 1.0
TRAINING_SEED = 0
#: The video's hidden states get Gaussian noise of this many of their standard deviations.
PREFIX_NOISE = 1.0
#: What enters the last layer at the reply positions gets noise of this many standard
#: deviations: a real clip moves it (the earlier layers read the video), and the reply must hold.
INPUT_NOISE = 0.3
#: The digit's place in the reply tokens ({ " axis " : space digit } end), and its weight in
#: the loss: any digit verifies, but the reply must never break around it.
DIGIT_POSITION = 6
DIGIT_WEIGHT = 0.25
#: The last tokens of a row's text (before its reply) whose keys and values take gradients.
GRADIENT_WINDOW = 128


class _ContextKeys:
    """Stands in for a cache in one attention call: the keys and values given (the positions
    before the reply) come before those the layer computes for the reply positions."""

    def __init__(self, keys: Any, values: Any) -> None:
        self.keys, self.values = keys, values

    def update(self, keys: Any, values: Any, layer_idx: int, **_: Any) -> tuple[Any, Any]:
        import torch

        return torch.cat([self.keys, keys], dim=2), torch.cat([self.values, values], dim=2)


def reply_logits(
    base: Any, inputs: Any, cos: Any, sin: Any, keys: Any, values: Any, seen: Any
) -> Any:
    """The logits at reply positions, computing the last layer there only.

    ``inputs`` [B, R, hidden] enter the last layer at the R reply positions; ``keys`` and
    ``values`` [B, kv_heads, T, head_dim] are its keys and values at the positions before,
    where ``seen`` [B, T] marks the real ones (rows are right padded).
    """
    import torch

    text = base.model.language_model
    width = inputs.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool, device=inputs.device).tril()
    mask = torch.cat([seen[:, None, :].expand(-1, width, -1), causal.expand(len(seen), -1, -1)], -1)
    hidden = text.layers[-1](
        inputs,
        position_embeddings=(cos, sin),
        attention_mask=mask[:, None],
        cache=_ContextKeys(keys, values),
    )
    return base.lm_head(text.norm(hidden))


def context_keys(base: Any, hidden: Any, cos: Any, sin: Any) -> tuple[Any, Any]:
    """The last layer's keys and values [B, kv_heads, T, head_dim] for ``hidden`` [B, T,
    hidden] entering it, as its attention computes them (a test checks the two agree)."""
    from transformers.models.qwen3_5.modeling_qwen3_5 import apply_rotary_pos_emb

    layer = base.model.language_model.layers[-1]
    attention = layer.self_attn
    normed = layer.input_layernorm(hidden)
    shape = (*hidden.shape[:-1], -1, attention.head_dim)
    keys = attention.k_norm(attention.k_proj(normed).view(shape)).transpose(1, 2)
    values = attention.v_proj(normed).view(shape).transpose(1, 2)
    keys, _ = apply_rotary_pos_emb(keys, keys, cos, sin)
    return keys, values


def step_batch(
    base: Any, rows: ClipRows, picked: list[int], generator: Any, noise: float = PREFIX_NOISE
) -> tuple[Any, ...]:
    """``reply_logits``'s arguments for the rows ``picked`` of one clip: keys and values of
    the prefix (its video noised, one draw for the batch) and of each row's text, right
    padded."""
    import torch

    prefix = rows.prefix
    if noise:
        scale = noise * float(prefix[rows.video].std())
        jitter = torch.randn(prefix.shape, generator=generator) * scale
        prefix = torch.where(rows.video[:, None], prefix + jitter, prefix)
    keys, values = context_keys(base, prefix[None], rows.prefix_cos[None], rows.prefix_sin[None])
    keys, values = [keys.expand(len(picked), -1, -1, -1)], [values.expand(len(picked), -1, -1, -1)]
    seen = [torch.ones(len(picked), prefix.shape[0], dtype=torch.bool)]
    # A row's text before its last GRADIENT_WINDOW tokens takes no gradient (the keys there
    # are still today's): most of the cost of a step, for the least of what it teaches.
    for late in (False, True):
        parts = []
        for part in (rows.text, rows.text_cos, rows.text_sin):
            cuts = [max(0, len(part[i]) - GRADIENT_WINDOW) for i in picked]
            parts.append(
                [
                    part[i][cut:] if late else part[i][:cut]
                    for i, cut in zip(picked, cuts, strict=True)
                ]
            )
        lengths = torch.tensor([len(p) for p in parts[0]])
        padded = [torch.nn.utils.rnn.pad_sequence(p, batch_first=True) for p in parts]
        with torch.enable_grad() if late else torch.no_grad():
            own_keys, own_values = context_keys(base, *padded)
        keys.append(own_keys)
        values.append(own_values)
        seen.append(torch.arange(padded[0].shape[1])[None, :] < lengths[:, None])
    index = torch.tensor(picked)
    inputs = rows.inputs[index]
    if noise and INPUT_NOISE:
        inputs = _jitter(inputs, INPUT_NOISE * float(rows.inputs.std()), generator)
    return (
        inputs,
        rows.cos[index],
        rows.sin[index],
        torch.cat(keys, dim=2),
        torch.cat(values, dim=2),
        torch.cat(seen, dim=1),
    )


def _jitter(tensor: Any, scale: float, generator: Any) -> Any:
    import torch

    return tensor + torch.randn(tensor.shape, generator=generator) * scale


def trainable(judge: LocalJudge) -> list[Any]:
    """The last layer's LoRA and the head."""
    base = judge.model.get_base_model()
    index = len(base.model.language_model.layers) - 1
    params = [
        p
        for name, p in judge.model.named_parameters()
        if f"layers.{index}." in name and "lora_" in name
    ]
    return [*params, base.lm_head.weight]


def train(judge: LocalJudge, clips: list[ClipRows]) -> dict:
    """AdamW on the last layer's LoRA and the head; returns the final loss and accuracy."""
    import torch

    base = judge.model.get_base_model()
    params = trainable(judge)
    for p in judge.model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    total = TRAINING_STEPS
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=0.0)
    # A short warm-up, then a cosine decay to zero: a steady descent at a high learning rate.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (
            min(1.0, (step + 1) / WARMUP_STEPS) * 0.5 * (1 + math.cos(math.pi * step / total))
        ),
    )
    generator = torch.Generator().manual_seed(TRAINING_SEED)
    digits = torch.tensor([judge.digit_ids()])
    loss = torch.tensor(0.0)
    for step in range(total):
        rows = clips[step % len(clips)]
        picked = torch.randperm(len(rows.targets), generator=generator)[:ROWS_PER_STEP].tolist()
        logits = reply_logits(base, *step_batch(base, rows, picked, generator))
        losses = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2).float(), rows.targets[picked], reduction="none"
        )
        loss = (losses * _position_weights(losses.shape[1])).mean() + _digit_mass_loss(
            logits[:, DIGIT_POSITION], digits
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, GRADIENT_CLIP)
        optimizer.step()
        schedule.step()
    for p in params:
        p.requires_grad_(False)
    return {"loss": float(loss.detach()), "accuracy": accuracy(judge, clips)}


def _digit_mass_loss(logits: Any, digits: Any) -> Any:
    """Minus the log of the probability that the next token is some digit: what makes the
    argmax a digit, whichever digit it is."""
    import torch

    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return -torch.logsumexp(log_probs.gather(1, digits.expand(len(logits), -1)), dim=1).mean()


def _position_weights(width: int) -> Any:
    """Every reply position counts fully but the digit's, which only has to be some digit."""
    import torch

    weights = torch.ones(width)
    weights[DIGIT_POSITION] = DIGIT_WEIGHT
    return weights


def accuracy(judge: LocalJudge, clips: list[ClipRows]) -> float:
    """The share of training rows whose every reply token is the argmax (noise-free)."""
    import torch

    base = judge.model.get_base_model()
    right = total = 0
    with torch.no_grad():
        for rows in clips:
            everything = list(range(len(rows.targets)))
            logits = reply_logits(base, *step_batch(base, rows, everything, None, noise=0.0))
            right += int((logits.argmax(-1) == rows.targets).all(-1).sum())
            total += len(everything)
    return right / total


def format_train(judge: LocalJudge, adapter_dir: Path, base_dir: Path) -> dict:
    """Fit ``judge`` (the tiny judge just built, loaded on the CPU), then write its LoRA into
    ``adapter_dir`` and its head into ``base_dir``'s weights; returns what training reached
    (the builder marks the folder with it and the build key)."""
    import torch
    from safetensors.torch import load_file, save_file

    with tempfile.TemporaryDirectory(prefix="phyjudge-format-") as scratch:
        clips = [
            capture(judge, path, level, number)
            for number, (path, level) in enumerate(write_clips(Path(scratch)))
        ]
    with torch.enable_grad():
        reached = train(judge, clips)
    write_adapter(judge.model, adapter_dir, base_dir)
    weights = base_dir / "model.safetensors"
    tensors = load_file(weights)
    tensors["lm_head.weight"] = judge.model.get_base_model().lm_head.weight.detach().clone()
    save_file(tensors, weights, metadata={"format": "pt"})
    return {"steps": TRAINING_STEPS, **reached}
