"""A labeler whose note depends on which views of an image it averages (test helper).

A random tiny EfficientNet-Lite barely changes its output with the picture, so a single-view
note and a two-view note come out the same and a test could not tell them apart. This tower's
logits are a steep fixed mix of the left half's mean colours minus the right half's, so
mirroring the picture (``squash_flip``) moves the probabilities, and a ``topk`` note prints them.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from PIL import Image
from torch import nn

from lhama.model.labeler import Labeler, LabelerConfig
from tests.model.towers.test_efficientnet_lite import TINY

NAMES = ("galo", "galinha", "pato", "ganso", "gato", "cão", "boi")  # TINY has 7 classes
TWO_VIEWS = LabelerConfig(style="topk", views=("squash", "squash_flip"))


class HalvesTower(nn.Module):
    """The labeler's tower interface (``config``, ``forward`` -> logits and pooled features):
    (n, 3, S, S) -> 6 features (left half's and right half's mean per channel) -> logits."""

    def __init__(self) -> None:
        super().__init__()
        self.config = TINY
        self.head = nn.Linear(6, TINY.num_classes)
        # left minus right, steeply: even a noise picture's halves (means a few 1/1000 apart) differ
        lean = torch.linspace(-1, 1, 3 * TINY.num_classes).reshape(TINY.num_classes, 3) * 2000
        with torch.no_grad():
            self.head.weight.copy_(torch.cat([lean, -lean], dim=1))
            self.head.bias.zero_()

    def forward(self, pixels: torch.Tensor, output_hidden_states: bool = False) -> SimpleNamespace:
        left, right = pixels.chunk(2, dim=-1)
        pooled = torch.cat([left.mean((-2, -1)), right.mean((-2, -1))], dim=-1)  # (n, 6)
        return SimpleNamespace(logits=self.head(pooled), pooler_output=pooled)


def views_labeler(config: LabelerConfig = TWO_VIEWS) -> Labeler:
    return Labeler(HalvesTower().eval(), NAMES, config)


def lopsided_picture(size: tuple[int, int] = (64, 40)) -> Image.Image:
    """Dark on the left, bright on the right: its mirror image reads differently."""
    return Image.linear_gradient("L").rotate(90).resize(size).convert("RGB")
