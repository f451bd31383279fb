"""A left-padded batch of KV caches, so several sequences decode in one forward step.

Each request is prefilled alone; :meth:`DecodeBatch.add` left-pads its keys and values to the
batch length and stacks them on the batch dimension, :meth:`DecodeBatch.drop` removes finished
rows. The attention mask hides the pads and each row keeps its own position ids, so a row
computes what it would compute alone (up to the rounding of batched matrix products).

Sliding-window layers (Gemma 3) are stored as full layers here: the window is relative to the
query position, which left padding does not change.

:meth:`DecodeBatch.step` takes the lean step (:mod:`lhama.inference.lean`) where it covers the
model: the new key/value column is written into spare columns of the batch's tensors (grown
``_BLOCK`` columns at a time) instead of concatenated onto every layer's cache at every step,
and the ~60 small ops per layer of the transformers forward become ~30. Otherwise (other
architectures, ``LHAMA_LEAN_DECODE=0``) the transformers forward runs on the same cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache

from lhama.inference.lean import lean_decoder

_BLOCK = 64  # spare key/value columns added at a time for the lean step

class DecodeBatch:
    def __init__(self) -> None:
        self.cache: DynamicCache | None = None  # the reference path's cache, while it is the current one
        self._kv: list[tuple[torch.Tensor, torch.Tensor]] = []  # else each layer's (keys, values) (B, H, C, Dh)
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
        if len(self) == 0:
            self._set(new, torch.ones(1, length, dtype=torch.long), torch.tensor([length]))
            return
        width = max(self.mask.shape[1], length)
        old = [(_pad_left(k, width), _pad_left(v, width)) for k, v in self.layers()]
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
        layers = [(k[index, :, start:], v[index, :, start:]) for k, v in self.layers()]
        self._set(layers, mask[:, start:], self.positions[index])

    @torch.inference_mode()
    def step(self, language_model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (B,); return each row's next-token logits (B, V)."""
        tokens = tokens.to(language_model.get_input_embeddings().weight.device)
        mask = torch.cat([self.mask, torch.ones(len(self), 1, dtype=torch.long)], dim=1)  # with the new column
        lean = lean_decoder(language_model)
        logits = self._lean_step(lean, tokens, mask) if lean is not None else self._forward_step(language_model, tokens, mask)
        self.mask = mask
        self.positions = self.positions + 1
        return logits

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each layer's (keys, values) (B, H, T, Dh): the T = ``mask.shape[1]`` used columns."""
        width = self.mask.shape[1]
        if self.cache is not None:
            return [(layer.keys, layer.values) for layer in self.cache.layers]
        return [(k[:, :, :width], v[:, :, :width]) for k, v in self._kv]

    def _lean_step(self, lean: object, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The lean step: the new column is written in place, into spare columns (``_BLOCK`` more
        are added when none is left); attention reads the used columns only."""
        width = self.mask.shape[1]
        if self.cache is not None or self._kv[0][0].shape[2] <= width:
            self._kv = [(_pad_right(k, width + _BLOCK), _pad_right(v, width + _BLOCK)) for k, v in self.layers()]
            self.cache = None
        used = [(k[:, :, : width + 1], v[:, :, : width + 1]) for k, v in self._kv]
        allowed = None if bool(mask.all()) else mask.bool().view(len(self), 1, 1, width + 1).to(tokens.device)  # as transformers
        return lean.step_rows(tokens, self.positions.to(tokens.device), used, width, allowed)

    def _forward_step(self, language_model: nn.Module, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The reference step: the transformers forward on a DynamicCache (other architectures,
        ``LHAMA_LEAN_DECODE=0``)."""
        if self.cache is None:
            self.cache = DynamicCache(ddp_cache_data=self.layers())
        out = language_model(input_ids=tokens.view(-1, 1), attention_mask=mask.to(tokens.device),
                             position_ids=self.positions.view(-1, 1).to(tokens.device), past_key_values=self.cache,
                             use_cache=True, logits_to_keep=1)
        self.cache = out.past_key_values
        return out.logits[:, -1]

    def _set(self, layers: list[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor, positions: torch.Tensor) -> None:
        self.cache, self._kv = None, layers
        self.mask, self.positions = mask, positions


def _pad_right(states: torch.Tensor, width: int) -> torch.Tensor:
    """(B, H, L, Dh) -> (B, H, width, Dh) with zeros on the right (spare columns)."""
    return F.pad(states, (0, 0, 0, width - states.shape[2]))


def _pad_left(states: torch.Tensor, width: int) -> torch.Tensor:
    """(B, H, L, Dh) -> (B, H, width, Dh) with zeros on the left of the sequence axis."""
    return F.pad(states, (0, 0, width - states.shape[2], 0))
