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
CHUNK = 32  # a chunked prefill (chunk_ends) computes aligned runs of this many positions, one call each


@dataclass
class KVState:
    """A cache and the ids (prompt and answer tokens) whose keys/values it holds, in order."""

    cache: Any = None  # transformers Cache; None until the first prefill
    ids: list[int] = field(default_factory=list)
    capacity: int = 0  # positions a static cache holds; 0 for none or a dynamic cache
    cuts: list[int] = field(default_factory=list)  # where the prefill calls of the held rows ended (chunk_ends)
    chunked: bool = False  # prefill in chunks, reuse whole chunks: a reused prefix gives a fresh prefill's bits

    def reset(self) -> None:
        self.cache, self.ids, self.capacity, self.cuts = None, [], 0, []


def prepare(state: KVState, language_model: nn.Module, input_ids: Sequence[int], room: int,
            keep: Collection[int] = ()) -> int:
    """Make ``state`` ready to continue ``input_ids`` with up to ``room`` more positions and
    return how many leading ids it already holds (reused; at most ``len(input_ids) - 1``, so one
    position is always computed). Placeholder runs (``keep``: media token ids) are never split.
    A cache too small for the answer is replaced, keeping the reused prefix. A chunked state (:func:`prefill`)
    reuses only up to a cut that both the held rows' prefill and this prompt's have."""
    window = _sliding_window(language_model)
    reused = shared_prefix(state.ids, input_ids, keep)
    if state.chunked and window is None:  # whole chunks only (chunk_ends): the reused rows are a fresh prefill's bits
        ours = set(cuts(input_ids, keep))
        reused = max((c for c in state.cuts if c <= reused and c in ours), default=0)
    needed = len(input_ids) + room
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
    state.cuts = [c for c in state.cuts if c <= reused]
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


def aligned(length: int) -> int:
    """The whole chunks within ``length`` leading positions (text: the last cut at or before it)."""
    return length - length % CHUNK


def cuts(input_ids: Sequence[int], keep: Collection[int] = ()) -> list[int]:
    """The positions where a chunked prefill of ``input_ids`` may end a call: the multiples of :data:`CHUNK`
    before the last id that do not split a run of ``keep`` ids (a medium's placeholders)."""
    return [c for c in range(CHUNK, len(input_ids), CHUNK) if not (input_ids[c - 1] in keep and input_ids[c] in keep)]


def chunk_ends(input_ids: Sequence[int], start: int, keep: Collection[int] = ()) -> list[int]:
    """Where the calls of a chunked prefill of ``input_ids`` from ``start`` (one of its :func:`cuts`, or 0) end:
    each cut after ``start``, then the end.

    PyTorch's CPU attention and matrix products round a row differently with another number of rows or keys, so
    the keys/values a prompt's rows get depended on how the prompt was split into calls (the previous prompt's
    length, a reused prefix's length, the size of the cache). Cut at fixed positions and attending over the keys
    before the chunk's end only (a DynamicCache), the rows of a chunk are always computed by the same call: the
    same rows after the same keys/values, with the same ids. So reusing the rows up to a cut of another prefill
    (same ids) gives the bits a fresh prefill computes, by construction (tests/inference/test_prefix.py,
    tests/inference/test_prefix_agreement.py)."""
    return [*(c for c in cuts(input_ids, keep) if c > start), len(input_ids)]


