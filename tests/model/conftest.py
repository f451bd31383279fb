"""Fixtures of the model tests: the labeler's ImageNet view (names, kinds) and class probabilities with a chosen top-1."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from lhama.model.towers.imagenet_kinds import TABLE as KINDS
from lhama.model.towers.imagenet_kinds import KindIndex
from lhama.model.towers.imagenet_names import TABLE, class_names


@dataclass(frozen=True)
class ImageNetView:
    names: list[str]
    kinds: KindIndex

    def top1(self, p: float) -> torch.Tensor:
        """Probabilities over the 1,000 classes: ``p`` on class 0, the rest spread evenly."""
        probs = torch.full((len(self.names),), (1 - p) / (len(self.names) - 1))
        probs[0] = p
        return probs


@pytest.fixture(scope="module")
def imagenet() -> ImageNetView:
    names = class_names(TABLE)
    return ImageNetView(names, KindIndex.load(KINDS, len(names)))
