"""Planning and loading the in-process judge: what it will be is known without a model (enough
to render prompts and key the cache); the model comes up only when a judgment is needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_phyjudge._exceptions import JudgeLoadError
from pytest_phyjudge.engine.adapter import (
    DEFAULT_ADAPTER,
    ResolvedAdapter,
    is_tiny_judge,
    resolve_adapter,
)
from pytest_phyjudge.engine.extras import (
    MODEL_MODULES,
    peft_quietly,
    quiet_cpu_kernel_notices,
    require_local,
)
from pytest_phyjudge.engine.judgment import JudgeIdentity
from pytest_phyjudge.engine.rubric import Rubric, load_rubric
from pytest_phyjudge.engine.video import DEFAULT_FPS, DEFAULT_MAX_PIXELS, require_sampler
from pytest_phyjudge.judges.local.cpu_memory import keep_freed_memory
from pytest_phyjudge.judges.local.judge import LocalJudge
from pytest_phyjudge.judges.settings import (
    DEFAULT_MAX_NEW_TOKENS,
    PYTEST_SURFACE,
    JudgeConfig,
    Surface,
    check_scoring,
    torch_dtype_name,
)

#: Above this many parameters a CPU run takes minutes per axis: ask before crawling.
CPU_PARAMETER_LIMIT = 1_000_000_000


def _estimate_parameters(config: Any) -> int:
    """A rough parameter count of a Qwen-style config, without building the model."""
    text = getattr(config, "text_config", config)
    hidden = int(getattr(text, "hidden_size", 0) or 0)
    layers = int(getattr(text, "num_hidden_layers", 0) or 0)
    inter = int(getattr(text, "intermediate_size", 0) or 0)
    vocab = int(getattr(text, "vocab_size", 0) or 0)
    return layers * (4 * hidden * hidden + 3 * hidden * inter) + 2 * vocab * hidden


def _pick_device(
    device: str | None, config: Any, base: str, surface: Surface = PYTEST_SURFACE
) -> str:
    import torch

    if device is not None:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise JudgeLoadError(
                f"device={device!r} was asked for, but torch sees no CUDA device. Use a GPU "
                "machine, or device='cpu' (slow for the 9B judge)."
            )
        return device
    if torch.cuda.is_available():
        return "cuda"
    params = _estimate_parameters(config)
    if params > CPU_PARAMETER_LIMIT:
        raise JudgeLoadError(
            f"The judge's base model {base!r} has about {params / 1e9:.0f} B parameters and this "
            "machine has no CUDA device. PhyJudge-9B needs a GPU with about 24 GB of memory "
            "(bf16). Alternatives: run on a GPU machine and replay its judgments here, use the "
            f"tiny test judge for a dry run ({surface.flag('judge', 'tiny')}), or force it with "
            f"device='cpu' ({surface.flag('device', 'cpu')}) and expect minutes per axis."
        )
    return "cpu"


def _pick_dtype(dtype: str | None, device: str) -> Any:
    import torch

    name = torch_dtype_name(dtype)
    if name is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, name)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""


@dataclass(frozen=True)
class JudgePlan:
    """A local judge as it will be, known without loading a model: the adapter snapshot,
    the identity, the rubric and the settings. Enough to render prompts and key the cache;
    ``load()`` brings up the model when a judgment is really needed."""

    adapter: ResolvedAdapter
    identity: JudgeIdentity
    rubric: Rubric
    config: JudgeConfig = field(default_factory=JudgeConfig)

    @property
    def settings(self) -> dict[str, Any]:
        """The config as plain values (what the cache records beside a judgment)."""
        return self.config.as_settings()

    def _base_config(self, surface: Surface = PYTEST_SURFACE) -> Any:
        from transformers import AutoConfig

        base, folder = self.adapter.base_model, self.adapter.folder
        try:
            return AutoConfig.from_pretrained(base, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise JudgeLoadError(
                f"Cannot load the configuration of the base model {base!r} named by "
                f"{folder / 'adapter_config.json'} ({type(exc).__name__}: {_first_line(exc)}). "
                f"Pre-download it ('hf download {base}') into the Hugging Face cache, or pass a "
                f"local folder with {surface.flag('base-model')}."
            ) from exc

    def load(
        self,
        *,
        device: str | None = None,
        dtype: str | None = None,
        device_map: str | dict[str, Any] | None = None,
        attn_implementation: str | None = None,
        threads: int | None = None,
        surface: Surface = PYTEST_SURFACE,
    ) -> LocalJudge:
        """Bring up base model, processor and adapter on ``device`` (safetensors only, no
        snapshot code run); ``threads`` sets torch's CPU threads for this process;
        ``surface``: whose flags the messages name."""
        require_local("Loading the judge in this process", MODEL_MODULES)
        require_sampler("Loading the judge in this process")
        import torch
        from peft import PeftModel
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if threads is not None:
            torch.set_num_threads(threads)

        base, folder = self.adapter.base_model, self.adapter.folder
        device = _pick_device(device, self._base_config(surface), base, surface)
        torch_dtype = _pick_dtype(dtype, device)
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                base,
                dtype=torch_dtype,
                device_map=device_map if device_map is not None else device,
                attn_implementation=attn_implementation,
                use_safetensors=True,
                trust_remote_code=False,
            )
            processor = AutoProcessor.from_pretrained(base, trust_remote_code=False)
            with peft_quietly():
                model = PeftModel.from_pretrained(model, str(folder), is_trainable=False)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise JudgeLoadError(
                f"Cannot load the judge (base {base!r}, adapter {str(folder)!r}): "
                f"{type(exc).__name__}: {_first_line(exc)}. Check that the base holds "
                "safetensors weights and a processor, and that the adapter was trained on that "
                "base."
            ) from exc
        model.eval()
        if device == "cpu":
            keep_freed_memory()  # big activations reused, not page-faulted in per layer
            quiet_cpu_kernel_notices()
        return LocalJudge(model, processor, plan=self, device=device)


def plan_judge(
    adapter: str | Path = DEFAULT_ADAPTER,
    *,
    revision: str | None = None,
    base_model: str | None = None,
    config: JudgeConfig | None = None,
) -> JudgePlan:
    """Resolve the adapter and read its rubric, without loading any model (see load_judge);
    ``config`` says how the judge will judge (default: the reference's way)."""
    resolved = resolve_adapter(adapter, revision=revision, base_model=base_model)
    identity = JudgeIdentity(
        kind="tiny" if is_tiny_judge(resolved.folder) else "local",
        adapter=resolved.adapter_id,
        revision=resolved.revision,
        base=resolved.base_model,
        adapter_sha256=resolved.weights_sha256,
    )
    rubric = load_rubric(resolved.folder)
    return JudgePlan(resolved, identity, rubric, config or JudgeConfig())


def load_judge(
    adapter: str | Path = DEFAULT_ADAPTER,
    *,
    revision: str | None = None,
    base_model: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    device_map: str | dict[str, Any] | None = None,
    attn_implementation: str | None = None,
    threads: int | None = None,
    fps: float = DEFAULT_FPS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    share_prefix: bool = True,
    scoring: str = "greedy",
    batch_axes: bool = True,
) -> LocalJudge:
    """Load PhyJudge the way its reference script does, ready to score videos.

    ``adapter`` is a local folder or a hub id (default: PhyJudge-9B); the base model comes
    from its ``adapter_config.json`` unless ``base_model`` is given. Weights load as
    safetensors only and no code from any snapshot is run. With no CUDA device a large base
    refuses to load unless ``device="cpu"`` is passed explicitly. Needs the ``[local]`` extra.

    ``share_prefix`` lets ``score_many`` run the video once for all axes (same replies, fewer
    tokens); ``batch_axes`` then runs all the axes' suffixes as one batch over it (2 forward
    calls per clip with distribution scoring; 3 with greedy, whose replies are verified, or
    decoded for an axis where verification fails). ``scoring="distribution"`` reads the
    probabilities of the digits 1-5 after the forced answer prefix instead of generating; the
    default, ``greedy``, is the reference. ``threads`` sets torch's CPU threads (the
    process-wide setting; None leaves it be).
    """
    config = JudgeConfig(
        fps=fps,
        max_pixels=max_pixels,
        max_new_tokens=max_new_tokens,
        scoring=check_scoring(scoring),
        share_prefix=share_prefix,
        batch_axes=batch_axes,
    )
    plan = plan_judge(adapter, revision=revision, base_model=base_model, config=config)
    return plan.load(
        device=device,
        dtype=dtype,
        device_map=device_map,
        attn_implementation=attn_implementation,
        threads=threads,
    )
