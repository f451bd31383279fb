"""A left-padded batch of KV caches, so several sequences decode in one forward step.

Each request is prefilled alone; :meth:`DecodeBatch.add` left-pads its keys and values to the
batch length and stacks them on the batch dimension, :meth:`DecodeBatch.drop` removes finished
rows. The attention mask hides the pads and each row keeps its own position ids, so a row
computes what it would compute alone (up to the rounding of batched matrix products).

Sliding-window layers (Gemma 3) are stored as full layers here: the window is relative to the
query position, which left padding does not change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache


class DecodeBatch:
    def __init__(self) -> None:
        self.cache: DynamicCache | None = None
        self.mask = torch.zeros(0, 0, dtype=torch.long)  # (B, T): 1 = real token, 0 = left pad
        self.positions = torch.zeros(0, dtype=torch.long)  # (B,): next position id of each row

    @staticmethod
    def empty_cache() -> DynamicCache:
        """A cache for prefilling a row: every layer keeps every token (no sliding window)."""
        return DynamicCache()

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    def add(self, cache: DynamicCache, length: int) -> None:
        """Append one prefilled sequence (a batch-1 cache of ``length`` tokens) as the last row."""
        new = [(layer.keys, layer.values) for layer in cache.layers]  # each (1, H, L, Dh)
        if self.cache is None or len(self) == 0:
            self._set(new, torch.ones(1, length, dtype=torch.long), torch.tensor([length]))
            return
        width = max(self.mask.shape[1], length)
        old = [(_pad_left(k, width), _pad_left(v, width)) for k, v in self._layers()]
        new = [(_pad_left(k, width), _pad_left(v, width)) for k, v in new]
        layers = [(torch.cat([ok, nk]), torch.cat([ov, nv])) for (ok, ov), (nk, nv) in zip(old, new)]
        row = F.pad(torch.ones(1, length, dtype=torch.long), (width - length, 0))
        mask = torch.cat([F.pad(self.mask, (width - self.mask.shape[1], 0)), row])
        self._set(layers, mask, torch.cat([self.positions, torch.tensor([length])]))

    def drop(self, keep: list[int]) -> None:
        """Keep only the rows ``keep`` (in that order); trim pad columns no row needs any more."""
        if len(keep) == len(self):
            return
        index = torch.tensor(keep, dtype=torch.long)
        mask = self.mask[index]
        used = torch.nonzero(mask.sum(0)).flatten()
        start = int(used[0]) if len(used) else mask.shape[1]
        layers = [(k[index, :, start:], v[index, :, start:]) for k, v in self._layers()]
        self._set(layers, mask[:, start:], self.positions[index])

    @torch.inference_mode()
    def step(self, language_model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (B,); return each row's next-token logits (B, V)."""
        device = language_model.get_input_embeddings().weight.device
        self.mask = torch.cat([self.mask, torch.ones(len(self), 1, dtype=torch.long)], dim=1)
        out = language_model(
            input_ids=tokens.view(-1, 1).to(device),
            attention_mask=self.mask.to(device),
            position_ids=self.positions.view(-1, 1).to(device),
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.cache = out.past_key_values
        self.positions = self.positions + 1
        return out.logits[:, -1]

    def _layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(layer.keys, layer.values) for layer in self.cache.layers]

    def _set(self, layers: list[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor, positions: torch.Tensor) -> None:
        self.cache = DynamicCache(ddp_cache_data=layers)
        self.mask, self.positions = mask, positions


def _pad_left(states: torch.Tensor, width: int) -> torch.Tensor:
    """(B, H, L, Dh) -> (B, H, width, Dh) with zeros on the left of the sequence axis."""
    return F.pad(states, (0, 0, width - states.shape[2], 0))
