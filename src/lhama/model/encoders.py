"""Encoder towers -> features. A tower is any Hugging Face vision model (CLIP, SigLIP, ...)
that returns ``hidden_states`` when asked; lhama keeps it unwrapped so its weight names stay
those of transformers."""

from __future__ import annotations

import torch
from torch import nn

from lhama.model.config import ImageConfig


def has_cls_token(vision_config: object) -> bool:
    """CLIP-style towers prepend a CLS token; SigLIP-style towers do not."""
    return str(getattr(vision_config, "model_type", "")).startswith("clip")


def image_token_count(vision_config: object, config: ImageConfig) -> int:
    """Number of tokens one image becomes, i.e. how far ``<image>`` expands."""
    grid = int(vision_config.image_size) // int(vision_config.patch_size)
    cls = 1 if has_cls_token(vision_config) else 0
    drop = cls if config.select == "patch" else 0
    return grid * grid + cls - drop


def encode_images(tower: nn.Module, pixel_values: torch.Tensor, config: ImageConfig) -> torch.Tensor:
    """(n, 3, H, W) pixels -> (n, N, D_vision) features of the configured hidden layer."""
    outputs = tower(pixel_values, output_hidden_states=True)
    features = outputs.hidden_states[config.feature_layer]  # (n, N + cls, D_vision)
    if config.select == "patch" and has_cls_token(tower.config):
        features = features[:, 1:]
    return features
