"""What the format-trained tiny judge starts from, before any training step: a random tiny
judge whose last layer can already find the axis a prompt names.

Trained from random weights alone, the last layer learnt to read the axis off the rubric's
wording (an attention probe showed it attending to letters of the text, not to the axis
token), and that did not hold on every real clip. So one attention head is set by hand to
look up the axis token from the reply's opening quote, and the layers before it are made
quieter so that the tokens stay recognisable in what reaches it. Training then has the
axis's identity at hand, and only has to learn to write it out.
"""

from __future__ import annotations

from typing import Any

from pytest_phyjudge.engine.axes import ALL_AXES

#: The full-attention layers' query and key norms start at this gain (Qwen3.5's is 1). At 1,
#: an attention logit is at most sqrt(head_dim), too flat to single out one prompt token
#: among a thousand video tokens; a LoRA cannot change a norm's gain.
ATTENTION_SHARPNESS = 3.0
#: The axis tokens' embeddings share one direction of this norm (about a row's own), the
#: feature the retrieval head's keys read ...
AXIS_MARK = 1.0
#: ... and are this much larger than other tokens' embeddings.
AXIS_SCALE = 3.0
#: What the layers before the last add to the residual stream is scaled by this (their
#: output projections, base and LoRA). At full gain their random outputs are about 15 times
#: the embeddings, and no later layer can tell which token stands where.
EARLY_LAYER_GAIN = 0.1
#: The retrieval head's key weight on the axis direction: large enough that axis tokens
#: stand out, small enough that other tokens' chance alignment with it does not.
RETRIEVAL_GAIN = 1.0
#: The same query and key also fill the slowest rotary pair, at this weight: their product
#: then falls with distance (cos of 0.001 per token), so among several axis tokens the
#: nearest wins: the one in the prompt's example reply, not one the caption happens to name.
RECENCY = 1.0


def prepare_base(model: Any, tokenizer: Any) -> None:
    """Sharper full attention, recognisable axis tokens, quieter early layers, and the
    retrieval head (query head 0 of the last layer); ``model`` is changed in place."""
    import torch

    text = model.model.language_model
    with torch.no_grad():
        for layer in text.layers:
            if hasattr(layer, "self_attn"):
                # Qwen3.5's RMSNorm scales by (1 + weight).
                layer.self_attn.q_norm.weight.fill_(ATTENTION_SHARPNESS - 1.0)
                layer.self_attn.k_norm.weight.fill_(ATTENTION_SHARPNESS - 1.0)
        embeddings = text.embed_tokens.weight
        ids = tokenizer.convert_tokens_to_ids(list(ALL_AXES))
        direction = torch.randn(embeddings.shape[1])
        direction /= direction.norm()
        typical = float(embeddings.norm(dim=1).mean())
        embeddings[ids] = (embeddings[ids] + direction * typical * AXIS_MARK) * AXIS_SCALE
        for projection in early_outputs(model):
            projection.weight.mul_(EARLY_LAYER_GAIN)
        quote = embeddings[tokenizer.convert_tokens_to_ids('"')]
        _retrieval_head(model, direction, quote / quote.norm())


def _retrieval_head(model: Any, axis_direction: Any, quote_direction: Any) -> None:
    """Query head 0 of the last layer: its query is one unrotated dimension, positive where
    the token is a double quote (the reply's ``{"`` comes just before the axis); its key
    head's value in that dimension follows the axis direction. After the 3x norms, the
    example reply's axis token scores about 45, an axis named 1,000 tokens earlier about 35,
    and another token about 15."""
    attention = model.model.language_model.layers[-1].self_attn
    head_dim = attention.head_dim
    config = model.config.get_text_config()
    rotated = int(head_dim * config.rope_parameters.get("partial_rotary_factor", 1.0))
    dimension = rotated  # the first dimension that rotary positions leave alone
    slowest = rotated // 2 - 1  # rotated with dimension slowest + rotated // 2
    # q_proj gives each head [query, gate]; head 0's query is rows 0..head_dim-1, and query
    # heads 0 and 1 read key head 0 (rows 0..head_dim-1 of k_proj).
    attention.q_proj.weight[:head_dim] = 0.0
    attention.q_proj.weight[dimension] = quote_direction
    attention.q_proj.weight[slowest] = RECENCY * quote_direction
    attention.k_proj.weight[dimension] = RETRIEVAL_GAIN * axis_direction
    attention.k_proj.weight[slowest] = RETRIEVAL_GAIN * RECENCY * axis_direction


def prepare_adapter(peft_model: Any) -> None:
    """The LoRA half: the early layers' output projections get EARLY_LAYER_GAIN too, and the
    last layer's LoRA starts at zero (it is what training fits; a random one would blur
    the retrieval head before the first step)."""
    import torch

    base = peft_model.get_base_model()
    with torch.no_grad():
        for projection in early_outputs(base):
            for lora_b in projection.lora_B.values():
                lora_b.weight.mul_(EARLY_LAYER_GAIN)
        for module in base.model.language_model.layers[-1].modules():
            for lora_b in getattr(module, "lora_B", {}).values():
                lora_b.weight.zero_()


def early_outputs(model: Any) -> list[Any]:
    """The output projections of every layer but the last (token mixer and MLP)."""
    outputs = []
    for layer in list(model.model.language_model.layers)[:-1]:
        mixer = layer.linear_attn if hasattr(layer, "linear_attn") else layer.self_attn
        outputs += [getattr(mixer, "out_proj", None) or mixer.o_proj, layer.mlp.down_proj]
    return outputs