def holding(language_model: nn.Module, layers: Sequence[tuple[torch.Tensor, torch.Tensor]], ids: Sequence[int]) -> KVState:
    """A state whose static cache holds ``layers``' keys/values (per layer (1, H, len(ids), Dh)) for
    ``ids``, as a prefill of ``ids`` leaves it: the next :func:`prefill` reuses them."""
    capacity = -(-len(ids) // _BLOCK) * _BLOCK
    cache = StaticCache(config=language_model.config, max_cache_len=capacity)
    _copy_prefix(DynamicCache(ddp_cache_data=list(layers)), cache, len(ids))
    return KVState(cache, list(ids), capacity, list(range(CHUNK, len(ids) + 1, CHUNK)), chunked=True)  # a text prefill's


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
    state.cuts = [c for c in state.cuts if c <= length]


def media_for_suffix(input_ids: Sequence[int], start: int, media: Mapping[str, torch.Tensor] | None,
                     token_ids: Mapping[str, int]) -> dict[str, torch.Tensor] | None:
    """The media items whose placeholders lie in ``input_ids[start:]`` (the last ones of each
    modality: items are in prompt order), for prefilling only that suffix."""
    return media_for_span(input_ids, start, len(input_ids), media, token_ids)


def media_for_span(input_ids: Sequence[int], start: int, end: int, media: Mapping[str, torch.Tensor] | None,
                   token_ids: Mapping[str, int]) -> dict[str, torch.Tensor] | None:
    """The media items whose placeholders lie in ``input_ids[start:end]`` (whole runs: :func:`cuts` never splits
    one), for prefilling that span."""
    if not media:
        return None
    span = {}
    for name, items in media.items():
        total = sum(1 for t in input_ids if t == token_ids[name])
        per = total // len(items) if total and len(items) else 0  # positions per item
        if not per:
            continue
        before = sum(1 for t in input_ids[:start] if t == token_ids[name]) // per
        inside = sum(1 for t in input_ids[start:end] if t == token_ids[name]) // per
        if inside:
            span[name] = items[before:before + inside]
    return span or None


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
    state does not already hold; returns the output (logits of the last position).

    A ``chunked`` state (a chat's: :class:`lhama.serve.session.ChatSession`, the stored opening): the prompt runs
    in chunks (:func:`chunk_ends`) over a DynamicCache holding the reused rows, then its rows are copied into the
    static cache. A row's bits then depend on its ids only, not on the cache's size or on where the reused prefix
    ended, so a reused prefix (a stored opening, the previous turn) gives what a fresh prefill gives. Otherwise
    (scoring, a draft model catching up, one-shot generation: the longest reuse, the same numbers up to
    rounding), and for models with sliding-window layers, one call over the static cache (:func:`cache_mask`)."""
    token_ids = model.token_ids
    keep = set(token_ids.values())
    start = prepare(state, model.language_model, input_ids, room, keep)
    if not state.chunked or _sliding_window(model.language_model) is not None:
        return _prefill_once(model, input_ids, media, state, start)
    out = prefill_chunks(model, input_ids, media, [(layer.keys, layer.values) for layer in state.cache.layers], start)
    _copy_rows(out.past_key_values, state.cache, start, len(input_ids))
    state.ids.extend(input_ids[start:])
    state.cuts = [*(c for c in state.cuts if c <= start), *chunk_ends(input_ids, start, keep)[:-1]]
    if len(input_ids) % CHUNK == 0:  # the last call was a whole chunk too
        state.cuts.append(len(input_ids))
    return out


def prefill_chunks(model: nn.Module, input_ids: Sequence[int], media: Mapping[str, torch.Tensor] | None,
                   held: Sequence[tuple[torch.Tensor, torch.Tensor]], start: int) -> Any:
    """Run ``input_ids[start:]`` (and its ``media``) through ``model`` (a LhamaModel) in the calls :func:`chunk_ends`
    gives, over a DynamicCache holding the first ``start`` positions of ``held`` (per layer (keys, values); read only
    when ``start`` > 0). Returns the last call's output: the last position's logits, ``past_key_values`` holding
    every position. The one chunk loop of :func:`prefill` and :class:`lhama.inference.prefix.PrefixCache`."""
    token_ids = model.token_ids
    cache = DynamicCache(ddp_cache_data=[(k[:, :, :start], v[:, :, :start]) for k, v in held]) if start else DynamicCache()
    device = model.language_model.get_input_embeddings().weight.device
    begin = start
    for end in chunk_ends(input_ids, start, set(token_ids.values())):
        chunk = torch.tensor([list(input_ids[begin:end])], dtype=torch.long, device=device)  # (1, end - begin)
        out = model(chunk, media=media_for_span(input_ids, begin, end, media, token_ids),
                    past_key_values=cache, use_cache=True, logits_to_keep=1)
        begin = end
    return out


def _prefill_once(model: nn.Module, input_ids: Sequence[int], media: Mapping[str, torch.Tensor] | None,
                  state: KVState, start: int) -> Any:
    """What follows the reused prefix in one call over the whole static cache (no cuts recorded)."""
    token_ids = model.token_ids
    device = model.language_model.get_input_embeddings().weight.device
    suffix = torch.tensor([list(input_ids[start:])], dtype=torch.long, device=device)  # (1, T - start)
    out = model(suffix, media=media_for_suffix(input_ids, start, media, token_ids),
                attention_mask=cache_mask(state, model.language_model, start, suffix.shape[1]),
                past_key_values=state.cache, use_cache=True, logits_to_keep=1)
    state.ids.extend(input_ids[start:])
    state.cuts = [c for c in state.cuts if c <= start]
    return out


def _copy_rows(source: DynamicCache, target: Any, start: int, end: int) -> None:
    """Copy positions ``[start, end)`` of ``source``'s layers into the static cache ``target``, which then
    holds ``end`` positions."""
    for layer, into in zip(source.layers, target.layers):
        if not getattr(into, "is_initialized", False):
            into.lazy_initialization(layer.keys[:, :, :1], layer.values[:, :, :1])
        into.keys[:, :, start:end] = layer.keys[:, :, start:end]
        into.values[:, :, start:end] = layer.values[:, :, start:end]
        into.cumulative_length.fill_(end)
        if hasattr(into, "cumulative_length_int"):
            into.cumulative_length_int = end


def cache_mask(state: KVState, language_model: nn.Module, start: int, rows: int) -> torch.Tensor | None:
    """The attention mask of ``rows`` positions from ``start`` prefilled in one call into ``state``'s static cache:
    each row reads the cache's columns up to its own position, over the whole cache (1, 1, rows, capacity), bool.

    transformers leaves the mask out when the cache is empty and then attends over the prompt's own length
    (``is_causal``); with positions already held it masks over the whole cache. With this mask every one-call
    prefill reads the cache's columns (session 13); rows still round differently with another cache size or
    another number of rows in the call, which chunked prefills (:func:`prefill`) rule out. None for a dynamic
    cache or a model with sliding-window layers (their own masks)."""
    if not state.capacity or _sliding_window(language_model) is not None:
        return None
    device = language_model.get_input_embeddings().weight.device
    positions = torch.arange(start, start + rows, device=device)
    return (torch.arange(state.capacity, device=device)[None, :] <= positions[:, None])[None, None]
