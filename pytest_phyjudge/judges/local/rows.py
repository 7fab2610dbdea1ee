"""Many token rows continuing one shared prefix cache in a single forward call, right padded,
with every row's cache left exactly as if that row had run alone (so rows can be fed again)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Prefix:
    """Prefixes already run (one per cache row, right padded to the longest): the cache, each
    row's length in real tokens, and the offset that multimodal rotary positions of text after
    its video carry (``rope_deltas``)."""

    cache: Any
    lengths: tuple[int, ...]
    rope_deltas: tuple[int, ...]

    @classmethod
    def single(cls, cache: Any, length: int, rope_delta: int) -> Prefix:
        return cls(cache, (length,), (rope_delta,))

    def row(self, index: int) -> Prefix:
        """Row ``index`` alone (batch 1), its pads cut off the attention layers' keys and
        values: what running that prefix alone leaves. The deltanet states need no cut, the
        pads were no-ops for them."""
        import torch

        cache = rows_of(self.cache, torch.tensor([index]))
        length = self.lengths[index]
        for layer in cache.layers:
            if getattr(layer, "keys", None) is not None and layer.keys.numel():
                layer.keys = layer.keys[..., :length, :]
                layer.values = layer.values[..., :length, :]
        return Prefix.single(cache, length, self.rope_deltas[index])


def rows_of(cache: Any, index: Any) -> Any:
    """A new cache whose row i is row ``index[i]`` of ``cache``, every layer kind at once (KV,
    conv and recurrent); ``cache`` is left as it is. The state tensors are not copied first:
    the row selection makes the new ones. Everything else is copied, bookkeeping tensors
    included: the linear-attention layers count tokens in a tensor they add to in place,
    and a shared one would make ``cache`` claim the new rows' tokens as its own."""
    import torch

    shared = {}
    for layer in cache.layers:
        states = [getattr(layer, "keys", None), getattr(layer, "values", None)]
        states += getattr(layer, "conv_states", {}).values()
        states += getattr(layer, "recurrent_states", {}).values()
        shared.update({id(t): t for t in states if isinstance(t, torch.Tensor)})
    selected = copy.deepcopy(cache, memo=shared)
    selected.reorder_cache(index)  # index_select: moved to each layer's device there
    return selected


def linear_attention_layers(model: Any) -> list[Any]:
    """The gated-deltanet mixers of the language tower (their cache is conv + recurrent state)."""
    return [m for m in model.modules() if hasattr(m, "in_proj_qkv") and hasattr(m, "conv1d")]


class RowBatch:
    """Rows that each continue one row of ``prefix``; ``feed`` adds tokens to every row in one
    forward call.

    Qwen3.5 mixes full-attention layers (a KV cache) with gated-deltanet layers (a causal-conv
    state and a recurrent state). Right padding never changes a real position's output, since
    both are causal; but it does change what the cache holds at the end of a row. So, while a
    call runs, the pad positions are made exact no-ops for the recurrent state (the gate and
    the write strength are driven to zero: ``exp(g) = 1``, ``beta = 0``), the conv state is
    rebuilt from each row's own last real inputs, and later calls mask the pads' keys and
    values out and place each row's tokens at its own rotary positions.
    """

    def __init__(
        self, model: Any, prefix: Prefix, rows: int | Sequence[int], *, pad_id: int
    ) -> None:
        """``rows``: how many rows continue the prefix's only row, or for each row the
        prefix row it continues."""
        import torch

        self.model = model
        self.base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.pad_id = pad_id
        sources = [0] * rows if isinstance(rows, int) else list(rows)
        device = self.base.device
        self.cache = rows_of(prefix.cache, torch.tensor(sources, dtype=torch.long, device=device))
        self.lengths = [prefix.lengths[s] for s in sources]  # real tokens (the next position)
        self.rope_deltas = torch.tensor([prefix.rope_deltas[s] for s in sources], device=device)[
            :, None
        ]
        width = max(prefix.lengths)
        self.real = (
            torch.arange(width, device=device)[None, :]
            < torch.tensor(self.lengths, device=device)[:, None]
        )
        self.mixers = linear_attention_layers(self.base)

    def feed(self, rows: Sequence[Sequence[int]], keep: Sequence[Sequence[int]]) -> list[Any]:
        """Run ``rows[i]`` after row i's tokens so far; return, per row, the float logits
        [len(keep[i]), vocab] at the positions ``keep[i]`` (indices into ``rows[i]``)."""
        import torch

        device = self.base.device
        ids, new = _right_padded(rows, self.pad_id, device)
        width = ids.shape[1]
        starts = torch.tensor(self.lengths, device=device)[:, None]
        text = starts + torch.arange(width, device=device)[None, :]
        # Text after the video: the three multimodal rotary axes all advance with the text.
        positions = torch.stack([text, *(text + self.rope_deltas,) * 3])
        padded_past = not bool(self.real.all())
        mask = torch.cat([self.real, new], dim=1).long() if padded_past else None
        before = {m.layer_idx: self.cache.get_conv_state(m.layer_idx).clone() for m in self.mixers}
        with pads_are_no_ops(self.mixers, new) as captured, torch.inference_mode():
            hidden = self.base.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                cache=self.cache,
                use_cache=True,
            ).last_hidden_state
        restore_conv_states(self.cache, before, captured, [len(r) for r in rows])
        self.real = torch.cat([self.real, new], dim=1)
        self.lengths = [n + len(r) for n, r in zip(self.lengths, rows, strict=True)]
        picked = [hidden[i, list(k)] for i, k in enumerate(keep)]
        with torch.inference_mode():
            logits = self.base.lm_head(torch.cat(picked)).float()
        return list(torch.split(logits, [len(k) for k in keep]))


