"""The training loop: steps of gradient accumulation, held-out evaluation, logging, progress
and periodic checkpoints. It knows nothing of stages or model building (see recipes.py).

Loss: token-level cross-entropy summed over the supervised tokens of a whole *global* batch
and divided by their count. Each process scales its part by ``world_size / total`` (DDP
averages gradients), so one process and N processes with the same global batch compute the same
loss and gradients, whatever the split into micro batches.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn
from torch.utils.data import DataLoader

from lhama.data.collate import Batch, Collator, Encoded
from lhama.data.conversation import IGNORE_INDEX
from lhama.train.batches import micro_batches, plan_epoch
from lhama.train.checkpoint import Position, save_checkpoint
from lhama.train.config import TrainConfig
from lhama.train.contrast import ContrastSettings, captured_outputs, image_caption_contrast
from lhama.train.distributed import DistInfo, all_sum
from lhama.train.report import MetricsLog


@dataclass
class LoopParts:
    model: nn.Module  # wrapped (DDP/FSDP) or plain
    raw_model: nn.Module  # unwrapped, for checkpoints
    optimizer: torch.optim.Optimizer
    scheduler: Any
    collator: Collator
    train_items: Sequence[Encoded]
    eval_items: Sequence[Encoded] = ()
    log: MetricsLog | None = None  # rank 0 writes; other ranks may hold None
    contrast: ContrastSettings | None = None  # the image-caption contrast term, when its weight > 0


@dataclass(frozen=True)
class Schedule:
    total: int  # steps of the lr schedule (max_steps, or epochs x steps per epoch)
    stop: int  # where this invocation stops (total, or stop_after)
    per_epoch: int


def steps_per_epoch(parts: LoopParts, cfg: TrainConfig, info: DistInfo) -> int:
    return len(_plan(parts, cfg, info, 0))


def schedule(parts: LoopParts, cfg: TrainConfig, info: DistInfo) -> Schedule:
    per_epoch = steps_per_epoch(parts, cfg, info)
    total = cfg.max_steps or cfg.epochs * per_epoch
    return Schedule(total, min(total, cfg.stop_after) if cfg.stop_after else total, per_epoch)


def train(parts: LoopParts, cfg: TrainConfig, info: DistInfo, start: Position) -> Position:
    """Run from ``start`` to ``max_steps`` (or ``stop_after``); returns the final position."""
    plan = schedule(parts, cfg, info)
    scaler = torch.amp.GradScaler(enabled=_autocast_dtype(cfg, info) == torch.float16)
    position = start
    if start.step == 0 and parts.eval_items:
        _log_eval(parts, cfg, info, 0)
    with _progress(info, cfg) as progress:
        task = progress.add_task("train", total=plan.total, completed=start.step, stats="")
        began = time.perf_counter()
        for batch_list in _steps(parts, cfg, info, position, plan.stop):
            tic = time.perf_counter()
            stats = train_step(parts, batch_list, info, cfg, scaler)
            position = position.advanced(plan.per_epoch)
            row = _row(position, plan.per_epoch, stats, time.perf_counter() - tic, time.perf_counter() - began)
            if parts.log and (position.step % cfg.log_every == 0 or position.step == plan.stop):
                parts.log.write(row)
            progress.update(task, completed=position.step, stats=_stats_text(row))
            _after_step(parts, cfg, info, position, plan)
    return position


def _after_step(parts: LoopParts, cfg: TrainConfig, info: DistInfo, position: Position, plan: Schedule) -> None:
    step = position.step
    if parts.eval_items and (step == plan.total or (cfg.eval_every and step % cfg.eval_every == 0)):
        _log_eval(parts, cfg, info, step)
    if step == plan.stop or (cfg.save_every and step % cfg.save_every == 0):
        pieces = {"model": parts.raw_model, "optimizer": parts.optimizer, "scheduler": parts.scheduler}
        save_checkpoint(cfg.output_dir, pieces, position, info, cfg.keep_checkpoints)


def train_step(parts: LoopParts, batches: list[Batch], info: DistInfo, cfg: TrainConfig, scaler: Any) -> dict[str, float]:
    """One optimizer step over this process's micro batches; returns global loss and counts."""
    model, optimizer = parts.model, parts.optimizer
    model.train()
    total = all_sum(sum(b.target_tokens for b in batches), info)
    loss_sum, contrasts = 0.0, []
    for i, batch in enumerate(batches):
        last = i == len(batches) - 1
        sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            batch = batch.to(info.device)
            summed, contrast = _losses(parts, batch, cfg, info)
            loss = summed * info.world_size / total
            if contrast is not None:
                loss = loss + parts.contrast.weight * contrast / len(batches)
                contrasts.append(float(contrast.detach()))
            scaler.scale(loss).backward()
        loss_sum += float(summed.detach())
    scaler.unscale_(optimizer)
    grad_norm = _clip(model, cfg.optim.max_grad_norm)
    lr = optimizer.param_groups[0]["lr"]
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    parts.scheduler.step()
    contrast_stat = {"contrast": sum(contrasts) / len(contrasts)} if contrasts else {}  # this process's
    return contrast_stat | {
        "loss": all_sum(loss_sum, info) / total, "lr": lr, "grad_norm": grad_norm, "target_tokens": total,
        "tokens": all_sum(sum(int(b.attention_mask.sum()) for b in batches), info),
        "samples": all_sum(sum(len(b.input_ids) for b in batches), info),
    }


