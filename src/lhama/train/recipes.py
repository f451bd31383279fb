"""Recipes: build the parts a :class:`TrainConfig` names, run the loop, save the results.

* :func:`prealign_projector` (stage 0, ``stage: prealign``): tower and LM frozen, the projector
  trained on a caption contrast over cached features (:mod:`lhama.train.prealign`); no LM loss.
* :func:`pretrain_projector` (stage 1, ``stage: align``): tower and LM frozen, projector trained.
* :func:`finetune` (stage 2, ``stage: finetune``): projector + LoRA adapters (``model.lora``),
  or projector + the whole LM when ``model.lora`` is unset.

Outputs under ``output_dir``: ``model/`` (a model directory :func:`lhama.model.build.load_model`
reads; LoRA merged in), ``adapter/`` (projector + LoRA only, with ``save: adapter|both``),
``metrics.jsonl``, ``curves.png``, ``config.yaml`` and ``checkpoints/``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lhama.config import to_dict
from lhama.data.collate import SAMPLE_MEDIA, Collator, Encoded
from lhama.data.dataset import Sample, load_samples, split_samples
from lhama.errors import CheckpointError, ConfigError, DataError
from lhama.model import adapters, build
from lhama.model.branches import KIND, lhama_config
from lhama.model.config import LhamaConfig
from lhama.model.lhama import MediaBranch
from lhama.model.pictures import picture_branch
from lhama.weights.resolve import resolve
from lhama.train import distributed, loop
from lhama.train.checkpoint import Position, latest_checkpoint, load_checkpoint
from lhama.train.config import ModelSpec, TrainConfig
from lhama.train.contrast import ContrastSettings
from lhama.train.optim import build_optimizer, build_scheduler
from lhama.train.prealign import CaptionPairs, cache_pairs, caption_samples, prealign
from lhama.train.report import MetricsLog, plot_curves, read_metrics

Echo = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    output_dir: Path
    steps: int
    final_loss: float | None
    model_dir: Path | None


def find_recipe(spec: str) -> Path:
    """A recipe YAML path, or the name of one shipped in ``lhama/presets/``.

    Raises:
        ConfigError: neither a file nor a preset name (the message lists the presets)."""
    path = Path(spec)
    if path.is_file():
        return path
    presets = Path(__file__).resolve().parents[1] / "presets"
    preset = presets / f"{spec}.yaml"
    if preset.is_file():
        return preset
    names = ", ".join(sorted(p.stem for p in presets.glob("*.yaml")))
    raise ConfigError(f"config {spec!r} is neither a file nor a preset; presets: {names}")


def prealign_projector(cfg: TrainConfig, resume: bool = False, echo: Echo = print) -> RunResult:
    """Stage 0: pre-align the projector of the ``prealign.branch`` kind (the image branch's unless
    set) on caption pairs of its medium (one process; minutes on a CPU)."""
    if cfg.stage != "prealign":
        raise ConfigError(f"prealign_projector needs stage=prealign, got stage={cfg.stage}")
    if resume:
        raise ConfigError("--resume: a prealign run keeps no checkpoints; run it again")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("stage=prealign runs in one process; start it without torchrun")
    _seed_everything(cfg.seed)
    loaded = _load(cfg.model)
    kind = cfg.prealign.branch
    branch = loaded.model.branch(kind)  # its projector is the one pre-aligned
    if branch is None:
        raise ConfigError(f"stage=prealign needs a model with {'an' if kind[:1] in 'aeiou' else 'a'} {kind} branch "
                          "(model.vision for the image tower, model.branches, or an init with one)")
    _train_prealigned(loaded, branch, cfg.train_modules)
    train, held = _caption_pairs(cfg, loaded, branch, echo)
    _write_config(cfg)
    log = MetricsLog(Path(cfg.output_dir) / "metrics.jsonl")

    def write(row: dict) -> None:
        log.write(row)
        echo(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))

    final_loss, steps = prealign(branch.projector, train, held, cfg.prealign, cfg.seed, write)
    model_dir = build.save_model(loaded, Path(cfg.output_dir) / "model")
    echo(f"model saved to {model_dir}")
    return RunResult(Path(cfg.output_dir), steps, final_loss, model_dir)


def _train_prealigned(loaded: build.LoadedModel, branch: MediaBranch, train_modules: tuple[str, ...]) -> None:
    """Train the pre-aligned projector (with ``train_modules``, what they name, which must include it)."""
    projector = KIND[branch.name].projector
    _train_only(loaded, train_modules or (projector,))
    if not any(param.requires_grad for param in branch.projector.parameters()):
        raise ConfigError(f"stage=prealign trains the {branch.name} branch's projector, but train_modules "
                          f"{list(train_modules)} leaves {projector} frozen: add {projector!r} or leave train_modules out")


def _caption_pairs(cfg: TrainConfig, loaded: build.LoadedModel, branch: MediaBranch,
                   echo: Echo) -> tuple[CaptionPairs, CaptionPairs | None]:
    """The training and held-out caption pairs of ``branch``'s media, tower features computed once
    (with a progress bar)."""
    kind, placeholder, prompt = branch.name, branch.config.placeholder, cfg.prealign.prompt
    train_samples, eval_samples = _samples(cfg, loaded, echo)
    train, held = (caption_samples(samples, kind, placeholder, prompt) for samples in (train_samples, eval_samples))
    echo(f"pre-aligning the projector on {len(train)} {kind}-caption pairs ({len(held)} held out)"
         + (f"; samples whose first turn is not {prompt!r} left out: "
            f"{len(train_samples) - len(train)} + {len(eval_samples) - len(held)} held out" if prompt else ""))
    with Progress(TextColumn("tower features"), MofNCompleteColumn(), BarColumn(), TimeRemainingColumn(),
                  disable=not cfg.progress) as bar:
        task = bar.add_task("features", total=len(train) + len(held))
        cached = [cache_pairs(loaded, branch, pairs, progress=lambda n: bar.advance(task, n)) if pairs else None
                  for pairs in (train, held)]
    return cached[0], cached[1]


def pretrain_projector(cfg: TrainConfig, resume: bool = False, echo: Echo = print) -> RunResult:
    """Stage 1: align the projector on image-caption pairs."""
    if cfg.stage != "align":
        raise ConfigError(f"pretrain_projector needs stage=align, got stage={cfg.stage}")
    return _run(cfg, resume, echo)


def finetune(cfg: TrainConfig, resume: bool = False, echo: Echo = print) -> RunResult:
    """Stage 2: instruction tuning with LoRA (model.lora set) or full fine-tuning."""
    if cfg.stage != "finetune":
        raise ConfigError(f"finetune needs stage=finetune, got stage={cfg.stage}")
    return _run(cfg, resume, echo)


def run(cfg: TrainConfig, resume: bool = False, echo: Echo = print) -> RunResult:
    """The recipe the config's ``stage`` names."""
    recipes = {"prealign": prealign_projector, "align": pretrain_projector, "finetune": finetune}
    return recipes[cfg.stage](cfg, resume, echo)


