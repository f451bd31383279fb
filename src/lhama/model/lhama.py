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
from lhama.model.branches import configured
from lhama.model.config import LhamaConfig
from lhama.model.merge import merge_embeds


@dataclass(frozen=True)
class MediaBranch:
    """One modality: its placeholder token, how to encode it, and its projector."""

    name: str
    token_id: int
    tower: nn.Module
    projector: nn.Module
    encode: Any  # (model, media tensor, branch config) -> features
    config: Any


class LhamaModel(nn.Module):
    def __init__(
        self,
        config: LhamaConfig,
        language_model: nn.Module,
        modules: Mapping[str, nn.Module] | None = None,
        token_ids: Mapping[str, int] | None = None,
    ) -> None:
        """``modules``: every configured branch's parts by attribute name (``vision_tower``,
        ``multi_modal_projector``, ``video_temporal``, ``audio_tower``... see ``model/branches.py``);
        ``token_ids``: modality -> placeholder token id.

        Raises:
            ModelError: a configured branch lacks a module or a placeholder token id.
        """
        super().__init__()
        self.config = config
        self.token_ids = dict(token_ids or {})
        self.language_model = language_model
        modules = dict(modules or {})
        for kind, _ in configured(config):
            missing = [a for a in kind.attributes if a not in modules] + ([] if kind.name in self.token_ids else ["token id"])
            if missing:
                raise ModelError(f"the {kind.name} branch needs {', '.join(missing)}; none was given")
        for name, module in modules.items():
            setattr(self, name, module)

    def branch_modules(self) -> dict[str, nn.Module]:
        """Every branch part by attribute name (what ``__init__`` takes as ``modules``)."""
        return {name: module for name, module in self.named_children() if name != "language_model"}

    def branches(self) -> list[MediaBranch]:
        """The configured media branches, in merge order (``model/branches.py``)."""
        return [
            MediaBranch(kind.name, self.token_ids[kind.name], getattr(self, kind.tower),
                        getattr(self, kind.projector), kind.encode, branch_config)
            for kind, branch_config in configured(self.config)
        ]

    def branch(self, kind: str) -> MediaBranch | None:
        """The configured branch of ``kind`` (its token id, tower, projector, encoder and config),
        None when the model has no such branch."""
        return next((branch for branch in self.branches() if branch.name == kind), None)

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
            features = branch.encode(self, media[branch.name], branch.config)  # (n, N, D_enc)
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
