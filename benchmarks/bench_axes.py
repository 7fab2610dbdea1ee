"""How much a 16-axis judgment of one clip costs, five ways: (a) 16 independent prompts, as
the reference script runs them; (b) one shared video prefix + 16 suffixes; (c) shared prefix +
distribution scoring (one forward step per axis, no decode loop); (d) shared prefix + all 16
suffixes in one batch, greedy replies verified by teacher forcing (decoded where that fails);
(e) shared prefix + one batch, distribution scoring.

On random weights no reply verifies, so (d) is measured twice: as it runs (every axis falls
back to decoding), and as "(d) if verified", where the check's outcome is forced to succeed
while every forward call still runs: the cost of a judge whose replies verify (a trained one;
``--trained`` measures the real share on the format-trained tiny judge where it exists).

Prints prompt tokens (text and video apart), forward calls, median wall seconds, median CPU
seconds of this process (what the work costs when other processes share the cores; with
OMP_NUM_THREADS=1 it is the figure to compare on a busy machine), median minor page faults
(memory the allocator had to map afresh; see judges/local/cpu_memory.py), and peak memory per way,
and the ratios a/b and a/c. It is a script that prints figures, not a test:

    python benchmarks/bench_axes.py                          # tiny judge, a real PhyGround clip
    python benchmarks/bench_axes.py --shape medium           # hidden 512, 8 layers: compute-bound
    python benchmarks/bench_axes.py --shape h1024            # hidden 1024, 8 layers
    python benchmarks/bench_axes.py --shape custom --hidden 768 --layers 6
    python benchmarks/bench_axes.py --shape full --device cuda   # the 9B shape, random weights

Every model here has random weights: the figures measure cost, never quality.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = ROOT.parent / "shared" / "phyground" / "videos" / "omniweaving__collision_156.mp4"
SHAPES = {"tiny": (64, 4), "medium": (512, 8), "h1024": (1024, 8)}
CAPTION = (
    "A player hits the ball off the side of the mallet, resulting in an unexpected trajectory."
)


class Counter:
    """Counts forward calls and the tokens they process, from a hook on the inner model."""

    def __init__(self, judge: Any) -> None:
        self.video_token_id = judge.model.get_base_model().config.video_token_id
        inner = judge.model.get_base_model().model
        self.handle = inner.register_forward_pre_hook(self._hook, with_kwargs=True)
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.prefills: list[int] = []
        self.text_tokens = 0
        self.video_tokens = 0

    def _hook(self, _module: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.calls += 1
        if ids is None or ids.shape[1] == 1:
            return  # one decode step: not a prompt token
        self.prefills.append(int(ids.shape[1]))
        video = int((ids == self.video_token_id).sum())
        self.video_tokens += video
        self.text_tokens += int(ids.numel()) - video


def _tiny_like(shape: str, hidden: int, layers: int, device: str) -> Any:
    from pytest_phyjudge import load_judge
    from pytest_phyjudge.testing import build_tiny_judge

    folder = Path(tempfile.mkdtemp(prefix=f"bench-{shape}-"))
    adapter = build_tiny_judge(folder, hidden=hidden, layers=layers, text_tokenizer="bpe")
    return load_judge(adapter, device=device)


def _full_shape(device: str, lora_rank: int = 32) -> Any:
    """Qwen3.5-9B's shape (Qwen3_5Config defaults) with random weights, built in memory."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText
    from transformers.models.qwen3_5 import Qwen3_5Config

    from pytest_phyjudge.engine.adapter import ResolvedAdapter
    from pytest_phyjudge.engine.judgment import JudgeIdentity
    from pytest_phyjudge.engine.rubric import load_rubric
    from pytest_phyjudge.judges.local.judge import LocalJudge
    from pytest_phyjudge.judges.local.loading import JudgePlan
    from pytest_phyjudge.judges.settings import JudgeConfig
    from pytest_phyjudge.judges.tiny.build import tiny_processor, tiny_tokenizer
    from pytest_phyjudge.judges.tiny.recipe import LORA_TARGETS

    tokenizer = tiny_tokenizer("bpe")
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3_5Config(
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    config.text_config.vocab_size = len(tokenizer)
    config.text_config.eos_token_id = ids("<|im_end|>")
    config.vision_config.out_hidden_size = config.text_config.hidden_size
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    lora = LoraConfig(
        r=lora_rank, lora_alpha=2 * lora_rank, target_modules=LORA_TARGETS, init_lora_weights=False
    )
    model = get_peft_model(model, lora).eval()
    identity = JudgeIdentity(kind="random", adapter="random-9B-shape", base="Qwen3_5Config()")
    resolved = ResolvedAdapter(Path("."), "random", None, "Qwen3_5Config()", "")
    plan = JudgePlan(resolved, identity, load_rubric(None), JudgeConfig())
    return LocalJudge(model, tiny_processor(tokenizer), plan=plan, device=device)


def _peak_memory(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (GPU)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (process RSS)"


class ForcedVerification:
    """Wraps the judge's verification so that its check always passes: every forward call
    still runs on the real rows, only the argmax comparison is replaced by the forced tokens
    (digit 3, then end of turn). Measures what (d) costs when replies verify."""

    def __init__(self, judge: Any) -> None:
        from pytest_phyjudge.judges.local import axes_batch

        self.real = axes_batch.verified_replies
        self.stop = judge.model.generation_config.eos_token_id
        self.stop = self.stop if isinstance(self.stop, int) else next(iter(self.stop))

    def __call__(self, feed: Any, prompts: Any, encode: Any, tokens: Any) -> Any:
        calls = 0

        def forced(rows: Any, keep: Any) -> list[Any]:
            import torch

            nonlocal calls
            logits = feed(rows, keep)
            calls += 1
            out = []
            for row, positions, real in zip(rows, keep, logits, strict=True):
                last = tokens.digits[2] if calls == 1 else self.stop
                wanted = [row[j + 1] if j + 1 < len(row) else last for j in positions]
                fake = torch.zeros_like(real)
                fake[range(len(wanted)), wanted] = 1.0
                out.append(fake)
            return out

        budget = type(tokens)(tokens.digits, tokens.stops, 1 << 30)
        return self.real(forced, prompts, encode, budget)


def run_way(
    judge: Any,
    counter: Counter,
    clip: Path,
    axes: list[str],
    runs: int,
    *,
    share: bool,
    scoring: str,
    device: str,
    batch: bool = False,
    forced: bool = False,
) -> dict[str, Any]:
    from pytest_phyjudge.judges.local import judge as local

    judge.config = dataclasses.replace(
        judge.config, share_prefix=share, scoring=scoring, batch_axes=batch
    )
    real_verify = local.verified_replies
    if forced:
        local.verified_replies = ForcedVerification(judge)
    try:
        return _measure(judge, counter, clip, axes, runs, device)
    finally:
        local.verified_replies = real_verify


def _measure(
    judge: Any, counter: Counter, clip: Path, axes: list[str], runs: int, device: str
) -> dict[str, Any]:
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats()
    judge.score_many(clip, CAPTION, axes)  # warm up (and decode the clip once)
    times, cpu, faults = [], [], []
    for _ in range(runs):
        counter.reset()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        started, cpu_started = time.perf_counter(), time.process_time()
        results = judge.score_many(clip, CAPTION, axes)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)
    verified = sum(getattr(r, "greedy", None) == "verified" for r in results.values())
    return {
        "calls": counter.calls,
        "text": counter.text_tokens,
        "video": counter.video_tokens,
        "prefills": list(counter.prefills),
        "seconds": statistics.median(times),
        "cpu": statistics.median(cpu),
        "faults": int(statistics.median(faults)),
        "memory": _peak_memory(device),
        "verified": verified,
    }


def _load(args: argparse.Namespace) -> Any:
    if args.shape == "full":
        return _full_shape(args.device)
    if args.trained:
        from pytest_phyjudge.testing import load_tiny_judge

        # Built once per machine (about a minute), copied here.
        return load_tiny_judge(tempfile.mkdtemp(prefix="bench-trained-"), device=args.device)
    hidden, layers = SHAPES.get(args.shape, (args.hidden, args.layers))
    return _tiny_like(args.shape, hidden, layers, args.device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shapes = ", ".join(f"{name} (hidden {h}, {n} layers)" for name, (h, n) in SHAPES.items())
    parser.add_argument(
        "--shape",
        choices=[*SHAPES, "custom", "full"],
        default="tiny",
        help=f"the model's shape, random weights: {shapes}, custom (--hidden, --layers) or "
        "full (the 9B shape, for a GPU); default: tiny",
    )
    parser.add_argument("--hidden", type=int, default=512, help="with --shape custom")
    parser.add_argument("--layers", type=int, default=8, help="with --shape custom")
    parser.add_argument("--video", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--trained",
        action="store_true",
        help="the format-trained tiny judge (build_tiny_judge(trained=True)) instead of a "
        "random shape: the share of axes verified is then real",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="default 8 on random weights (a real reply, '{\"gravity\": 4}' + end, is about 8 "
        "tokens; a random model never stops, so its replies are capped); with --trained, the "
        "reference's 64 (that judge stops by itself, and its replies must fit to verify)",
    )
    args = parser.parse_args(argv)

    from pytest_phyjudge.engine.axes import ALL_AXES

    if not args.video.is_file():
        print(f"no clip at {args.video}; pass --video PATH", file=sys.stderr)
        return 2
    judge = _load(args)
    if args.max_new_tokens is None:
        args.max_new_tokens = 64 if args.trained else 8
    judge.config = dataclasses.replace(judge.config, max_new_tokens=args.max_new_tokens)
    counter = Counter(judge)
    axes = list(ALL_AXES)
    ways = {
        "a independent": dict(share=False, scoring="greedy"),
        "b shared prefix": dict(share=True, scoring="greedy"),
        "c shared + distribution": dict(share=True, scoring="distribution"),
        "d batch + verified greedy": dict(share=True, scoring="greedy", batch=True),
        "d if verified": dict(share=True, scoring="greedy", batch=True, forced=True),
        "e batch + distribution": dict(share=True, scoring="distribution", batch=True),
    }
    results = {
        name: run_way(judge, counter, args.video, axes, args.runs, device=args.device, **kw)
        for name, kw in ways.items()
    }

    # The same two ways with one generated token: what the shared prefix saves in prefill,
    # without the greedy decode steps that (a) and (b) share.
    judge.config = dataclasses.replace(judge.config, max_new_tokens=1)
    prefill = {
        name: run_way(judge, counter, args.video, axes, args.runs, device=args.device, **kw)
        for name, kw in list(ways.items())[:2]
    }
    _report(args, judge, axes, results, prefill)
    return 0


def _total(r: dict[str, Any]) -> int:
    return r["text"] + r["video"]


def _report(
    args: argparse.Namespace,
    judge: Any,
    axes: list[str],
    results: dict[str, dict[str, Any]],
    prefill: dict[str, dict[str, Any]],
) -> None:
    config = judge.model.get_base_model().config.text_config
    kind = "format-trained tiny judge" if args.trained else "random weights"
    print(
        f"model: {args.shape} (hidden {config.hidden_size}, {config.num_hidden_layers} layers, "
        f"{kind}), device {args.device}, clip {args.video.name}, 16 axes, "
        f"max_new_tokens {args.max_new_tokens}, median of {args.runs} runs"
    )
    print(
        f"{'way':<27}{'text tok':>10}{'video tok':>11}{'total':>9}{'fwd calls':>11}"
        f"{'seconds':>10}{'cpu s':>8}{'faults':>9}{'verified':>10}  peak memory"
    )
    for name, r in results.items():
        print(
            f"{name:<27}{r['text']:>10}{r['video']:>11}{_total(r):>9}{r['calls']:>11}"
            f"{r['seconds']:>10.3f}{r['cpu']:>8.3f}{r['faults']:>9}"
            f"{r['verified']:>7}/{len(axes)}  {r['memory']}"
        )
    a, b, c, d, d_ok, e = results.values()
    per_axis_video = a["video"] // len(axes)
    # The limit, from (a)'s own prompts: the shared prefix once, then each axis's remainder.
    prefix = b["prefills"][0]
    limit = sum(a["prefills"]) - (len(axes) - 1) * prefix
    print(
        f"limit (prefix once + 16 suffixes): {limit} tokens; (b) processed {_total(b)}; "
        f"(a) processed {_total(a)} ({per_axis_video} video tokens re-encoded per axis)"
    )
    for one, other, label in ((a, b, "a/b"), (a, c, "a/c")):
        ratio = _total(one) / _total(other)
        wall = one["seconds"] / other["seconds"]
        print(f"{label}: tokens {ratio:.2f}x, wall {wall:.2f}x (wall/token {wall / ratio:.2f})")
    pa, pb = prefill.values()
    token_ratio = _total(a) / _total(b)
    print(
        f"prefill only (max_new_tokens 1): a {pa['seconds']:.3f} s, b {pb['seconds']:.3f} s, "
        f"wall a/b {pa['seconds'] / pb['seconds']:.2f}x "
        f"(wall/token ratio {pa['seconds'] / pb['seconds'] / token_ratio:.2f})"
    )
    for name, row in (("d if verified", d_ok), ("e", e)):
        ratio = _total(a) / _total(row)
        print(
            f"a/{name}: tokens {ratio:.2f}x, wall {a['seconds'] / row['seconds']:.2f}x "
            f"(expected: wall >= tokens); b/{name}: wall {b['seconds'] / row['seconds']:.2f}x; "
            f"forward calls {row['calls']}"
        )
    print(
        f"CPU seconds: a/(d if verified) {a['cpu'] / d_ok['cpu']:.2f}x (tokens "
        f"{_total(a) / _total(d_ok):.2f}x), (c)/(d if verified) {c['cpu'] / d_ok['cpu']:.2f}x, "
        f"(d if verified)/(e) {d_ok['cpu'] / e['cpu']:.2f}x"
    )
    print(
        f"(d if verified) vs (c): {c['seconds'] / d_ok['seconds']:.2f}x faster (expected > 1); "
        f"(d if verified)/(e): {d_ok['seconds'] / e['seconds']:.2f}x (expected <= 1.1); "
        f"axes verified as run: {d['verified']}/{len(axes)}"
    )


if __name__ == "__main__":
    sys.exit(main())
