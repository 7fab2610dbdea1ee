"""A tiny random diffusers text-to-video pipeline of a real architecture (Wan 2.1's), saved as
a folder in a few seconds, for testing ``pipeline:`` suites on a CPU.

Every component is the class the real Wan2.1-T2V checkpoints use (``WanTransformer3DModel``,
``AutoencoderKLWan``, ``UMT5EncoderModel``, ``FlowMatchEulerDiscreteScheduler``), made from a
tiny config with random weights; the tokenizer is a word-level one made offline with the
``tokenizers`` library and wrapped in a transformers fast tokenizer, so nothing is downloaded.
ITS VIDEOS ARE NOISE: it exists to run the real loading and generation path in seconds.
Needs the ``[generate]`` extra (diffusers, torch, transformers).
"""

from __future__ import annotations

from pathlib import Path

#: What the tiny pipeline makes in well under a second on a CPU: 5 frames of 32x32 in 2 steps.
TINY_PARAMS = {
    "num_frames": 5,
    "height": 32,
    "width": 32,
    "num_inference_steps": 2,
    "guidance_scale": 1.0,
    "max_sequence_length": 16,
}
_WORDS = ("a", "ball", "rolls", "down", "ramp", "and", "knocks", "over", "block", "glass", "falls")


def _tokenizer(folder: Path) -> None:
    """A word-level tokenizer over a few words (others become ``<unk>``), saved as
    ``tokenizer/`` in the form ``PreTrainedTokenizerFast.from_pretrained`` reads."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in _WORDS:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(folder)


def build_tiny_pipeline(folder: str | Path, *, seed: int = 0, ffn_dim: int = 32) -> Path:
    """Save a tiny random Wan text-to-video pipeline in ``folder`` (safetensors only) and
    return it. A few seconds on a CPU; the same ``seed`` gives the same weights.
    ``ffn_dim``: the transformer's feed-forward width, which sets its size almost alone
    (1,000,000 makes about 400 MB of weights that still run in well under a second, for
    measuring memory)."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    _tokenizer(out / "tokenizer")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(out / "tokenizer")
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=32,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=16,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=ffn_dim,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    pipeline = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=transformer,
    )
    import transformers.utils.logging

    quiet = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # its one-shard bar is noise here
    try:
        pipeline.save_pretrained(out, safe_serialization=True)
    finally:
        if quiet:
            transformers.utils.logging.enable_progress_bar()
    return out
