"""phyjudge merge: the LoRA folded into its base gives the judge's own logits and tokens."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_phyjudge.cli.main import main
from pytest_phyjudge.engine.video import decode_video, video_element
from pytest_phyjudge.judges.remote.contract import PROVENANCE_FILE


def test_merged_tiny_judge_equals_base_plus_adapter(
    tiny_judge, tiny_adapter: Path, synthetic_video: Path, tmp_path: Path, capsys
):
    import torch
    from transformers import AutoModelForImageTextToText

    out = tmp_path / "merged"
    args = ["merge", "--adapter-dir", str(tiny_adapter), "--out", str(out), "--dtype", "float32"]
    assert main(args) == 0
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", PROVENANCE_FILE, "subq+human.yaml"} <= names
    assert not any(name.endswith((".bin", ".pt")) for name in names)
    provenance = json.loads((out / PROVENANCE_FILE).read_text())
    assert provenance["adapter_sha256"] == tiny_judge.identity.adapter_sha256
    assert provenance["base"] == tiny_judge.identity.base

    merged = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32).eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    prompt = tiny_judge.render("A ball falls.", law="gravity")
    element = video_element(synthetic_video, fps=2.0, max_pixels=360 * 640)
    inputs = tiny_judge.encode(
        decode_video(synthetic_video), tiny_judge.chat_text(prompt.messages(element))
    )
    with torch.inference_mode():
        expected = tiny_judge.model(**inputs).logits
        got = merged(**inputs).logits
        # Merging reorders float sums (W x + B A x against (W + B A) x): equal to ~1e-4.
        assert torch.allclose(got, expected, atol=1e-3, rtol=1e-4)
        greedy = {
            "do_sample": False,
            "max_new_tokens": 16,
            "temperature": None,
            "top_p": None,
            "top_k": None,
        }
        ids_judge = tiny_judge.model.generate(**inputs, **greedy)
        ids_merged = merged.generate(**inputs, **greedy)
    assert torch.equal(ids_judge, ids_merged)

    # A folder that already holds files is refused, so no two models get mixed.
    assert main(args) == 2
    assert "already holds files" in capsys.readouterr().err
