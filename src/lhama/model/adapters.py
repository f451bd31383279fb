"""Training-time surgery on a loaded model: which parameters train, LoRA adapters (peft), gradient
checkpointing, and adapter-only files (projector + LoRA weights) that re-apply to a base model."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lhama.config import from_dict, to_dict
from lhama.errors import CheckpointError, ConfigError, ModelError
from lhama.files import atomic_directory
from lhama.model import branches
from lhama.model.build import LoadedModel, build_model
from lhama.model.config import LhamaConfig, LoraSettings
from lhama.model.generation import GenerationConfig, generation_from_dict, split_legacy

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def set_trainable(model: nn.Module, patterns: tuple[str, ...]) -> int:
    """Train exactly the parameters whose name contains one of ``patterns``; freeze the rest.

    Returns the number of trainable parameters. Raises ModelError if nothing matches."""
    count = 0
    for name, param in model.named_parameters():
        param.requires_grad_(any(p in name for p in patterns))
        count += param.numel() if param.requires_grad else 0
    if count == 0:
        raise ModelError(f"no parameter name contains any of {list(patterns)}: nothing would be trained")
    return count


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Name -> parameter for every parameter that requires a gradient, in module order."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def apply_lora(loaded: LoadedModel, settings: LoraSettings) -> None:
    """Wrap the decoder with peft LoRA adapters (base weights frozen by peft)."""
    from peft import LoraConfig, get_peft_model  # imported here: only training needs peft

    names = {name.rsplit(".", 1)[-1] for name, _ in loaded.model.language_model.named_modules()}
    missing = [t for t in settings.target_modules if t not in names]
    if missing:
        raise ModelError(f"lora.target_modules {missing} are not modules of this decoder; try e.g. [q_proj, v_proj]")
    peft_config = LoraConfig(
        r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules), bias="none",
    )
    loaded.model.language_model = get_peft_model(loaded.model.language_model, peft_config)


def has_lora(loaded: LoadedModel) -> bool:
    return hasattr(loaded.model.language_model, "merge_and_unload")


def merge_lora(loaded: LoadedModel) -> None:
    """Fold the LoRA deltas into the decoder weights and drop the peft wrapper (in place)."""
    if has_lora(loaded):
        loaded.model.language_model = loaded.model.language_model.merge_and_unload()


def enable_gradient_checkpointing(loaded: LoadedModel) -> None:
    """Recompute decoder activations in backward. Non-reentrant, so it works with a frozen
    embedding (stage 1, LoRA) where the inputs carry no gradient."""
    lm = loaded.model.language_model
    lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lm.config.use_cache = False


def is_adapter_key(name: str) -> bool:
    """True for what an adapter-only export holds: every branch kind's trained modules
    (:attr:`~lhama.model.branches.BranchKind.trained`: the image, video and audio projectors, the
    video branch's temporal module, those of a kind registered later), LoRA weights."""
    top = name.split(".", 1)[0]
    return any(top in kind.trained for kind in branches.KIND.values()) or "lora_" in name


def save_adapter(loaded: LoadedModel, out_dir: str | Path, base: str, lora: LoraSettings | None) -> Path:
    """Write projector + LoRA weights and ``adapter_config.json`` (the base model and LoRA
    settings needed to re-apply them), atomically."""
    with atomic_directory(out_dir) as tmp:
        state = {k: v.detach().contiguous() for k, v in loaded.model.state_dict().items() if is_adapter_key(k)}
        save_file(state, tmp / ADAPTER_WEIGHTS, metadata={"format": "pt"})
        info = {"base_model": base, "lora": to_dict(lora) if lora else None, "lhama": branches.config_to_dict(loaded.config),
                "generation": _model_level(loaded.generation)}
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(info, indent=2) + "\n")
    return Path(out_dir)


def export_adapter(src: str | Path, out_dir: str | Path, dtype: torch.dtype = torch.float16,
                   base: str | None = None, settings: Mapping[str, Any] | None = None) -> Path:
    """Copy an adapter written by :func:`save_adapter` for shipping: weights cast to ``dtype``
    (float16 halves the file; LoRA and projector weights lose nothing that shows in the logits at
    that size), and optionally a new ``base_model`` note and new decoding ``settings``
    (:class:`GenerationConfig` keys such as ``system_prompt``, ``image_guidance``; checked)."""
    src = Path(src)
    info = json.loads(_adapter_config_path(src).read_text(encoding="utf-8"))
    if base is not None:
        info["base_model"] = base
    decoding = {**to_dict(adapter_generation_config(src)), **(settings or {})}
    try:
        info["generation"] = _model_level(from_dict(GenerationConfig, decoding))
    except ValueError as exc:
        raise ConfigError(f"invalid decoding setting for the adapter: {exc}") from None
    info["lhama"] = split_legacy(info["lhama"])[0]
    state = {k: v.to(dtype).contiguous() for k, v in load_file(src / ADAPTER_WEIGHTS).items()}
    with atomic_directory(out_dir) as tmp:
        save_file(state, tmp / ADAPTER_WEIGHTS, metadata={"format": "pt"})
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(info, indent=2) + "\n")
    return Path(out_dir)


