"""Warm-up then cosine decay; AdamW sees only trainable parameters."""

from __future__ import annotations

import pytest
from torch import nn

from lhama.train.config import OptimConfig
from lhama.train.optim import build_optimizer, lr_factor


def test_warmup_then_cosine_to_zero() -> None:
    cfg = OptimConfig(warmup_ratio=0.1)
    factors = [lr_factor(s, 100, cfg) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[55] == pytest.approx(0.5)
    assert factors[-1] < 0.001 and all(a >= b for a, b in zip(factors[9:], factors[10:]))


def test_optimizer_skips_frozen_and_exempts_biases_from_decay() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    model[0].requires_grad_(False)
    opt = build_optimizer(model, OptimConfig(weight_decay=0.1))
    groups = {g["weight_decay"]: g["params"] for g in opt.param_groups}
    assert groups[0.1] == [model[1].weight] and groups[0.0] == [model[1].bias]
