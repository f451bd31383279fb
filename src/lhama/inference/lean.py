"""A lean one-token decode step for Llama-family decoders (Llama, Qwen2), for CPU decoding.

Decoding one token runs ~200 small products; around them, the transformers forward spends
Python and dispatch time on ~60 small ops per layer (module calls, mask building, cache
bookkeeping, shape checks). :class:`LeanDecoder` does the same arithmetic with ~30 ops per layer,
on the same weights and the same static KV cache:

- the query/key/value projections, and the gate/up projections, run as **one** packed product
  each (their quantised weights concatenated: the int4 CPU kernel packs rows in independent
  blocks of 64, and the int8 kernel row by row, so the fused product equals the separate ones
  bit for bit; the separate layers keep working as views of the fused weights, for prefill);
- the rotary embedding is applied to the query and key heads in one go;
- the new key/value row is written straight into the static cache at its position;
- attention is the same ``scaled_dot_product_attention`` call on the same masked cache, and the
  norms the same fp32 formula, as transformers' SDPA path, so the logits are the same bits
  (attending to the filled positions only, without the mask, is not: tried, other bits).

``lean_decoder(language_model)`` builds it once (and remembers it on the model) or returns
``None`` for a decoder it does not cover (other architectures, sliding windows, rope scaling,
a model in training mode, or ``LHAMA_LEAN_DECODE=0``); callers then run the transformers forward.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers.cache_utils import StaticLayer

from lhama.inference import glue
from lhama.inference.qlinear import (Int4KLinear, Int4Linear, Int6KLinear, Int8Linear, build_native_scales, int4_mm,
                                     int4k_mm, int8_mm, native_scales, scale_kind, scales_key)

_TYPES = ("llama", "qwen2")
_QUANTISED = (Int4Linear, Int4KLinear, Int6KLinear, Int8Linear)  # products with bf16 outputs for bf16 inputs
_ATTR = "_lhama_lean"  # where the built decoder (or False: not covered) is kept on the model
_ROWS = 64  # the int4 CPU kernel packs output rows in independent blocks of 64
_ALIGN = 64  # bytes: the packed kernels need aligned weights (see quant_cache._read_aligned)
KeysValues = Sequence[tuple[torch.Tensor, torch.Tensor]]  # each layer's (keys, values) (B, Hkv, C, Dh)
Product = Callable[[torch.Tensor], torch.Tensor]  # (M, K) rows -> (M, N) outputs


class Fused(nn.Module):
    """Several int4 (or int8) linear layers with the same input as one product; the outputs side by side.

    The parts' weights become row views of the fused weight (no second copy); int4 scales,
    laid out (groups, N, 2), are copied (a few MB). One part is wrapped as it is: its kernel is
    then called without the layer's reshapes."""

    def __init__(self, parts: Sequence[nn.Module]) -> None:
        super().__init__()
        self.kind, self.sizes = type(parts[0]), [p.out_features for p in parts]
        self.in_features, self.out_features = parts[0].in_features, sum(self.sizes)
        self.group_size = getattr(parts[0], "group_size", None)
        weight = _joined([p.weight for p in parts])
        if self.kind is Int4Linear:
            self.scales = _joined([p.scales_and_zeros for p in parts], dim=1)
        elif self.kind is Int4KLinear:  # codes (K/g, N), highs (K/256, N), supers (2, K/256, N)
            self.scales = _joined([p.codes for p in parts], dim=1)
            self.highs = _joined([p.highs for p in parts], dim=1)
            self.supers = _joined([p.supers for p in parts], dim=2)
        else:
            self.scales = _joined([p.scales for p in parts])
        biases = [p.bias for p in parts]
        self.bias = _joined(biases) if all(b is not None for b in biases) else None
        start = 0
        for part in parts if len(parts) > 1 else ():  # the parts now read the fused weight
            rows = part.weight.shape[0]
            view = weight[start : start + rows]
            part.weight = view
            if self.kind is Int8Linear:
                part.scales = self.scales[start : start + rows]
            start += rows
        self.weight = weight
        _share_blocked_scales(self, parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (M, K) in the layers' activation dtype -> (M, sum of outputs)."""
        out = self.product(x)
        return out if self.bias is None else out + self.bias

    def product(self, x: torch.Tensor) -> torch.Tensor:
        """The outputs without the bias."""
        if self.kind is Int4Linear:
            out = int4_mm(x, self.weight, self.group_size, self.scales, owner=self)
        elif self.kind is Int4KLinear:
            out = int4k_mm(x, self.weight, self.group_size, self.scales, self.highs, self.supers, owner=self)
        else:
            out = int8_mm(x, self.weight, self.scales)
        if out.shape[-1] != self.out_features:
            out = out[:, : self.out_features]  # int4: the last part's padding rows
        return out


def _share_blocked_scales(fused: Fused, parts: Sequence[nn.Module]) -> None:
    """Where the kernel reads blocked scales (``qlinear.native_scales``): the fused product's, built now, and each
    part's as views of them (a block-major layout joins along its first axis), so prefill's separate products keep
    no second copy; one part shares its own (built now if not yet)."""
    if fused.kind is Int4KLinear:
        mine, theirs = ((fused.scales, 1), (fused.highs, 1), (fused.supers, 2)), lambda p: (p.codes, p.highs, p.supers)
    elif fused.kind is Int4Linear:
        mine, theirs = ((fused.scales, 1),), lambda p: (p.scales_and_zeros,)
    else:
        return
    if len(parts) == 1:  # the fused product reads the part's own arrays: one copy for both
        build_native_scales(parts[0])
        if "_native_scales" in parts[0].__dict__:
            fused.__dict__["_native_scales"] = parts[0].__dict__["_native_scales"]
        return
    kind = scale_kind(fused.kind)
    if any(p.weight.shape[0] % _ROWS for p in parts) or (kept := native_scales(fused, kind, *mine)) is None:
        return
    start = 0
    for part in parts:
        blocks = part.weight.shape[0] // _ROWS
        key = scales_key(theirs(part))
        part.__dict__["_native_scales"] = (key, tuple(t[start : start + blocks] for t in kept))
        start += blocks


def _joined(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """The tensors concatenated along ``dim``: a view when they already lie side by side in one
    allocation along rows (as the quantised cache loads them), else a new tensor."""
    if len(tensors) == 1:
        return tensors[0]
    if dim == 0 and _adjacent(tensors):
        rows = sum(t.shape[0] for t in tensors)
        return tensors[0].as_strided((rows, *tensors[0].shape[1:]), tensors[0].stride())
    return torch.cat(tensors, dim=dim)


def _adjacent(tensors: Sequence[torch.Tensor]) -> bool:
    first = tensors[0]
    if any(not t.is_contiguous() or t.shape[1:] != first.shape[1:] or t.dtype != first.dtype
           or t.untyped_storage().data_ptr() != first.untyped_storage().data_ptr() for t in tensors):
        return False
    return all(a.data_ptr() + a.nbytes == b.data_ptr() for a, b in zip(tensors, tensors[1:]))


def can_fuse(parts: Sequence[nn.Module]) -> bool:
    """Whether ``parts`` (same input) can become one :class:`Fused` product with the same bits."""
    kind = type(parts[0])
    if any(type(p) is not kind or p.in_features != parts[0].in_features for p in parts):
        return False
    if any((p.bias is None) != (parts[0].bias is None) for p in parts):
        return False
    if kind in (Int4Linear, Int4KLinear):
        if any(p.group_size != parts[0].group_size for p in parts):
            return False
        # every part but the last must fill whole 64-row blocks, with no padding rows in between
        return all(p.out_features == p.weight.shape[0] and p.out_features % _ROWS == 0 for p in parts[:-1])
    if kind is Int8Linear:  # each part's view must start 64-byte aligned, as the kernel needs
        starts = [sum(p.out_features for p in parts[:i]) for i in range(1, len(parts))]
        return all(start * parts[0].in_features % _ALIGN == 0 for start in starts)
    return False  # float layers run apart (a fused float product would add the bias differently)


class _Layer:
    """One decoder layer's weights, with the fused projections where they fuse."""

    def __init__(self, layer: nn.Module) -> None:
        attn, mlp = layer.self_attn, layer.mlp
        self.norm1, self.norm2 = layer.input_layernorm, layer.post_attention_layernorm
        self.qkv = _fused_or_parts([attn.q_proj, attn.k_proj, attn.v_proj])
        self.gate_up = _fused_or_parts([mlp.gate_proj, mlp.up_proj])
        self.o_proj, self.down = _fused_or_parts([attn.o_proj]), _fused_or_parts([mlp.down_proj])


class _Parts:
    """Layers that could not be fused, run one after another (outputs side by side)."""

    def __init__(self, parts: Sequence[nn.Module]) -> None:
        self.parts = list(parts)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.parts[0](x) if len(self.parts) == 1 else torch.cat([p(x) for p in self.parts], dim=-1)


def _fused_or_parts(parts: Sequence[nn.Module]) -> Fused | _Parts:
    return Fused(parts) if can_fuse(parts) else _Parts(parts)


class LeanDecoder:
    """``step(token, cache)``: the logits (1, V) after ``token``, its key/value row written into
    the static ``cache`` at the next position (as the transformers forward would).
    ``step_rows``: the same for a batch of rows, each at its own position (the serve batch)."""

    def __init__(self, language_model: nn.Module) -> None:
        config, base = language_model.config, language_model.model
        self.embed, self.norm = base.embed_tokens, base.norm
        self.head = _fused_or_parts([language_model.lm_head])  # one part: the kernel called directly
        self.layers = [_Layer(layer) for layer in base.layers]
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.scaling = self.head_dim**-0.5
        self.inv_freq, self.rope_scaling = base.rotary_emb.inv_freq, base.rotary_emb.attention_scaling
        self.intermediate = config.intermediate_size
        self.glue = _checked_glue(self, config.intermediate_size)
        self.calls = [_Calls(layer) for layer in self.layers]  # the glued step's products, called directly

    def step(self, token: int, cache: object) -> torch.Tensor:
        first = cache.layers[0]
        position = int(first.cumulative_length) if getattr(first, "is_initialized", False) else 0
        hidden = self.embed(torch.tensor([token], device=self.inv_freq.device))  # (1, D)
        for kv in cache.layers:
            if not kv.is_initialized:  # (a prefill initialises it; here only for an empty cache)
                example = hidden.new_empty(1, self.kv_heads, 1, self.head_dim)
                kv.lazy_initialization(example, example)
        mask = (torch.arange(first.max_cache_len, device=hidden.device) <= position).view(1, 1, 1, -1)
        positions = torch.tensor([position], device=hidden.device)
        logits = self._rows(hidden, positions, [(kv.keys, kv.values) for kv in cache.layers], position, mask)
        torch._foreach_add_([kv.cumulative_length for kv in cache.layers], 1)  # one op for every layer's count
        return logits

    def step_seq(self, tokens: Sequence[int], cache: object) -> torch.Tensor:
        """Logits (R, V) after each of ``tokens`` (R) in turn, fed at the next positions of a
        prefilled ``cache`` (a speculative check), their key/value rows written. Row i is what
        :meth:`step` gives for ``tokens[i]`` after the ones before it, bit for bit: the products take
        the R rows at once, but each row attends in the one-row step's layout (the transformers
        forward's R-row attention gave other bits for R = 2, 3 on Qwen2.5-1.5B's layout)."""
        first = cache.layers[0]
        position, rows, device = int(first.cumulative_length), len(tokens), self.inv_freq.device
        positions = torch.arange(position, position + rows, device=device)
        mask = (torch.arange(first.max_cache_len, device=device) <= positions[:, None]).view(rows, 1, 1, -1)
        hidden = self.embed(torch.tensor(list(tokens), device=device))  # (R, D)
        logits = self._rows(hidden, positions, [(kv.keys, kv.values) for kv in cache.layers], position, mask)
        torch._foreach_add_([kv.cumulative_length for kv in cache.layers], rows)
        return logits

    def step_rows(self, tokens: torch.Tensor, positions: torch.Tensor, layers: KeysValues, column: int,
                  mask: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) after ``tokens`` (B,), one row each: row b's token sits at rotary position
        ``positions[b]``; its key/value rows are written at ``column`` of each layer's ``(keys,
        values)`` (B, Hkv, C, Dh), and attention reads the columns ``mask`` (B, 1, 1, C; bool) allows
        (``None``: all of them)."""
        return self._rows(self.embed(tokens), positions, layers, column, mask)

    def _rows(self, hidden: torch.Tensor, positions: torch.Tensor, layers: KeysValues, column: int,
              mask: torch.Tensor) -> torch.Tensor:
        cos, sin = self._rotary(positions, hidden.dtype)
        mask = None if mask is None else _additive(mask, hidden.dtype)  # once, not in each layer's attention call
        if self.glue is not None and hidden.dtype == torch.bfloat16 and _glue_caches(layers):
            return self._glued_rows(hidden.contiguous(), (cos, sin), layers, column, mask)
        for layer, (keys, values) in zip(self.layers, layers):
            x = _rms(layer.norm1, hidden)
            hidden = hidden + self._attention(layer, (keys, values), x, (cos, sin), mask, column)
            gate, up = layer.gate_up(_rms(layer.norm2, hidden)).chunk(2, dim=-1)
            hidden = hidden + layer.down(F.silu(gate) * up)
        return self.head(_rms(self.norm, hidden))

    def _glued_rows(self, hidden: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor], layers: KeysValues,
                    column: int, mask: torch.Tensor) -> torch.Tensor:
        """:meth:`_rows` with the ops between products in C (:mod:`lhama.inference.glue`): the same bits. ``hidden``
        takes each residual add in place; a layer's last add happens in the next layer's first norm call."""
        step = self.glue.step(hidden, rotary, self.heads, layers[0], column, self.intermediate)
        rows, added = len(hidden), None
        for layer, (keys, values), calls in zip(self.layers, layers, self.calls):
            x = step.add_rms(added, layer.norm1)
            step.rope_write(calls.qkv(x), calls.qkv_bias, keys, values)
            if keys.shape[0] != rows:  # one sequence: every row reads its one cache
                keys, values = keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1)
            x = step.add_rms(self._attend(calls.o_proj, step.query, (keys, values), mask), layer.norm2)
            added = calls.down(step.silu_mul(calls.gate_up(x)))
        return self.head(step.add_rms(added, self.norm))

    def _rotary(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (B, 1, head_dim) for ``positions`` (B,), computed as transformers' rotary module does."""
        freqs = positions.float().view(-1, 1) * self.inv_freq.float()
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]
        return (emb.cos() * self.rope_scaling).to(dtype), (emb.sin() * self.rope_scaling).to(dtype)

    def _attention(self, layer: _Layer, kv: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor,
                   rotary: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor, column: int) -> torch.Tensor:
        (keys, values), (cos, sin) = kv, rotary
        rows, heads, kv_heads, dim = x.shape[0], self.heads, self.kv_heads, self.head_dim
        qkv = layer.qkv(x)  # (B, (H + 2 Hkv) d)
        qk = qkv[:, : (heads + kv_heads) * dim].view(rows, heads + kv_heads, dim)
        qk = _rotated(qk, cos, sin)
        keys, values = _write((keys, values), qk[:, heads:], qkv[:, (heads + kv_heads) * dim :].view(rows, kv_heads, dim),
                              column)
        return self._attend(layer.o_proj, qk[:, :heads], (keys, values), mask)

    def _attend(self, o_proj: Product, query: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor],
                mask: torch.Tensor | None) -> torch.Tensor:
        """The attention output (B, D) after o_proj for the rotated ``query`` heads (B, H, d) over ``kv``."""
        (keys, values), rows, heads, dim = kv, query.shape[0], self.heads, self.head_dim
        if mask is None:  # no position masked: the call transformers makes then (same bits)
            out = F.scaled_dot_product_attention(query[:, :, None], keys, values, scale=self.scaling, enable_gqa=True)
        else:  # one query: GQA heads side by side
            query = query.reshape(rows, self.kv_heads, heads // self.kv_heads, dim)
            out = F.scaled_dot_product_attention(query, keys, values, attn_mask=mask, scale=self.scaling)
        return o_proj(out.reshape(rows, heads * dim))


class _Calls:
    """A layer's products as the glued step calls them: a bias-free :class:`Fused` by its ``product`` (its forward's
    result, without a module call); query/key/value's bias apart (the glue adds it); anything else as it is."""

    def __init__(self, layer: _Layer) -> None:
        fused = isinstance(layer.qkv, Fused)
        self.qkv, self.qkv_bias = (layer.qkv.product, layer.qkv.bias) if fused else (layer.qkv, None)
        self.o_proj, self.gate_up, self.down = (p.product if isinstance(p, Fused) and p.bias is None else p
                                                for p in (layer.o_proj, layer.gate_up, layer.down))


def _checked_glue(decoder: LeanDecoder, intermediate: int) -> glue.Glue | None:
    """The C glue where every layer's products are quantised ones and the norms bf16, else None."""
    norms = [decoder.norm, *(n for layer in decoder.layers for n in (layer.norm1, layer.norm2))]
    if not all(map(_gluable, decoder.layers)) or any(n.weight.dtype != torch.bfloat16 for n in norms):
        return None
    return glue.for_widths(norms[0].weight.shape[0], intermediate, decoder.head_dim, _rms, _rotated)


def _gluable(layer: _Layer) -> bool:
    """Whether the layer's products all are quantised ones (bf16 outputs) and its query/key/value bias bf16."""
    products = (layer.qkv, layer.o_proj, layer.gate_up, layer.down)
    parts = [q for p in products for q in ([p] if isinstance(p, Fused) else p.parts)]
    bf16 = all(q.bias is None or q.bias.dtype == torch.bfloat16 and q.bias.is_contiguous() for q in parts)
    return (bf16 and all(isinstance(q, (Fused, *_QUANTISED)) for q in parts)
            and all(n.weight.is_contiguous() for n in (layer.norm1, layer.norm2)))


def _glue_caches(layers: KeysValues) -> bool:
    """Whether the glue can write into each layer's (keys, values): bf16, a head's rows contiguous, all alike."""
    keys = layers[0][0]
    layout = (torch.bfloat16, keys.shape, keys.stride())
    return (keys.stride(3) == 1 and keys.stride(2) == keys.shape[3]
            and all((k.dtype, k.shape, k.stride()) == layout == (v.dtype, v.shape, v.stride()) for k, v in layers))


def _write(kv: tuple[torch.Tensor, torch.Tensor], key: torch.Tensor, value: torch.Tensor,
           column: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Write the new key/value rows (B, Hkv, Dh) into the cache ``kv`` and return what each row attends to: a batch
    (cache rows = B) writes row b at ``column`` of its own cache row; one sequence (a cache of batch 1, B > 1 rows)
    writes row i at ``column + i``, and every row reads that one cache."""
    keys, values = kv
    rows = key.shape[0]
    if keys.shape[0] == rows:
        keys[:, :, column], values[:, :, column] = key, value
        return keys, values
    keys[0, :, column : column + rows], values[0, :, column : column + rows] = key.transpose(0, 1), value.transpose(0, 1)
    return keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1)


def _rotated(qk: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """transformers' rotary embedding of heads ``qk`` (..., d), the same ops: x * cos + (-x2, x1) * sin."""
    half = qk.shape[-1] // 2
    return qk * cos + torch.cat((-qk[..., half:], qk[..., :half]), dim=-1) * sin


def _rms(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """transformers' Llama/Qwen2 RMSNorm, the same ops: normalised in fp32, scaled in ``x``'s dtype."""
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    return norm.weight * h.to(x.dtype)


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A bool attention mask as the additive one (0 where allowed, -inf elsewhere) that
    ``scaled_dot_product_attention`` makes of it at each call: the same values, so the same bits."""
    if mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(mask.logical_not(), float("-inf"))


def lean_decoder(language_model: nn.Module) -> LeanDecoder | None:
    """The model's :class:`LeanDecoder`, built on first use; None when the model is not covered."""
    if os.environ.get("LHAMA_LEAN_DECODE", "1") == "0":
        return None  # switched off: every step runs the transformers forward
    built = getattr(language_model, _ATTR, None)
    if built is None and language_model.training:
        return None  # a model being trained is left as it is
    if built is None:
        with torch.no_grad():
            built = LeanDecoder(language_model) if covered(language_model) else False
        object.__setattr__(language_model, _ATTR, built)  # not a submodule: no state-dict entries
    return built or None


def covered(language_model: nn.Module) -> bool:
    """Whether :class:`LeanDecoder` computes exactly what this model's forward does."""
    config = getattr(language_model, "config", None)
    if config is None or getattr(config, "model_type", None) not in _TYPES:
        return False
    rope = (getattr(config, "rope_parameters", None) or {}).get("rope_type", "default")
    return (rope in ("default", "linear", "llama3") and not getattr(config, "use_sliding_window", False)
            and getattr(config, "hidden_act", "silu") == "silu"
            and getattr(config, "_attn_implementation", "sdpa") == "sdpa"
            and all(t == "full_attention" for t in getattr(config, "layer_types", None) or ()))


def usable(decoder: LeanDecoder | None, cache: object) -> bool:
    """Whether ``decoder`` can step ``cache`` (a static cache of full-attention layers)."""
    layers = getattr(cache, "layers", None)
    return decoder is not None and bool(layers) and all(type(layer) is StaticLayer for layer in layers)