def _run(cfg: TrainConfig, resume: bool, echo: Echo) -> RunResult:
    info = distributed.setup()
    say = echo if info.is_main else (lambda _: None)
    try:
        _check_device(cfg, info)
        _seed_everything(cfg.seed)
        loaded = build_for_training(cfg)
        parts = _loop_parts(cfg, loaded, info, say)
        start = _resume_position(cfg, parts, info, say) if resume else Position()
        if info.is_main:
            parts.log = MetricsLog(Path(cfg.output_dir) / "metrics.jsonl", start.step if resume else None)
            _write_config(cfg)
        end = loop.train(parts, cfg, info, start)
        finished = end.step >= loop.schedule(parts, cfg, info).total
        with distributed.full_weights(parts.model, info):
            model_dir = _export(cfg, loaded, info, finished, say)
        return _result(cfg, end, model_dir)
    finally:
        distributed.cleanup(info)


def _check_device(cfg: TrainConfig, info: distributed.DistInfo) -> None:
    if cfg.model.dtype != "float32" and (info.device.type != "cuda" or cfg.precision == "fp32"):
        raise ConfigError(f"model.dtype={cfg.model.dtype} needs a GPU and precision=bf16 or fp16; use model.dtype=float32")
    if cfg.strategy == "fsdp" and info.distributed and info.device.type != "cuda":
        raise ConfigError("strategy=fsdp needs GPUs (PyTorch's FSDP has no CPU support); use strategy=ddp on CPU")


