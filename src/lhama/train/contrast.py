"""Image-caption contrast: an auxiliary loss that points each image's projected tokens towards
the words of its own answer rather than the answers of the other images in the batch.

Why: on the next-token loss alone the default model's projector learns one common output for
every image (the prefix that best serves the average caption; per-image mean tokens have a
cosine of 0.94 between images, docs/default-model.md), and what tells images apart is a small
perturbation of it. This term rewards telling images apart directly, in the LM's own input
space: the mean projected token of image i should be closer (cosine) to the mean input
embedding of row i's supervised tokens than to any other row's — a symmetric InfoNCE as in
CLIP, with the frozen word embeddings as the text side, so nothing new is trained or saved.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lhama.data.conversation import IGNORE_INDEX


@dataclass(frozen=True)
class ContrastSettings:
    """What the loop needs for the term: the LM's input embedding, the token ids to skip."""

    weight: float  # of the term, added to the mean next-token loss
    temperature: float
    projector: nn.Module  # whose output holds the image tokens (the image branch's projector)
    image_token_id: int
    embedding: nn.Module  # the LM's input embedding
    skip_ids: frozenset[int]  # special tokens, left out of the answer's mean


@contextlib.contextmanager
def captured_outputs(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect what ``module`` returns during the ``with`` block (forwards in call order), so
    a loss can use the projector's output of the same forward pass that computed the LM loss."""
    outputs: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _module, _inputs, output: outputs.append(output))
    try:
        yield outputs
    finally:
        handle.remove()


def answer_embeds(embedding: nn.Module, labels: torch.Tensor, rows: torch.Tensor,
                  skip_ids: Collection[int]) -> torch.Tensor:
    """(len(rows), D): mean input embedding of each row's supervised tokens, special tokens
    (``<eos>``, end of turn: the same in every row) left out. Constant: no gradient."""
    picked = labels[rows]  # (n, T)
    keep = picked != IGNORE_INDEX
    if skip_ids:
        keep &= ~torch.isin(picked, torch.tensor(sorted(skip_ids), device=picked.device))
    with torch.no_grad():
        embeds = embedding(picked.clamp(min=0)).float()  # (n, T, D)
    weights = keep.unsqueeze(-1).float()
    return (embeds * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def contrastive_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between images and texts paired by index.

    image_embeds: (n, N, D) projected image tokens; text_embeds: (n, D). Returns a scalar:
    the mean of image->text and text->image cross-entropy over cosine similarities / temperature."""
    images = F.normalize(image_embeds.float().mean(dim=1), dim=-1)  # (n, D)
    texts = F.normalize(text_embeds.float(), dim=-1)
    logits = images @ texts.T / temperature  # (n, n)
    targets = torch.arange(len(images), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def image_caption_contrast(projected: torch.Tensor, input_ids: torch.Tensor, labels: torch.Tensor,
                           settings: ContrastSettings) -> torch.Tensor | None:
    """The contrast of one micro batch, or None when fewer than two of its rows hold an image.

    ``projected`` (n, N, D) are the batch's image tokens in row order (the collator stacks one
    image per row that has one, in order)."""
    rows = (input_ids == settings.image_token_id).any(dim=1).nonzero().squeeze(1)  # (n,)
    if len(rows) < 2 or len(rows) != len(projected):
        return None
    texts = answer_embeds(settings.embedding, labels, rows, settings.skip_ids)
    return contrastive_loss(projected, texts, settings.temperature)
