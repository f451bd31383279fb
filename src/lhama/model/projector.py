"""Projectors: map encoder features to the decoder's embedding width."""

from __future__ import annotations

import torch
from torch import nn

from lhama.model.config import ProjectorConfig


class MultiModalProjector(nn.Module):
    """LLaVA's projector: [``norm`` ->] ``linear_1`` [-> GELU -> ``linear_2``].

    Parameter names match transformers' ``LlavaMultiModalProjector`` so ``mlp2x_gelu`` weights
    without ``norm`` load there unchanged.
    """

    def __init__(self, in_dim: int, out_dim: int, config: ProjectorConfig) -> None:
        super().__init__()
        self.kind = config.kind
        if config.norm == "layernorm":
            self.norm = nn.LayerNorm(in_dim)
        self.linear_1 = nn.Linear(in_dim, out_dim, bias=config.bias)
        if config.kind == "mlp2x_gelu":
            self.act = nn.GELU()
            self.linear_2 = nn.Linear(out_dim, out_dim, bias=config.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(n, N, in_dim) -> (n, N, out_dim)."""
        if hasattr(self, "norm"):
            features = self.norm(features)
        hidden = self.linear_1(features)
        if self.kind == "mlp2x_gelu":
            hidden = self.linear_2(self.act(hidden))
        return hidden