def build_for_training(cfg: TrainConfig) -> build.LoadedModel:
    """The model, with LoRA applied, only this stage's parameters trainable (kept in float32)."""
    loaded = _load(cfg.model)
    if cfg.collate.system_prompt is not None:
        # the saved model and adapter remember the system prompt it was trained with, so chat
        # and serve prompt it the same way (a model trained with none gets none)
        loaded.generation = replace(loaded.generation, system_prompt=cfg.collate.system_prompt)
    if cfg.stage == "finetune" and cfg.model.lora is not None:
        adapters.apply_lora(loaded, cfg.model.lora)
    _train_only(loaded, cfg.trainable)
    if cfg.model.gradient_checkpointing:
        adapters.enable_gradient_checkpointing(loaded)
    return loaded


def _train_only(loaded: build.LoadedModel, patterns: tuple[str, ...]) -> None:
    """Freeze every parameter except those matching ``patterns``; trained ones in float32."""
    adapters.set_trainable(loaded.model, patterns)
    for param in adapters.trainable_parameters(loaded.model).values():
        param.data = param.data.float()  # master weights in fp32 even over a bf16 base


def _load(spec: ModelSpec) -> build.LoadedModel:
    dtype = build.DTYPES[spec.dtype]
    if spec.init:
        loaded = build.load_model(spec.init, dtype)
        for kind, branch in spec.branches.items():  # grow the branches the model lacks, in merge order
            if kind not in loaded.config.branches:
                loaded = build.add_branch(loaded, kind, branch)
        return loaded
    lm_dir = resolve(spec.lm, spec.lm)
    encoders = {kind: resolve(name, name) for kind, name in spec.encoders.items()}
    try:  # an encoder's branch with its default config unless model.branches sets it
        config = lhama_config(**{**{kind: KIND[kind].config() for kind in encoders}, **spec.branches})
    except ValueError as exc:  # a branch without the one it builds on (video without vision)
        raise ConfigError(f"model.branches: {exc}") from None
    return build.build_model(lm_dir, encoders, config, dtype)


def _loop_parts(cfg: TrainConfig, loaded: build.LoadedModel, info: distributed.DistInfo, say: Echo) -> loop.LoopParts:
    collator = Collator(loaded.tokenizer, loaded.expansions(), loaded.readers(), cfg.collate, loaded.generation.system_prompt)
    train_samples, eval_samples = _samples(cfg, loaded, say)
    train_items, eval_items = _encode(collator, train_samples), _encode(collator, eval_samples)
    model = loaded.model.to(info.device)
    wrapped = distributed.wrap(model, cfg.strategy, info)
    optimizer = build_optimizer(wrapped, cfg.optim)
    parts = loop.LoopParts(wrapped, model, optimizer, None, collator, train_items, eval_items,
                           contrast=_contrast_settings(cfg, loaded))
    total = loop.schedule(parts, cfg, info).total
    parts.scheduler = build_scheduler(optimizer, total, cfg.optim)
    say(f"training {sum(p.numel() for p in adapters.trainable_parameters(model).values()):,} parameters "
        f"on {len(train_items)} samples ({len(eval_items)} held out), {total} steps")
    return parts


