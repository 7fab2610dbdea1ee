"""Many token rows continuing one shared prefix cache in a single forward call, right padded,
with every row's cache left exactly as if that row had run alone (so rows can be fed again)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Prefix:
    """A prefix already run once (batch 1): its cache, its length in tokens, and the offset
    that multimodal rotary positions of text after the video carry (``rope_deltas``)."""

    cache: Any
    length: int
    rope_delta: int


def _linear_attention_layers(model: Any) -> list[Any]:
    """The gated-deltanet mixers of the language tower (their cache is conv + recurrent state)."""
    return [m for m in model.modules() if hasattr(m, "in_proj_qkv") and hasattr(m, "conv1d")]


class RowBatch:
    """Rows that each continue ``prefix``; ``feed`` adds tokens to every row in one forward call.

    Qwen3.5 mixes full-attention layers (a KV cache) with gated-deltanet layers (a causal-conv
    state and a recurrent state). Right padding never changes a real position's output, since
    both are causal; but it does change what the cache holds at the end of a row. So, while a
    call runs, the pad positions are made exact no-ops for the recurrent state (the gate and
    the write strength are driven to zero: ``exp(g) = 1``, ``beta = 0``), the conv state is
    rebuilt from each row's own last real inputs, and later calls mask the pads' keys and
    values out and place each row's tokens at its own rotary positions.
    """

    def __init__(self, model: Any, prefix: Prefix, rows: int, *, pad_id: int) -> None:
        import torch

        self.model = model
        self.base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.pad_id = pad_id
        self.rope_delta = prefix.rope_delta
        self.cache = copy.deepcopy(prefix.cache)
        device = self.base.device
        # One prefix row per batch row, every layer kind at once (KV, conv and recurrent).
        self.cache.reorder_cache(torch.zeros(rows, dtype=torch.long, device=device))
        self.lengths = [prefix.length] * rows  # real tokens per row (its next position)
        self.real = torch.ones(rows, prefix.length, dtype=torch.bool, device=device)
        self.mixers = _linear_attention_layers(self.base)

    def feed(self, rows: Sequence[Sequence[int]], keep: Sequence[Sequence[int]]) -> list[Any]:
        """Run ``rows[i]`` after row i's tokens so far; return, per row, the float logits
        [len(keep[i]), vocab] at the positions ``keep[i]`` (indices into ``rows[i]``)."""
        import torch

        device = self.base.device
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long, device=device)
        new = torch.zeros(len(rows), width, dtype=torch.bool, device=device)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(list(row), dtype=torch.long)
            new[i, : len(row)] = True
        starts = torch.tensor(self.lengths, device=device)[:, None]
        text = starts + torch.arange(width, device=device)[None, :]
        # Text after the video: the three multimodal rotary axes all advance with the text.
        positions = torch.stack([text, *(text + self.rope_delta,) * 3])
        padded_past = not bool(self.real.all())
        mask = torch.cat([self.real, new], dim=1).long() if padded_past else None
        before = {m.layer_idx: self.cache.get_conv_state(m.layer_idx).clone() for m in self.mixers}
        with self._pads_are_no_ops(new) as captured, torch.inference_mode():
            hidden = self.base.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                cache=self.cache,
                use_cache=True,
            ).last_hidden_state
        self._restore_conv_states(before, captured, [len(r) for r in rows])
        self.real = torch.cat([self.real, new], dim=1)
        self.lengths = [n + len(r) for n, r in zip(self.lengths, rows, strict=True)]
        picked = [hidden[i, list(k)] for i, k in enumerate(keep)]
        with torch.inference_mode():
            logits = self.base.lm_head(torch.cat(picked)).float()
        return list(torch.split(logits, [len(k) for k in keep]))

    @contextlib.contextmanager
    def _pads_are_no_ops(self, new: Any) -> Iterator[dict[int, Any]]:
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
        for mixer in self.mixers:
            handles.append(mixer.in_proj_a.register_forward_hook(silence))
            handles.append(mixer.in_proj_b.register_forward_hook(silence))
            handles.append(mixer.in_proj_qkv.register_forward_hook(capture(mixer.layer_idx)))
        try:
            yield captured
        finally:
            for handle in handles:
                handle.remove()

    def _restore_conv_states(
        self, before: dict[int, Any], captured: dict[int, Any], fed: list[int]
    ) -> None:
        """Each row's conv state: the last kernel-size inputs up to its own last real token."""
        import torch

        for layer_idx, old in before.items():
            kernel = old.shape[-1]
            inputs = torch.cat([old, captured[layer_idx].transpose(1, 2).to(old.dtype)], dim=-1)
            rows = [inputs[i, :, n : n + kernel] for i, n in enumerate(fed)]
            self.cache.layers[layer_idx].conv_states[0] = torch.stack(rows).contiguous()
