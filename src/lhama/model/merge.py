"""Scatter projected media embeddings into their placeholder positions."""

from __future__ import annotations

import torch

from lhama.errors import ModelError


def merge_embeds(
    inputs_embeds: torch.Tensor,
    placeholder_mask: torch.Tensor,
    media_embeds: torch.Tensor,
    modality: str,
) -> torch.Tensor:
    """Return ``inputs_embeds`` with the masked rows replaced, in order, by ``media_embeds``.

    Args:
        inputs_embeds: (B, T, D) token embeddings.
        placeholder_mask: (B, T) bool, True at the expanded placeholder positions.
        media_embeds: (n, N, D) projected features of the n media items, N tokens each.
        modality: name used in the error message ("image", "video", "audio").

    Raises:
        ModelError: the number of placeholder positions differs from n * N.
    """
    n_positions = int(placeholder_mask.sum())
    flat = media_embeds.reshape(-1, media_embeds.shape[-1])  # (n * N, D)
    if n_positions != flat.shape[0]:
        n_items, per_item = media_embeds.shape[0], media_embeds.shape[1]
        raise ModelError(
            f"{modality} placeholders and {modality} features do not match: the prompt has "
            f"{n_positions} {modality} token positions, but {n_items} {modality}(s) x "
            f"{per_item} tokens = {flat.shape[0]} features were given"
        )
    mask = placeholder_mask.unsqueeze(-1).expand_as(inputs_embeds)  # (B, T, D)
    return inputs_embeds.masked_scatter(mask, flat.to(inputs_embeds.dtype))