def _losses(parts: LoopParts, batch: Batch, cfg: TrainConfig, info: DistInfo) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The summed token loss and, when configured, the image-caption contrast of the same
    forward pass (the projector's output is captured, not recomputed)."""
    settings = parts.contrast
    if settings is None:
        return token_loss_sum(parts.model, batch, cfg, info), None
    with captured_outputs(settings.projector) as projected:
        summed = token_loss_sum(parts.model, batch, cfg, info)
    if not projected:  # no images in the batch: the contrast's projector did not run
        return summed, None
    return summed, image_caption_contrast(torch.cat(projected), batch.input_ids, batch.labels, settings)  # (n, N, D)


def token_loss_sum(model: nn.Module, batch: Batch, cfg: TrainConfig, info: DistInfo) -> torch.Tensor:
    """Sum of next-token cross-entropy over supervised positions (a scalar, float32).

    Only positions whose next token is supervised in some row reach the LM head
    (``logits_to_keep``): with a large vocabulary (Gemma: 262k) the head costs more than the
    decoder, and most positions (prompt, image tokens) carry no loss."""
    targets = batch.labels[:, 1:]  # (B, T-1): the token each position predicts
    positions = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)  # (K,)
    dtype = _autocast_dtype(cfg, info)
    with torch.autocast(info.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        logits = model(batch.input_ids, media=batch.media or None, attention_mask=batch.attention_mask,
                       logits_to_keep=positions).logits  # (B, K, V)
    kept = targets[:, positions]  # (B, K)
    mask = kept != IGNORE_INDEX
    return F.cross_entropy(logits[mask].float(), kept[mask], reduction="sum")


def evaluate(parts: LoopParts, cfg: TrainConfig, info: DistInfo) -> float:
    """Mean token loss over the held-out items (every process computes the same value)."""
    parts.model.eval()
    loss, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(parts.eval_items), cfg.micro_batch_size):
            batch = parts.collator(parts.eval_items[start : start + cfg.micro_batch_size])
            loss += float(token_loss_sum(parts.model, batch.to(info.device), cfg, info))
            tokens += batch.target_tokens
    return loss / max(tokens, 1)


def _log_eval(parts: LoopParts, cfg: TrainConfig, info: DistInfo, step: int) -> None:
    value = evaluate(parts, cfg, info)
    if parts.log:
        parts.log.write({"step": step, "eval_loss": value, "eval_samples": len(parts.eval_items)})


def _plan(parts: LoopParts, cfg: TrainConfig, info: DistInfo, epoch: int) -> list[list[int]]:
    lengths = [len(item.input_ids) for item in parts.train_items]
    batch = cfg.micro_batch_size * cfg.grad_accum * info.world_size
    return plan_epoch(lengths, batch, cfg.seed, epoch, cfg.group_by_length)


def _steps(parts: LoopParts, cfg: TrainConfig, info: DistInfo, position: Position, stop: int):
    """Yield each step's list of this process's micro batches, from ``position`` on."""
    step, epoch, skip = position.step, position.epoch, position.batch
    while step < stop:
        plan = _plan(parts, cfg, info, epoch)[skip:]
        micro = [m for gb in plan for m in micro_batches(gb, cfg.micro_batch_size, cfg.grad_accum, info.world_size, info.rank)]
        loader = DataLoader(parts.train_items, batch_sampler=micro, collate_fn=parts.collator,
                            num_workers=cfg.num_workers, pin_memory=info.device.type == "cuda",
                            generator=torch.Generator().manual_seed(cfg.seed))
        pending: list[Batch] = []
        for batch in loader:  # a fixed generator: creating the loader must not consume the global RNG
            pending.append(batch)
            if len(pending) == cfg.grad_accum:
                yield pending
                pending, step = [], step + 1
                if step >= stop:
                    return
        epoch, skip = epoch + 1, 0


def _clip(model: nn.Module, max_norm: float) -> float:
    params = [p for p in model.parameters() if p.grad is not None]
    if max_norm <= 0 or not params:
        return 0.0
    clip = getattr(model, "clip_grad_norm_", None)  # FSDP must compute the norm over shards
    norm = clip(max_norm) if clip else torch.nn.utils.clip_grad_norm_(params, max_norm)
    return float(norm)


def _autocast_dtype(cfg: TrainConfig, info: DistInfo) -> torch.dtype | None:
    """bf16/fp16 autocast on GPU; on CPU the run stays in float32 (exact and portable)."""
    if info.device.type != "cuda" or cfg.precision == "fp32":
        return None
    return torch.bfloat16 if cfg.precision == "bf16" else torch.float16


def _row(position: Position, per_epoch: int, stats: dict[str, float], step_s: float, elapsed: float) -> dict[str, Any]:
    return {
        "step": position.step, "epoch": round(position.step / per_epoch, 4), "loss": stats["loss"], "lr": stats["lr"],
        "grad_norm": stats["grad_norm"], "tokens": int(stats["tokens"]), "target_tokens": int(stats["target_tokens"]),
        "samples": int(stats["samples"]), "tokens_per_s": stats["tokens"] / step_s,
        "samples_per_s": stats["samples"] / step_s, "step_s": step_s, "elapsed_s": elapsed,
    } | ({"contrast": stats["contrast"]} if "contrast" in stats else {})


def _stats_text(row: dict[str, Any]) -> str:
    contrast = f"  contrast {row['contrast']:.3f}" if "contrast" in row else ""
    return f"loss {row['loss']:.4f}{contrast}  lr {row['lr']:.2e}  {row['tokens_per_s']:.0f} tok/s"


def _progress(info: DistInfo, cfg: TrainConfig) -> Progress:
    return Progress(
        TextColumn("[bold]step"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[stats]}"),
        TextColumn("ETA"), TimeRemainingColumn(), disable=not (info.is_main and cfg.progress),
    )

