"""LhamaModel: vision tower + projector + decoder LM, joined in one short forward.

Follow an image from pixels to logits::

    pixel_values (n, 3, H, W)
      -> encode_images        (n, N, D_vision)   chosen hidden layer, CLS dropped
      -> multi_modal_projector (n, N, D)         decoder width
      -> merge_embeds          (B, T, D)         scattered into the <image> rows
      -> language_model        (B, T, V) logits

Attribute names (``vision_tower``, ``multi_modal_projector``, ``language_model``) match the
on-disk layout of transformers' LLaVA, so a state dict converts 1:1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lhama.errors import ModelError
from lhama.model.audio import encode_audio
from lhama.model.config import LhamaConfig
from lhama.model.encoders import encode_images
from lhama.model.merge import merge_embeds


@dataclass(frozen=True)
class MediaBranch:
    """One modality: its placeholder token, how to encode it, and its projector."""

    name: str
    token_id: int
    tower: nn.Module
    projector: nn.Module
    encode: Any  # (tower, media tensor, branch config) -> features
    config: Any


class LhamaModel(nn.Module):
    def __init__(
        self,
        config: LhamaConfig,
        language_model: nn.Module,
        vision_tower: nn.Module | None = None,
        multi_modal_projector: nn.Module | None = None,
        token_ids: Mapping[str, int] | None = None,
        video_modules: tuple[nn.Module, nn.Module] | None = None,  # (video_temporal, video_projector)
    ) -> None:
        super().__init__()
        self.config = config
        self.token_ids = dict(token_ids or {})  # modality -> placeholder token id
        self.language_model = language_model
        if config.image is not None:
            self.vision_tower = vision_tower
            self.multi_modal_projector = multi_modal_projector
        if config.video is not None:
            self.video_temporal, self.video_projector = video_modules

    def branches(self) -> list[MediaBranch]:
        """The configured media branches, in a fixed order."""
        found = []
        if self.config.image is not None:
            found.append(
                MediaBranch("image", self.token_ids["image"], self.vision_tower,
                            self.multi_modal_projector, encode_images, self.config.image)
            )
        if self.config.video is not None:  # frames go through the image branch's tower
            found.append(
                MediaBranch("video", self.token_ids["video"], self.vision_tower,
                            self.video_projector, self.video_temporal.encode, self.config.video)
            )
        # Audio: a frozen Whisper encoder, pooled; attached by build.add_audio_branch.
        if self.config.audio is not None:
            found.append(
                MediaBranch("audio", self.token_ids["audio"], self.audio_tower,
                            self.audio_projector, encode_audio, self.config.audio)
            )
        return found

    def embed(self, input_ids: torch.Tensor, media: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Token embeddings with every media item scattered into its placeholder rows."""
        embeds = self.language_model.get_input_embeddings()(input_ids)  # (B, T, D)
        media = media or {}
        branches = self.branches()
        unsupported = sorted(set(media) - {b.name for b in branches})
        if unsupported:
            raise ModelError(
                f"this model has no {unsupported[0]} branch (it has: "
                f"{', '.join(b.name for b in branches) or 'text only'}); point --model at a model "
                f"directory with a {unsupported[0]} encoder"
            )
        for branch in branches:
            if branch.name not in media:
                continue
            features = branch.encode(branch.tower, media[branch.name], branch.config)  # (n, N, D_enc)
            media_embeds = branch.projector(features)  # (n, N, D)
            embeds = merge_embeds(embeds, input_ids == branch.token_id, media_embeds, branch.name)
        return embeds

    def forward(
        self,
        input_ids: torch.Tensor,
        media: Mapping[str, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **lm_kwargs: Any,
    ) -> Any:
        """Embed text and media, then run the decoder; returns the LM's output (logits, loss,
        past_key_values). ``media`` maps a modality to its pixels: "image" (n, 3, H, W),
        "video" (n, F, 3, H, W); "audio" -> packed log-mel (n, n_mels + 1, F) (see ``model/audio.py``)."""
        inputs_embeds = self.embed(input_ids, media)
        return self.language_model(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, **lm_kwargs
        )
