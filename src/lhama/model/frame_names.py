"""Sampled video frames -> one class name per frame, from an image tower's classification head.

A model without a video branch can still be told what a clip shows: each sampled frame goes
through the vision tower's own classifier (e.g. EfficientNet-Lite2's ImageNet-1k head) and its
most likely class is named in pt-BR ("galo, galo, bola de futebol"). The tower and the names are
arguments, so any tower with ``classify(pixels) -> (n, classes)`` probabilities works.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from lhama.errors import ModelError

Classify = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def frame_names(classify: Classify, names: Sequence[str], frames: torch.Tensor, min_prob: float = 0.0) -> list[str]:
    """(F, 3, S, S) preprocessed frames -> the top class name of each frame, in time order.

    A frame whose top probability is below ``min_prob`` gives no name (the tower is unsure).

    Raises:
        ModelError: the classifier's class count differs from ``len(names)``.
    """
    probs = classify(frames)  # (F, classes)
    if probs.shape[-1] != len(names):
        raise ModelError(f"the tower's head has {probs.shape[-1]} classes but {len(names)} class names were given")
    top, index = probs.max(dim=-1)  # (F,), (F,)
    return [names[int(i)] for p, i in zip(top, index) if float(p) >= min_prob]