def _right_padded(rows: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    """The rows as one right-padded id tensor, and the mask of their real positions."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    new = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
        new[i, : len(row)] = True
    return ids.to(device), new.to(device)


def prefill(model: Any, inputs: Sequence[Mapping[str, Any]], *, pad_id: int) -> Prefix:
    """Run several prefixes (each a processor output for one video, batch 1) in one forward
    call, right padded: each row's cache ends as if it had run alone (see RowBatch), with its
    own multimodal rotary positions and offset."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    device = base.device
    ids, real = _right_padded([one["input_ids"][0].tolist() for one in inputs], pad_id, device)
    kinds = torch.zeros_like(ids)
    for i, one in enumerate(inputs):
        kinds[i, : one["mm_token_type_ids"].shape[1]] = one["mm_token_type_ids"][0]
    mixers = linear_attention_layers(base)
    with pads_are_no_ops(mixers, real) as captured, torch.inference_mode():
        out = base.model(
            input_ids=ids,
            attention_mask=real.long(),
            mm_token_type_ids=kinds,
            pixel_values_videos=torch.cat([one["pixel_values_videos"] for one in inputs]),
            video_grid_thw=torch.cat([one["video_grid_thw"] for one in inputs]),
            use_cache=True,
        )
    cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
    lengths = [int(n) for n in real.sum(dim=1).tolist()]
    before = {}
    for mixer in mixers:
        state = cache.get_conv_state(mixer.layer_idx)
        before[mixer.layer_idx] = torch.zeros_like(state)  # a prefill starts from nothing
    restore_conv_states(cache, before, captured, lengths)
    deltas = base.model.rope_deltas.flatten().tolist()
    return Prefix(cache, tuple(lengths), tuple(int(d) for d in deltas))


@contextlib.contextmanager
def pads_are_no_ops(mixers: Sequence[Any], new: Any) -> Iterator[dict[int, Any]]:
    """While one call runs: the deltanet gate projections give -inf at pad positions (no
    decay, no write), and each mixer's conv inputs are captured."""
    captured: dict[int, Any] = {}
    pads = ~new[:, :, None]

    def silence(_module: Any, _args: Any, out: Any) -> Any:
        return out.masked_fill(pads, float("-inf"))

    def capture(layer_idx: int) -> Any:
        def hook(_module: Any, _args: Any, out: Any) -> None:
            captured[layer_idx] = out

        return hook

    handles = []
    padded = not bool(new.all())
    for mixer in mixers:
        if padded:
            handles.append(mixer.in_proj_a.register_forward_hook(silence))
            handles.append(mixer.in_proj_b.register_forward_hook(silence))
        handles.append(mixer.in_proj_qkv.register_forward_hook(capture(mixer.layer_idx)))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def restore_conv_states(
    cache: Any, before: dict[int, Any], captured: dict[int, Any], fed: list[int]
) -> None:
    """Each row's conv state: the last kernel-size inputs up to its own last real token."""
    import torch

    for layer_idx, old in before.items():
        kernel = old.shape[-1]
        inputs = torch.cat([old, captured[layer_idx].transpose(1, 2).to(old.dtype)], dim=-1)
        rows = [inputs[i, :, n : n + kernel] for i, n in enumerate(fed)]
        cache.layers[layer_idx].conv_states[0] = torch.stack(rows).contiguous()
