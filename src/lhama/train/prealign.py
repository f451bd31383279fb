"""Projector pre-alignment ("stage 0"): before any next-token step, teach the projector to put
each image's tokens near the words of its own caption.

Why: on the next-token loss alone the default model's projector sends nearly the same tokens
for every image (docs/default-model.md), although the frozen tower's features are enough to name
a held-out stamp by its nearest training neighbour about one time in four. A contrast term inside
stage 1 (``loss.image_caption_contrast``) sees 7 negatives per step and learned little in one
epoch. Here the tower and the LM's word embeddings are both frozen, so image features and caption
embeddings are computed once; the projector alone then trains for many epochs of the symmetric
InfoNCE of :mod:`lhama.train.contrast` against hundreds of negatives per step — minutes on a CPU,
with no forward through the LM. Stage 1 continues from the result (``model.init``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lhama.data.collate import sample_media
from lhama.data.dataset import Sample
from lhama.errors import DataError
from lhama.model.build import LoadedModel
from lhama.model.lhama import MediaBranch
from lhama.train.config import PrealignConfig
from lhama.train.contrast import contrastive_loss


@dataclass(frozen=True)
class CaptionPairs:
    """Cached inputs of the contrast: tower features and the mean embedding of each caption."""

    features: torch.Tensor  # (n, N, D_vision), float16 to halve the cache
    captions: torch.Tensor  # (n, D_text), float32
    texts: tuple[str, ...]


def caption_samples(samples: Sequence[Sample], kind: str, placeholder: str, prompt: str) -> list[tuple[Sample, str]]:
    """(sample, its first answer) for every sample with a medium of the ``kind`` branch (an image)
    and an answer — only those whose first user turn is ``prompt`` (the kind's ``placeholder``
    aside) when ``prompt`` is set, so question/answer records ("De que cor é a forma?" -> "Azul.")
    stay out of a caption contrast."""
    pairs = []
    for sample in samples:
        users = [m["content"] for m in sample.messages if m["role"] == "user"]
        answers = [m["content"] for m in sample.messages if m["role"] == "assistant"]
        if kind not in sample_media(sample) or not users or not answers:
            continue
        if prompt and users[0].replace(placeholder, "").strip() != prompt:
            continue
        pairs.append((sample, answers[0]))
    return pairs


@torch.no_grad()
def cache_pairs(loaded: LoadedModel, branch: MediaBranch, pairs: Sequence[tuple[Sample, str]], batch_size: int = 32,
                progress: Callable[[int], None] = lambda _: None) -> CaptionPairs:
    """Run ``branch``'s frozen tower (``loaded.model.branch("image")``: the image tower) over every
    pair's medium once and embed every caption once."""
    model = loaded.model
    features = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        media = torch.stack([loaded.read(branch.name, sample_media(s)[branch.name]) for s, _ in chunk])  # (n, 3, S, S)
        features.append(branch.encode(model, media, branch.config).half())  # (n, N, D_vision): before the projector
        progress(len(chunk))
    embedding = model.language_model.get_input_embeddings()  # called: Gemma scales its embeddings
    captions = [embedding(torch.tensor(loaded.tokenizer(text, add_special_tokens=False).input_ids)).float().mean(0)
                for _, text in pairs]
    return CaptionPairs(torch.cat(features), torch.stack(captions), tuple(text for _, text in pairs))


def prealign_epoch(projector: torch.nn.Module, data: CaptionPairs, optimizer: torch.optim.Optimizer,
                   cfg: PrealignConfig, generator: torch.Generator) -> list[float]:
    """One shuffled pass of big-batch contrast steps; the loss of each step."""
    order = torch.randperm(len(data.texts), generator=generator)
    losses = []
    for start in range(0, len(order), cfg.batch_size):
        rows = order[start:start + cfg.batch_size]
        loss = contrastive_loss(projector(data.features[rows].float()), data.captions[rows], cfg.temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def retrieval_top1(projector: torch.nn.Module, data: CaptionPairs) -> float:
    """Share of images whose own caption is the closest of all ``data``'s captions (chance 1/n)."""
    images = F.normalize(projector(data.features.float()).mean(dim=1), dim=-1)
    sims = images @ F.normalize(data.captions, dim=-1).T
    return (sims.argmax(dim=1) == torch.arange(len(images))).float().mean().item()


def prealign(projector: torch.nn.Module, train: CaptionPairs, held: CaptionPairs | None, cfg: PrealignConfig,
             seed: int, log: Callable[[dict], None]) -> tuple[float, int]:
    """Train ``projector`` (the image branch's) in place on the cached pairs; ``log`` gets one row
    per epoch (mean loss, and the held-out caption retrieval top-1 every ``cfg.eval_every`` epochs
    and at the end). Returns the last epoch's mean loss and the number of optimizer steps taken."""
    if len(train.texts) < 2:
        raise DataError(f"pre-alignment needs at least 2 image-caption pairs, got {len(train.texts)}")
    optimizer = torch.optim.AdamW(projector.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    if held is not None:
        log({"epoch": 0, "eval_top1": retrieval_top1(projector, held), "eval_pairs": len(held.texts)})
    steps = 0
    for epoch in range(1, cfg.epochs + 1):
        losses = prealign_epoch(projector, train, optimizer, cfg, generator)
        steps += len(losses)
        row: dict = {"epoch": epoch, "loss": sum(losses) / len(losses)}
        if held is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            row["eval_top1"] = retrieval_top1(projector, held)
        log(row)
    return row["loss"], steps
