"""Optimizer and learning-rate schedule: AdamW over the trainable parameters (no weight decay
on biases and norms), linear warm-up then cosine / linear decay to zero, or constant."""

from __future__ import annotations

import math

import torch
from torch import nn

from lhama.train.config import OptimConfig


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """AdamW on every parameter with ``requires_grad``; 1-D tensors get no weight decay."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr, betas=config.betas)


def lr_factor(step: int, total: int, config: OptimConfig) -> float:
    """Multiplier of the base lr at optimizer step ``step`` (0-based) of ``total``."""
    warmup = math.ceil(config.warmup_ratio * total)
    if step < warmup:
        return (step + 1) / warmup
    if config.schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if config.schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, config: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, config))
