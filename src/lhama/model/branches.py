"""The table of media branch kinds: how each modality joins the model.

A branch is an encoder that turns media into features, a projector into the decoder's width,
and a placeholder token whose rows receive the projected tokens (``model/merge.py``). This table
says, for each kind, which :class:`LhamaModel` attributes hold its parts (names follow
transformers' LLaVA for the image branch, so checkpoints convert 1:1), how it encodes a batch,
and how many tokens its placeholder expands to. ``LhamaModel`` and ``LoadedModel`` loop over it;
adding a modality is one encoder module, one entry here, one config field and its placeholder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lhama.model.audio import encode_audio
from lhama.model.config import LhamaConfig
from lhama.model.encoders import encode_images, image_token_count
from lhama.model.video import video_token_count


@dataclass(frozen=True)
class BranchKind:
    """One modality's wiring. ``encode(model, media, config) -> (n, N, D_enc)`` features;
    ``tokens(model, config) -> N``: what its placeholder expands to."""

    name: str
    tower: str  # attribute of the encoder (the video branch shares the image branch's tower)
    projector: str  # attribute of its projector
    encode: Callable[[nn.Module, torch.Tensor, Any], torch.Tensor]
    tokens: Callable[[nn.Module, LhamaConfig], int]
    extra: tuple[str, ...] = ()  # further trained modules of the branch

    @property
    def attributes(self) -> tuple[str, ...]:
        """Every module attribute the branch needs on the model."""
        return (self.tower, self.projector, *self.extra)


def _encode_image(model: nn.Module, pixels: torch.Tensor, config: Any) -> torch.Tensor:
    return encode_images(model.vision_tower, pixels, config)  # (n, N, D_vision)


def _encode_video(model: nn.Module, frames: torch.Tensor, config: Any) -> torch.Tensor:
    return model.video_temporal.encode(model.vision_tower, frames, config)  # (n, Q, D_vision)


def _encode_audio(model: nn.Module, packed: torch.Tensor, config: Any) -> torch.Tensor:
    return encode_audio(model.audio_tower, packed, config)  # (n, K, D_audio)


KINDS: tuple[BranchKind, ...] = (  # in merge order
    BranchKind("image", "vision_tower", "multi_modal_projector", _encode_image,
               lambda m, c: image_token_count(m.vision_tower.config, c.image)),
    BranchKind("video", "vision_tower", "video_projector", _encode_video,
               lambda m, c: video_token_count(m.vision_tower.config, c.image, c.video), extra=("video_temporal",)),
    BranchKind("audio", "audio_tower", "audio_projector", _encode_audio, lambda m, c: c.audio.tokens),
)


def configured(config: LhamaConfig) -> list[tuple[BranchKind, Any]]:
    """(kind, its config) for every branch ``config`` has, in merge order."""
    return [(kind, getattr(config, kind.name)) for kind in KINDS if getattr(config, kind.name) is not None]
