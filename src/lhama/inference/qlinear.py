"""The quantised linear layers of lhama.inference.quant's plans, and their packed products.

- :class:`Int8Linear`: int8 weights, one bf16 scale per output row (PyTorch's ``_weight_int8pack_mm``
  layout; the native int8 kernel where it runs).
- :class:`Int4Linear`: 4-bit weights packed for ``_weight_int4pack_mm_for_cpu``, a bf16 (scale, zero)
  pair per group; :func:`int4_groups` rounds (plain or ``grid``), :func:`on_grid` tells a Q4_K layer.
- :class:`Int4KLinear`: the same 4-bit weights with "k-scales" (Q4_K's 6-bit codes under two fp16
  super-scales per 256 inputs: :mod:`lhama.inference.kscales`), native kernel only (else PyTorch's on rebuilt pairs).
- :class:`Int6KLinear`: 6-bit weights (low 4 bits packed as int4, high 2 bits in ``hi``) in groups of
  16 with Q6_K's scales, for the layers a 4-bit grid cannot hold; a Q6_K layer is stored exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn

from lhama.inference import native
from lhama.inference.kscales import KSUPER, pack_q4k, q4k_codes, q6k_codes, unpack_q4k

_CHUNK = 4096  # rows quantised at a time (a multiple of 64: int4 packs such row blocks independently)
ACTIVATIONS = torch.bfloat16  # dtype of the hidden states once a model is bf16/int8/int4


def _row_blocks(linear: nn.Linear, padded: int, group_size: int) -> Iterator[tuple[int, int, torch.Tensor]]:
    """``linear``'s weight in blocks of ``_CHUNK`` rows, zero-padded to ``padded`` rows in all:
    ``(start, rows, groups)`` with groups (rows, K / group_size, group_size) in fp32."""
    for start in range(0, padded, _CHUNK):
        weight = linear.weight.detach()[start : start + _CHUNK].float()  # (n, K)
        rows = min(_CHUNK, padded - start)
        weight = torch.cat([weight, weight.new_zeros(rows - weight.shape[0], weight.shape[1])])  # (rows, K)
        yield start, rows, weight.reshape(rows, -1, group_size)


class Int8Linear(nn.Module):
    """``y = x W^T (* per-row scale) + b`` with W stored as int8 (N, K); x is cast to bf16."""

    def __init__(self, in_features: int, out_features: int, bias: bool, device: torch.device | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.empty(out_features, in_features, dtype=torch.int8, device=device))
        self.register_buffer("scales", torch.empty(out_features, dtype=ACTIVATIONS, device=device))
        self.register_buffer("bias", torch.empty(out_features, dtype=ACTIVATIONS, device=device) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None)
        for start in range(0, linear.out_features, _CHUNK):  # row blocks: small fp32 temporaries
            weight = linear.weight.detach()[start : start + _CHUNK].float()  # (n, K)
            scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-8)  # (n,) symmetric, per output row
            layer.weight[start : start + _CHUNK] = torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8)
            layer.scales[start : start + _CHUNK] = scales
        if linear.bias is not None:
            layer.bias.copy_(linear.bias.detach())
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(ACTIVATIONS)  # (M, K)
        out = int8_mm(flat, self.weight, self.scales)  # (M, N)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


class Int4Linear(nn.Module):
    """``y = x W^T + b`` with W in groups of ``group_size`` inputs: ``w = q * scale + min`` for
    4-bit q in 0..15 (asymmetric), packed for ``_weight_int4pack_mm_for_cpu``."""

    def __init__(self, in_features: int, out_features: int, bias: bool, group_size: int,
                 device: torch.device | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        padded = -(-out_features // 16) * 16  # the kernel packs outputs in tiles of 16
        self.register_buffer("weight", torch.empty(padded, in_features // 2, dtype=torch.uint8, device=device))
        self.register_buffer("scales_and_zeros",
                             torch.empty(in_features // group_size, padded, 2, dtype=ACTIVATIONS, device=device))
        self.register_buffer("bias", torch.empty(out_features, dtype=ACTIVATIONS, device=device) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int, grid: bool = False) -> Int4Linear:
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, group_size)
        padded = layer.weight.shape[0]
        # Row blocks of _CHUNK (a multiple of 64) pack exactly as the whole matrix does (tested).
        for start, rows, groups in _row_blocks(linear, padded, group_size):
            q, scale, low = int4_groups(groups, grid)
            q = q.to(torch.int32).reshape(rows, -1)  # (n', K)
            layer.weight[start : start + rows] = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
            # The kernel computes (q - 8) * scale + zero, so zero = min + 8 * scale.
            layer.scales_and_zeros[:, start : start + rows] = torch.cat([scale, low + 8 * scale], dim=-1).transpose(0, 1)
        if linear.bias is not None:
            layer.bias.copy_(linear.bias.detach())
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(ACTIVATIONS)  # (M, K)
        out = int4_mm(flat, self.weight, self.group_size, self.scales_and_zeros, owner=self)
        out = out[:, : self.out_features]  # (M, N), padding rows dropped
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


class Int4KLinear(nn.Module):
    """:class:`Int4Linear`'s packed 4-bit weights with "k-scales" in llama.cpp's Q4_K block format
    (:func:`lhama.inference.kscales.q4k_codes`): per group a 6-bit scale code ``sc`` and low code ``m``
    (``codes`` (K/g, N) uint8: their low 4 bits; ``highs`` (K/256, N) int32: their top 2 bits, 4 bits per
    group of a super-block) and per 256 inputs two fp16 super-scales ``supers`` (2, K/256, N):
    ``w = d sc q - dmin m``. 0.5 bits per weight of scales at g = 32 (Q4_K's), against 1 for bf16 pairs."""

    def __init__(self, in_features: int, out_features: int, bias: bool, group_size: int,
                 device: torch.device | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        padded = -(-out_features // 64) * 64  # the native kernel's row blocks
        self.register_buffer("weight", torch.empty(padded, in_features // 2, dtype=torch.uint8, device=device))
        self.register_buffer("codes", torch.empty(in_features // group_size, padded, dtype=torch.uint8, device=device))
        self.register_buffer("highs", torch.empty(in_features // KSUPER, padded, dtype=torch.int32, device=device))
        self.register_buffer("supers", torch.empty(2, in_features // KSUPER, padded, dtype=torch.float16, device=device))
        self.register_buffer("bias", torch.empty(out_features, dtype=ACTIVATIONS, device=device) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int, grid: bool = False) -> Int4KLinear:
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, group_size)
        padded, per_super = layer.weight.shape[0], KSUPER // group_size
        for start, rows, groups in _row_blocks(linear, padded, group_size):
            _, scale, low = int4_groups(groups, grid)
            sc, m, supers, scale, low = q4k_codes(groups, scale, low, per_super)
            q = torch.round((groups - low) / scale.clamp(min=1e-30)).clamp(0, 15)  # again, on the coded levels
            layer.weight[start : start + rows] = torch.ops.aten._convert_weight_to_int4pack_for_cpu(
                q.to(torch.int32).reshape(rows, -1), 1)
            low_bits, high_bits = pack_q4k(sc, m, per_super)
            layer.codes[:, start : start + rows] = low_bits.transpose(0, 1)
            layer.highs[:, start : start + rows] = high_bits.transpose(0, 1)
            layer.supers[:, :, start : start + rows] = supers.permute(2, 1, 0)
        if linear.bias is not None:
            layer.bias.copy_(linear.bias.detach())
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(ACTIVATIONS)  # (M, K)
        out = int4k_mm(flat, self.weight, self.group_size, self.codes, self.highs, self.supers, owner=self)
        out = out[:, : self.out_features]
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


class Int6KLinear(nn.Module):
    """6-bit weights (q in 0..63) in groups of ``group_size`` (16) for the layers a 4-bit grid cannot
    hold (a Q6_K GGUF's): the low 4 bits packed as :class:`Int4Linear`'s, the high 2 in ``hi`` (the
    native kernel's lane order, :func:`pack_high`), and Q6_K's scales (:func:`lhama.inference.kscales.q6k_codes`):
    a signed byte per group (``codes`` (K/g, N) int8) under an fp16 super-scale per 256 inputs (``supers``
    (K/256, N)), ``w = super * code * (q - 32)``. 6.5625 bits per weight at g = 16 (Q6_K's; int8: 8). Where the AVX2
    port runs it, ``weight`` and ``hi`` are re-ordered in place at load for its product (:func:`laid6`); the state
    dict keeps the stored order."""

    def __init__(self, in_features: int, out_features: int, bias: bool, group_size: int = 16,
                 device: torch.device | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        padded = -(-out_features // 64) * 64
        self.register_buffer("weight", torch.empty(padded, in_features // 2, dtype=torch.uint8, device=device))
        self.register_buffer("hi", torch.empty(padded // 64, in_features // 4, 64, dtype=torch.uint8, device=device))
        self.register_buffer("codes", torch.empty(in_features // group_size, padded, dtype=torch.int8, device=device))
        self.register_buffer("supers", torch.empty(in_features // KSUPER, padded, dtype=torch.float16, device=device))
        self.register_buffer("bias", torch.empty(out_features, dtype=ACTIVATIONS, device=device) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int = 16) -> Int6KLinear:
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, group_size)
        padded = layer.weight.shape[0]
        for start, rows, groups in _row_blocks(linear, padded, group_size):
            codes, supers, step = q6k_codes(groups, KSUPER // group_size)
            step = torch.where(step == 0, 1.0, step)  # an all-zero group: q = 32
            q = (torch.round(groups / step) + 32).clamp(0, 63).to(torch.int32).reshape(rows, -1)
            layer.weight[start : start + rows] = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q & 15, 1)
            layer.hi[start // 64 : (start + rows) // 64] = pack_high(q >> 4)
            layer.codes[:, start : start + rows] = codes.transpose(0, 1)
            layer.supers[:, start : start + rows] = supers.transpose(0, 1)
        if linear.bias is not None:
            layer.bias.copy_(linear.bias.detach())
        return layer

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if laid6(self, lay=False):  # saved in the stored order, whatever order the kernel reads (native.lay6)
            weight, hi = self.weight.clone(), self.hi.clone()
            native.lay6(weight, hi, laid=False)
            destination[prefix + "weight"], destination[prefix + "hi"] = weight, hi

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self.__dict__.pop("_laid", None)  # the buffers hold the stored order again

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(ACTIVATIONS)  # (M, K)
        out = int6k_mm(flat, self)[:, : self.out_features]
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def pack_high(high: torch.Tensor) -> torch.Tensor:
    """(N, K) values 0..3 (N a multiple of 64) -> (N/64, K/4, 64) uint8 in the native kernel's order:
    per block of 64 rows and step of 4 inputs, register j (rows 16 j..16 j + 15) has lane
    t = 4 r + input offset, kept in bits 2 (t // 16), 2 (t // 16) + 1 of byte 16 j + t % 16."""
    n, k = high.shape
    lanes = high.reshape(n // 64, 4, 16, k // 4, 4).permute(0, 3, 1, 2, 4).reshape(n // 64, k // 4, 4, 4, 16)
    packed = sum(lanes[:, :, :, i].to(torch.int32) << (2 * i) for i in range(4))  # (N/64, K/4, 4 j, 16)
    return packed.to(torch.uint8).reshape(n // 64, k // 4, 64)


def unpack_high(packed: torch.Tensor) -> torch.Tensor:
    """:func:`pack_high`'s inverse: (N/64, K/4, 64) uint8 -> (N, K) uint8 values 0..3."""
    blocks, steps = packed.shape[0], packed.shape[1]
    bytes_ = packed.reshape(blocks, steps, 4, 1, 16).to(torch.int32)
    lanes = (bytes_ >> (2 * torch.arange(4).reshape(1, 1, 1, 4, 1))) & 3  # (B, S, 4 j, 4 i, 16)
    lanes = lanes.reshape(blocks, steps, 4, 16, 4)  # t = 16 i + s = 4 r + offset
    return lanes.permute(0, 2, 3, 1, 4).reshape(blocks * 64, steps * 4).to(torch.uint8)


def int4_groups(groups: torch.Tensor, grid: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q in 0..15, scale, low) of ``groups`` (..., g) fp32, ``w ~ q * scale + low``: the group's
    range in 15 steps, or with ``grid`` in the step count of 15..1 with the least squared error."""
    low, high = groups.amin(-1, keepdim=True), groups.amax(-1, keepdim=True)
    best = None
    for steps in range(15, 0 if grid else 14, -1):
        scale = ((high - low) / steps).clamp(min=1e-8)
        q = torch.round((groups - low) / scale).clamp(0, 15)
        error = (q * scale + low - groups).square().sum(-1, keepdim=True)
        if best is None:
            best = (q, scale, error)
            continue
        better = error < best[2]  # ties keep the finer step
        best = (torch.where(better, q, best[0]), torch.where(better, scale, best[1]), torch.where(better, error, best[2]))
    return best[0], best[1], low


def on_grid(weight: torch.Tensor, group_size: int, share: float = 0.9) -> bool:
    """Whether grid rounding stores at least ``share`` of ``weight``'s groups exactly (within 1%
    of a step): true of a Q4_K layer de-quantised from a GGUF, false of a Q6_K or a trained one."""
    exact = total = 0
    for start in range(0, weight.shape[0], _CHUNK):
        groups = weight.detach()[start : start + _CHUNK].float().reshape(-1, weight.shape[1] // group_size, group_size)
        q, scale, low = int4_groups(groups, grid=True)
        exact += int(((q * scale + low - groups).abs().amax(-1, keepdim=True) <= 0.01 * scale).sum())
        total += groups.shape[0] * groups.shape[1]
    return exact >= share * total


def native_scales(owner: nn.Module | None, kind: str,
                  *scales: tuple[torch.Tensor, int]) -> tuple[torch.Tensor, ...] | None:
    """``owner``'s scale arrays (each with the axis of its N rows; ``kind``: their layout, one of ``native.KINDS``, named
    by the caller) laid out for the kernel's blocked entry points (:func:`lhama.inference.native.laid_out`), built once
    (at load: :func:`build_native_scales`, else at the first product) and kept on ``owner`` (a few MB; rebuilt if a
    buffer is replaced); None where the kernel has no blocked entry points or there is no owner."""
    if owner is None or not native.reads_blocked():
        return None
    key = scales_key(t for t, _ in scales)
    kept = owner.__dict__.get("_native_scales")
    if kept is None or kept[0] != key:
        kept = (key, native.laid_out(kind, *scales))
        owner.__dict__["_native_scales"] = kept
    return kept[1]


def scales_key(arrays: Iterable[torch.Tensor]) -> tuple:
    """What a kept copy of ``arrays`` is valid for: their buffers and the kernel's layout (records or not)."""
    return (native.reads_records(), *(t.data_ptr() for t in arrays))


def scale_arrays(layer: nn.Module) -> tuple[tuple[torch.Tensor, int], ...]:
    """``layer``'s scale arrays with the axis of their N rows, as its product hands them to :func:`native_scales`
    (empty for a layer without packed int4/6-bit weights; their layout: :func:`scale_kind`)."""
    if isinstance(layer, Int4Linear):
        return ((layer.scales_and_zeros, 1),)
    if isinstance(layer, Int4KLinear):
        return (layer.codes, 1), (layer.highs, 1), (layer.supers, 2)
    if isinstance(layer, Int6KLinear):
        return (layer.codes, 1), (layer.supers, 1)
    return ()


def scale_kind(layer_type: type) -> str | None:
    """The scale layout (``native.KINDS``) of a packed layer class, None for others."""
    return {Int4Linear: "int4", Int4KLinear: "int4k", Int6KLinear: "int6k"}.get(layer_type)


def build_native_scales(model: nn.Module) -> int:
    """Builds now, for each packed layer of ``model`` the native kernel runs, the blocked scales its first product
    would build (:func:`native_scales`; kept copies are reused), so a new process's first prefill does not pay it.
    Returns the bytes of blocked scales the layers hold (0 where the kernel reads no blocked scales)."""
    held: dict[int, int] = {}
    for layer in model.modules():
        arrays = scale_arrays(layer)
        if not arrays or not native.usable(layer.weight.shape[0], layer.in_features, layer.group_size):
            continue
        for copy in native_scales(layer, scale_kind(type(layer)), *arrays) or ():
            held[copy.untyped_storage().data_ptr()] = copy.untyped_storage().nbytes()
        if isinstance(layer, Int6KLinear):
            laid6(layer)  # the weights in the order the AVX2 6-bit product reads, at load
    return sum(held.values())


def int4_mm(x: torch.Tensor, weight: torch.Tensor, group_size: int, scales_and_zeros: torch.Tensor,
            owner: nn.Module | None = None) -> torch.Tensor:
    """``x`` (M, K) bf16 times packed int4 ``weight`` -> (M, N padded) bf16: on the native
    kernel where it runs (:mod:`lhama.inference.native`; blocked scales kept on ``owner``, the layer),
    else PyTorch's ``_weight_int4pack_mm_for_cpu``."""
    if native.usable(weight.shape[0], x.shape[1], group_size):
        kept = native_scales(owner, "int4", (scales_and_zeros, 1))  # built at load (build_native_scales), else now
        if kept is not None:
            return native.int4_rows(x, weight, *kept, group_size, blocked_scales=True)
        return native.int4_rows(x, weight, scales_and_zeros, group_size)
    return torch.ops.aten._weight_int4pack_mm_for_cpu(x, weight, group_size, scales_and_zeros)


def int4k_mm(x: torch.Tensor, weight: torch.Tensor, group_size: int, codes: torch.Tensor, highs: torch.Tensor,
             supers: torch.Tensor, owner: nn.Module | None = None) -> torch.Tensor:
    """``x`` (M, K) bf16 times :class:`Int4KLinear`'s weights -> (M, N padded) bf16: the native kernel
    where it runs (blocked scales kept on ``owner``), else PyTorch's int4 kernel on bf16 (scale, zero) pairs
    rebuilt from the codes."""
    if native.usable(weight.shape[0], x.shape[1], group_size):
        kept = native_scales(owner, "int4k", (codes, 1), (highs, 1), (supers, 2))
        if kept is not None and len(kept) == 1:  # records (native.kscale_records)
            return native.int4k_records_rows(x, weight, *kept, group_size)
        if kept is not None:
            return native.int4k_rows(x, weight, *kept, group_size, blocked_scales=True)
        return native.int4k_rows(x, weight, codes, highs, supers, group_size)
    scale, low = k4_decoded(codes, highs, supers, group_size)
    pairs = torch.stack([scale, low + 8 * scale], dim=-1).to(ACTIVATIONS)
    return torch.ops.aten._weight_int4pack_mm_for_cpu(x, weight, group_size, pairs)


def k4_decoded(codes: torch.Tensor, highs: torch.Tensor, supers: torch.Tensor, group_size: int) -> tuple[torch.Tensor, ...]:
    """(scale, low) (K/g, N) fp32 of :class:`Int4KLinear`'s codes, as the native kernel computes them."""
    per_super = KSUPER // group_size
    sc, m = unpack_q4k(codes, highs, per_super)
    wide = supers.float().repeat_interleave(per_super, dim=1)  # (2, K/g, N)
    return sc.float() * wide[0], -m.float() * wide[1]


def int6k_mm(x: torch.Tensor, layer: Int6KLinear) -> torch.Tensor:
    """``x`` (M, K) bf16 times :class:`Int6KLinear` ``layer``'s weights -> (M, N padded) bf16: the
    native kernel where it runs, else the de-quantised weights in fp32 (slow; a reference)."""
    if native.usable(layer.weight.shape[0], x.shape[1], layer.group_size):
        kept = native_scales(layer, "int6k", *scale_arrays(layer))
        if kept is not None and laid6(layer):
            return native.int6k_laid_rows(x, layer.weight, layer.hi, *kept)
        if kept is not None:
            return native.int6k_rows(x, layer.weight, layer.hi, *kept, layer.group_size, blocked_scales=True)
        return native.int6k_rows(x, layer.weight, layer.hi, layer.codes, layer.supers, layer.group_size)
    if laid6(layer, lay=False):  # laid while the kernel ran: back to the stored order
        native.lay6(layer.weight, layer.hi, laid=False)
        layer.__dict__.pop("_laid")
    step = layer.codes.float() * layer.supers.float().repeat_interleave(KSUPER // layer.group_size, dim=0)  # (K/g, N)
    q = unpacked_int4(layer.weight).float() + 16 * unpack_high(layer.hi).float()  # (N, K)
    wide = step.T.repeat_interleave(layer.group_size, dim=1)  # (N, K)
    return (x.float() @ ((q - 32) * wide).T).to(ACTIVATIONS)


def laid6(layer: Int6KLinear, lay: bool = True) -> bool:
    """Whether ``layer``'s weights are in the order the AVX2 6-bit product reads (:func:`native.lay6`, in place, the
    same values); with ``lay``, laid now where that product runs them (groups of 16, inputs a multiple of 256)."""
    key = (layer.weight.data_ptr(), layer.hi.data_ptr())
    if layer.__dict__.get("_laid") == key:
        return True
    if not lay or layer.group_size != 16 or layer.in_features % KSUPER or not native.reads_laid6():
        return False
    with torch.no_grad():
        native.lay6(layer.weight, layer.hi, laid=True)
    layer.__dict__["_laid"] = key
    return True


def unpacked_int4(weight: torch.Tensor) -> torch.Tensor:
    """(N, K/2) uint8 packed by PyTorch's CPU int4 converter here -> (N, K) uint8 values 0..15: per block of
    ``native.packed_rows()`` rows and input, byte j holds row j (low nibble) and row half + j (high nibble)."""
    block = native.packed_rows()
    rows, inputs = weight.shape[0], weight.shape[1] * 2
    blocks = weight.reshape(rows // block, inputs, block // 2)
    return torch.cat([blocks & 15, blocks >> 4], dim=-1).permute(0, 2, 1).reshape(rows, inputs)


def int8_mm(x: torch.Tensor, weight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """``x`` (M, K) bf16 times int8 ``weight`` (N, K) with per-row ``scales`` -> (M, N) bf16: on the
    native kernel where it runs, else PyTorch's ``_weight_int8pack_mm``."""
    if native.usable_int8(x.shape[1]):
        return native.int8_rows(x, weight, scales)
    return torch.ops.aten._weight_int8pack_mm(x, weight, scales)
