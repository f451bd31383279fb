"""Reuse the keys/values of the previous prompt's leading tokens: a server's shared system prompt.

Requests to a server begin alike: the chat template and the model's system prompt (~115 tokens
for lhama-default) come before the user's words, and prefilling them again for every request
costs every request's time to first token (and, in a batch, the other requests' next step).
:class:`PrefixCache` keeps the keys/values of the last prompt it prefilled; the next prompt
prefills only what follows the longest run of token ids it shares with that one (at least
``MIN_REUSE``), into a copy of the kept keys/values.

The reused run stops before the new prompt's first media placeholder: a placeholder id is the
same for every image, so equal ids do not mean equal media. Every prefill, with reuse or not, runs
in aligned chunks (:func:`lhama.inference.kv.chunk_ends`) and reuses whole chunks only, so a reused
prefix holds the very bits a fresh prefill of the new prompt computes and the answer is the same
(before session 14 it was one call from wherever the shared run ended: other rounding, measured
on a 12-head model in tests/inference/test_prefix.py). ``LHAMA_PREFIX_CACHE=0`` switches reuse off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lhama.inference.kv import CHUNK, aligned, prefill_chunks, shared_prefix, text_prefix

MIN_REUSE = CHUNK  # reuse is whole chunks (kv.chunk_ends): a shorter shared run is prefilled again


class PrefixCache:
    """One thread's prefills (the serving engine's worker): :meth:`prefill` returns the model's
    output for a whole prompt, its ``past_key_values`` a DynamicCache holding every position."""

    def __init__(self) -> None:
        self.ids: list[int] = []  # the last prompt prefilled
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []  # its keys/values per layer (1, H, T, Dh)
        self.reused = 0  # positions the last prefill took from the previous prompt

    def prefill(self, model: nn.Module, input_ids: Sequence[int], media: Mapping[str, torch.Tensor] | None) -> Any:
        """Run ``input_ids`` (and ``media``) through ``model`` (a LhamaModel) in aligned chunks, computing only
        the chunks after those shared with the previous prompt; keep this prompt for the next. Returns the
        last chunk's output: the last position's logits, ``past_key_values`` holding every position."""
        start = self._reusable(input_ids, set(model.token_ids.values()))
        out = prefill_chunks(model, input_ids, media, self.layers, start)
        self.ids, self.reused = list(input_ids), start
        self.layers = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        return out

    def _reusable(self, input_ids: Sequence[int], media_ids: set[int]) -> int:
        """Leading positions of ``input_ids`` whose keys/values the kept prompt holds, in whole chunks (0 or
        >= MIN_REUSE)."""
        if os.environ.get("LHAMA_PREFIX_CACHE", "1") == "0" or not self.layers:
            return 0
        shared = aligned(min(shared_prefix(self.ids, input_ids), text_prefix(input_ids, media_ids)))
        return shared if shared >= MIN_REUSE else 0