def _contrast_settings(cfg: TrainConfig, loaded: build.LoadedModel) -> ContrastSettings | None:
    if cfg.loss.image_caption_contrast == 0:
        return None
    image = picture_branch(loaded)  # its projector's output is contrasted at its placeholder's rows
    if image is None:
        raise ConfigError("loss.image_caption_contrast needs a model with an image branch; set it to 0")
    return ContrastSettings(cfg.loss.image_caption_contrast, cfg.loss.contrast_temperature, image.projector,
                            image.token_id, loaded.model.language_model.get_input_embeddings(),
                            frozenset(loaded.tokenizer.all_special_ids))


def _samples(cfg: TrainConfig, loaded: build.LoadedModel, say: Echo) -> tuple[list[Sample], list[Sample]]:
    kinds = _record_kinds(loaded.config)
    report = load_samples(cfg.data, kinds)
    say(f"data {cfg.data.path}: {report.summary()}")
    train, held = split_samples(report.samples, cfg.data.eval_fraction)
    if cfg.eval_data is not None:
        extra = load_samples(cfg.eval_data, kinds)
        say(f"eval data {cfg.eval_data.path}: {extra.summary()}")
        held = held + extra.samples
    if not train:
        raise DataError(f"{cfg.data.path}: no training samples left after holding out eval_fraction={cfg.data.eval_fraction}")
    return train, held


def _record_kinds(config: LhamaConfig) -> dict[str, str]:
    """The registered branch kinds a data record names by their own key (``Sample.media``: all
    but the Sample fields image, video, audio) -> their placeholder: the model's, else the kind's
    default."""
    own = config.placeholders
    return {name: own.get(name) or kind.config().placeholder for name, kind in KIND.items() if name not in SAMPLE_MEDIA}


def _encode(collator: Collator, samples: Sequence[Sample]) -> list[Encoded]:
    """Tokenise everything up front: a sample with no supervised token stops the run here,
    before any compute is spent (DataError naming it)."""
    return [collator.encode(sample) for sample in samples]


def _resume_position(cfg: TrainConfig, parts: loop.LoopParts, info: distributed.DistInfo, say: Echo) -> Position:
    if cfg.strategy == "fsdp" and info.distributed:
        raise ConfigError("--resume is not supported with strategy=fsdp yet; use strategy=ddp")
    path = latest_checkpoint(cfg.output_dir)
    if path is None:
        raise CheckpointError(f"--resume: no checkpoint under {cfg.output_dir}/checkpoints; start without --resume")
    pieces = {"model": parts.raw_model, "optimizer": parts.optimizer, "scheduler": parts.scheduler}
    position = load_checkpoint(path, pieces, info)
    say(f"resumed from {path} (step {position.step})")
    return position


def _export(cfg: TrainConfig, loaded: build.LoadedModel, info: distributed.DistInfo, finished: bool, say: Echo) -> Path | None:
    """Rank 0 draws the curves and, at the end of the schedule (not at stop_after), writes the
    model directory and/or the adapter."""
    out = Path(cfg.output_dir)
    if not info.is_main:
        return None
    plot_curves(read_metrics(out / "metrics.jsonl"), out / "curves.png")
    if not finished:
        return None
    loaded.model.cpu()
    if cfg.save in ("adapter", "both") and adapters.has_lora(loaded):
        adapters.save_adapter(loaded, out / "adapter", cfg.model.init or cfg.model.lm or "", cfg.model.lora)
    if cfg.save == "adapter" and adapters.has_lora(loaded):
        return None
    adapters.merge_lora(loaded)
    build.save_model(loaded, out / "model")
    say(f"model saved to {out / 'model'}")
    return out / "model"


def _result(cfg: TrainConfig, end: Position, model_dir: Path | None) -> RunResult:
    out = Path(cfg.output_dir)
    rows = [r for r in read_metrics(out / "metrics.jsonl") if "loss" in r] if (out / "metrics.jsonl").is_file() else []
    return RunResult(out, end.step, rows[-1]["loss"] if rows else None, model_dir)


def _write_config(cfg: TrainConfig) -> None:
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
