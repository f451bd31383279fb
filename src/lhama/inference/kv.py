"""The decoder's KV cache as a reusable state: allocated once, rewound instead of rebuilt.

A :class:`KVState` holds a transformers cache and the token ids whose keys/values it holds.
Decoding writes into a *static* cache (one tensor per layer, allocated for the whole answer,
no reallocation per token); speculative decoding rewinds it past rejected draft tokens; a chat
session keeps it between turns, so the next turn prefills only what follows the longest shared
prefix (the images of earlier turns are not encoded or prefilled again).

A model with sliding-window layers (Gemma 3) gets a static cache only while the whole sequence
fits in its window (a full window rolls over and cannot be rewound); beyond that, a dynamic one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import DynamicCache, StaticCache

_BLOCK = 64  # static caches are sized in blocks of positions (attention reads the whole block, masked)


@dataclass
class KVState:
    """A cache and the ids (prompt and answer tokens) whose keys/values it holds, in order."""

    cache: Any = None  # transformers Cache; None until the first prefill
    ids: list[int] = field(default_factory=list)
    capacity: int = 0  # positions a static cache holds; 0 for none or a dynamic cache

    def reset(self) -> None:
        self.cache, self.ids, self.capacity = None, [], 0


def prepare(state: KVState, language_model: nn.Module, input_ids: Sequence[int], room: int,
            keep: Collection[int] = ()) -> int:
    """Make ``state`` ready to continue ``input_ids`` with up to ``room`` more positions and
    return how many leading ids it already holds (reused; at most ``len(input_ids) - 1``, so one
    position is always computed). Placeholder runs (``keep``: media token ids) are never split.
    A cache too small for the answer is replaced, keeping the reused prefix."""
    reused = shared_prefix(state.ids, input_ids, keep)
    needed = len(input_ids) + room
    window = _sliding_window(language_model)
    if state.cache is not None and (state.capacity >= needed or (state.capacity == 0 and window is not None)):
        rewind(state, reused)
        return reused
    capacity = -(-needed // _BLOCK) * _BLOCK
    if window is not None and needed > window:
        fresh, capacity = DynamicCache(config=language_model.config), 0
    else:
        fresh = StaticCache(config=language_model.config, max_cache_len=capacity if window is None
                            else min(capacity, window))
    if reused and state.capacity and capacity:
        _copy_prefix(state.cache, fresh, reused)
    else:
        reused = 0
    state.cache, state.ids, state.capacity = fresh, list(input_ids[:reused]), capacity
    return reused


def shared_prefix(cached: Sequence[int], input_ids: Sequence[int], keep: Collection[int] = ()) -> int:
    """Length of the common prefix, short of the last input id and moved back to the start of a
    run of ``keep`` ids it would cut."""
    limit = min(len(cached), len(input_ids) - 1)
    n = 0
    while n < limit and cached[n] == input_ids[n]:
        n += 1
    while 0 < n < len(input_ids) and input_ids[n] in keep and input_ids[n - 1] in keep:
        n -= 1
    return n


def text_prefix(input_ids: Sequence[int], media_ids: Collection[int]) -> int:
    """Leading positions of ``input_ids`` before its first media placeholder: as far as another
    prompt's keys/values can stand for this one's (equal placeholder ids are not equal pixels)."""
    return next((i for i, token in enumerate(input_ids) if token in media_ids), len(input_ids))


def holding(language_model: nn.Module, layers: Sequence[tuple[torch.Tensor, torch.Tensor]], ids: Sequence[int]) -> KVState:
    """A state whose static cache holds ``layers``' keys/values (per layer (1, H, len(ids), Dh)) for
    ``ids``, as a prefill of ``ids`` leaves it: the next :func:`prefill` reuses them."""
    capacity = -(-len(ids) // _BLOCK) * _BLOCK
    cache = StaticCache(config=language_model.config, max_cache_len=capacity)
    _copy_prefix(DynamicCache(ddp_cache_data=list(layers)), cache, len(ids))
    return KVState(cache, list(ids), capacity)


def rewind(state: KVState, length: int) -> None:
    """Forget every position from ``length`` on (they are overwritten by the next forward)."""
    if isinstance(state.cache, DynamicCache):
        state.cache.crop(length)
    else:
        for layer in state.cache.layers:
            if getattr(layer, "is_initialized", False):
                layer.cumulative_length.fill_(length)
                if hasattr(layer, "cumulative_length_int"):
                    layer.cumulative_length_int = length
    del state.ids[length:]


def media_for_suffix(input_ids: Sequence[int], start: int, media: Mapping[str, torch.Tensor] | None,
                     token_ids: Mapping[str, int]) -> dict[str, torch.Tensor] | None:
    """The media items whose placeholders lie in ``input_ids[start:]`` (the last ones of each
    modality: items are in prompt order), for prefilling only that suffix."""
    if not media:
        return None
    suffix = {}
    for name, items in media.items():
        total = sum(1 for t in input_ids if t == token_ids[name])
        in_suffix = sum(1 for t in input_ids[start:] if t == token_ids[name])
        count = in_suffix * len(items) // total if total else 0  # positions per item = total / items
        if count:
            suffix[name] = items[len(items) - count:]
    return suffix or None


def _sliding_window(language_model: nn.Module) -> int | None:
    config = language_model.config.get_text_config(decoder=True)
    types = getattr(config, "layer_types", None) or ()
    if "sliding_attention" in types or getattr(config, "use_sliding_window", False):
        return int(config.sliding_window)
    return None


def _copy_prefix(old: Any, new: Any, length: int) -> None:
    for source, target in zip(old.layers, new.layers):
        if not getattr(source, "is_initialized", False):
            continue
        target.lazy_initialization(source.keys[:, :, :1], source.values[:, :, :1])
        target.keys[:, :, :length] = source.keys[:, :, :length]
        target.values[:, :, :length] = source.values[:, :, :length]
        target.cumulative_length.fill_(length)
        if hasattr(target, "cumulative_length_int"):
            target.cumulative_length_int = length


def prefill(model: nn.Module, input_ids: Sequence[int], media: Mapping[str, torch.Tensor] | None,
            state: KVState, room: int) -> Any:
    """Run the prompt through ``model`` (a LhamaModel) into ``state``, computing only what the
    state does not already hold; returns the output (logits of the last position)."""
    token_ids = model.token_ids
    start = prepare(state, model.language_model, input_ids, room, set(token_ids.values()))
    device = model.language_model.get_input_embeddings().weight.device
    suffix = torch.tensor([list(input_ids[start:])], dtype=torch.long, device=device)  # (1, T - start)
    out = model(suffix, media=media_for_suffix(input_ids, start, media, token_ids),
                attention_mask=cache_mask(state, model.language_model, start, suffix.shape[1]),
                past_key_values=state.cache, use_cache=True, logits_to_keep=1)
    state.ids.extend(input_ids[start:])
    return out


def cache_mask(state: KVState, language_model: nn.Module, start: int, rows: int) -> torch.Tensor | None:
    """The attention mask of ``rows`` positions from ``start`` prefilled into ``state``'s static cache: each row
    reads the cache's columns up to its own position, over the whole cache (1, 1, rows, capacity), bool.

    transformers leaves the mask out when the cache is empty and then attends over the prompt's own length
    (``is_causal``); with positions already held it masks over the whole cache. PyTorch's CPU attention rounds a
    row differently with another key length, so a prompt prefilled in one go and the same prompt prefilled after
    a reused prefix (a stored opening, the chat's previous turn) gave other bits. With this mask every prefill
    reads the cache's columns: in caches of one size a row is the same bits however the prompt was split, and a
    stored opening (prefilled in a smaller cache) gave the full prefill's bits in every case tried
    (tests/inference/test_prefix_agreement.py). None for a dynamic cache or a model with sliding-window layers
    (their own masks)."""
    if not state.capacity or _sliding_window(language_model) is not None:
        return None
    device = language_model.get_input_embeddings().weight.device
    positions = torch.arange(start, start + rows, device=device)
    return (torch.arange(state.capacity, device=device)[None, :] <= positions[:, None])[None, None]
