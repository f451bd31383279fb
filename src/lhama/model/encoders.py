"""Encoder towers -> features. A tower is any Hugging Face vision model (CLIP, SigLIP, ...)
that returns ``hidden_states`` when asked; lhama keeps it unwrapped so its weight names stay
those of transformers. lhama's own CNN towers (``model/towers``) follow the same interface;
their config adds ``hidden_state_shapes`` because each of their maps has its own grid and width."""

from __future__ import annotations

import torch
from torch import nn

from lhama.errors import ConfigError
from lhama.model.config import ImageConfig


def has_cls_token(vision_config: object) -> bool:
    """CLIP-style towers prepend a CLS token; SigLIP-style towers do not."""
    return str(getattr(vision_config, "model_type", "")).startswith("clip")


def image_token_count(vision_config: object, config: ImageConfig) -> int:
    """Number of tokens one image becomes, i.e. how far ``<image>`` expands."""
    shape = _layer_shape(vision_config, config)
    if shape is not None:  # a CNN map: one token per cell, no CLS
        return shape[0] * shape[0]
    grid = int(vision_config.image_size) // int(vision_config.patch_size)
    cls = 1 if has_cls_token(vision_config) else 0
    drop = cls if config.select == "patch" else 0
    return grid * grid + cls - drop


def image_feature_width(vision_config: object, config: ImageConfig) -> int:
    """Channels of the chosen hidden layer: the projector's input width."""
    shape = _layer_shape(vision_config, config)
    return int(vision_config.hidden_size) if shape is None else shape[1]


def _layer_shape(vision_config: object, config: ImageConfig) -> tuple[int, int] | None:
    """(grid side, channels) of the chosen layer for towers whose maps differ per layer, else None.

    Raises:
        ConfigError: ``feature_layer`` is outside the tower's hidden states.
    """
    shapes = getattr(vision_config, "hidden_state_shapes", None)
    if shapes is None:
        return None
    if not -len(shapes) <= config.feature_layer < len(shapes):
        raise ConfigError(
            f"image.feature_layer={config.feature_layer} is out of range: this tower has "
            f"{len(shapes)} hidden states (use {-len(shapes)}..{len(shapes) - 1})"
        )
    return tuple(shapes[config.feature_layer])


def encode_images(tower: nn.Module, pixel_values: torch.Tensor, config: ImageConfig) -> torch.Tensor:
    """(n, 3, H, W) pixels -> (n, N, D_vision) features of the configured hidden layer."""
    outputs = tower(pixel_values, output_hidden_states=True)
    features = outputs.hidden_states[config.feature_layer]  # (n, N + cls, D_vision)
    if config.select == "patch" and has_cls_token(tower.config):
        features = features[:, 1:]
    return features