def _adapter_config_path(adapter_dir: Path) -> Path:
    path = adapter_dir / ADAPTER_CONFIG
    if not path.is_file():
        raise CheckpointError(f"{adapter_dir} has no {ADAPTER_CONFIG}: not a lhama adapter directory")
    return path


def adapter_lhama_config(adapter_dir: str | Path) -> LhamaConfig:
    """The :class:`LhamaConfig` (branches, projectors) an adapter was trained with."""
    path = _adapter_config_path(Path(adapter_dir))
    return branches.config_from_dict(split_legacy(json.loads(path.read_text(encoding="utf-8"))["lhama"])[0])


def adapter_generation_config(adapter_dir: str | Path) -> GenerationConfig:
    """The decoding defaults an adapter ships with (its system prompt, image guidance); an
    adapter written before they had a block of their own kept them in its ``"lhama"`` block."""
    path = _adapter_config_path(Path(adapter_dir))
    info = json.loads(path.read_text(encoding="utf-8"))
    saved = info.get("generation") or split_legacy(info["lhama"])[1]
    return generation_from_dict(saved, str(path))


def _model_level(config: GenerationConfig) -> dict:
    """The decoding settings a model ships with: its system prompt and image guidance."""
    return {"system_prompt": config.system_prompt, "image_guidance": config.image_guidance}


def compose_from_adapter(lm_dir: str | Path, encoder_dirs: Sequence[str | Path], adapter_dir: str | Path) -> LoadedModel:
    """Base LM + pretrained encoders + an adapter (projectors and LoRA), LoRA merged: the model the
    adapter was trained as. ``encoder_dirs``: the encoders of the adapter's branches that open a
    pretrained directory (``BranchFiles.pretrained``: the image branch's tower), in merge order.
    The seed makes the new placeholder embedding rows (drawn at random when the vocabulary grows)
    the ones a training run with ``seed: 0`` drew.

    Raises:
        ConfigError: not one encoder directory for each such branch."""
    config = adapter_lhama_config(adapter_dir)
    kinds = [kind.name for kind, _ in branches.configured(config) if kind.files.pretrained is not None]
    if len(kinds) != len(encoder_dirs):
        raise ConfigError(f"the adapter {adapter_dir} takes {len(kinds)} pretrained encoder(s) "
                          f"({', '.join(kinds) or 'none'}); {len(encoder_dirs)} given")
    torch.manual_seed(0)
    loaded = build_model(lm_dir, dict(zip(kinds, encoder_dirs)), config)
    load_adapter(loaded, adapter_dir)
    merge_lora(loaded)
    loaded.generation = adapter_generation_config(adapter_dir)
    loaded.model.eval()
    return loaded


def load_adapter(loaded: LoadedModel, adapter_dir: str | Path) -> None:
    """Apply an adapter written by :func:`save_adapter` to a freshly loaded base model."""
    adapter_dir = Path(adapter_dir)
    info = json.loads(_adapter_config_path(adapter_dir).read_text(encoding="utf-8"))
    training = loaded.model.training
    if info.get("lora"):
        apply_lora(loaded, from_dict(LoraSettings, info["lora"]))
        loaded.model.train(training)  # new LoRA modules start in train mode (dropout on)
    state = load_file(adapter_dir / ADAPTER_WEIGHTS)
    expected = {k for k in loaded.model.state_dict() if is_adapter_key(k)}
    if set(state) != expected:
        key = sorted(set(state) ^ expected)[0]
        raise CheckpointError(f"adapter {adapter_dir} does not fit this base model (first mismatch: {key})")
    try:
        loaded.model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # same names, other shapes: an adapter for a wider/narrower model
        detail = str(exc).split("\n")[1].strip() if "\n" in str(exc) else str(exc)
        raise CheckpointError(f"adapter {adapter_dir} does not fit this base model ({detail})") from None
