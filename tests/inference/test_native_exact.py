"""The native kernels (AVX512-VNNI, or its AVX2 port) bit for bit against their arithmetic written out in numpy:
int8 activations per group, exact integer sums, then the same fp32 mul / fma / add per output, bf16 out. The same
test holds for both builds, so the two give the same bits (docs/benchmarks.md, #27 session 10)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lhama.inference import native, qlinear
from lhama.inference.lean import Fused
from lhama.inference.qlinear import (Int4KLinear, Int4Linear, Int6KLinear, Int8Linear, int8_mm, k4_decoded,
                                     scale_kind, unpack_high, unpacked_int4)

# Each kernel on the scales as the layers store them, and (AVX2 port) on the same scales in the blocked layout.
LAYOUTS = [False, pytest.param(True, marks=pytest.mark.skipif(not native.reads_blocked(), reason="no blocked scales"))]

pytestmark = pytest.mark.skipif(native.kernel() is None, reason="no native kernel (AVX512-VNNI or AVX2) here")
F32 = np.float32


def _fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """fp32 fused multiply-add, one rounding: the product is exact in float64; the sum's float64 rounding error
    (TwoSum) decides the rare float64 result that lies exactly halfway between two float32 values."""
    p, c = a.astype(np.float64) * b.astype(np.float64), c.astype(np.float64)
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)
    r = s.astype(F32)
    other = np.nextafter(r, np.where(s > r.astype(np.float64), F32(np.inf), F32(-np.inf)).astype(F32))
    tie = (r.astype(np.float64) != s) & ((r.astype(np.float64) + other.astype(np.float64)) / 2 == s) & (err != 0)
    toward = np.where(err > 0, np.maximum(r, other), np.minimum(r, other))
    return np.where(tie, toward, r)


def _quantized_rows(x: torch.Tensor, group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xq (M, G, g) int64, dx (M, G), sx (M, G) fp32: absmax / 127 per group, round half to even."""
    xs = x.float().numpy().reshape(x.shape[0], -1, group)
    amax = np.abs(xs).max(-1)
    inv = np.where(amax > 0, F32(127) / np.where(amax > 0, amax, F32(1)), F32(0)).astype(F32)
    xq = np.rint((xs * inv[..., None]).astype(F32)).astype(np.int64)
    dx = (amax / F32(127)).astype(F32)
    return xq, dx, (dx * xq.sum(-1).astype(F32)).astype(F32)


def _emulated(x: torch.Tensor, q: torch.Tensor, scale: np.ndarray, offset: np.ndarray, group: int) -> torch.Tensor:
    """(M, N) bf16 from weights q (N, K) and per-group (G, N) fp32 scale and offset: w = scale q + offset."""
    xq, dx, sx = _quantized_rows(x, group)
    qg = q.numpy().astype(np.int64).reshape(q.shape[0], -1, group)  # (N, G, g)
    dots = np.einsum("mgk,ngk->mgn", xq, qg)  # exact integer sums
    acc = np.zeros((x.shape[0], q.shape[0]), F32)
    for gi in range(qg.shape[1]):
        dot = (dots[:, gi].astype(F32) * (scale[gi][None] * dx[:, gi, None]).astype(F32)).astype(F32)
        acc = (acc + _fma32(np.broadcast_to(offset[gi][None], dot.shape), np.broadcast_to(sx[:, gi, None], dot.shape),
                            dot)).astype(F32)
    return torch.from_numpy(acc).to(torch.bfloat16)  # round to nearest even, as the kernel's float_to_bf16


def _linear(rows: int, inputs: int, seed: int) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(inputs, rows, bias=False)


@pytest.mark.parametrize("blocked", LAYOUTS)
@pytest.mark.parametrize(("rows", "inputs", "group"), [(128, 256, 32), (192, 512, 64), (64, 384, 128)])
def test_int4_pairs_are_their_arithmetic_bit_for_bit(rows: int, inputs: int, group: int, blocked: bool) -> None:
    layer = Int4Linear.from_linear(_linear(rows, inputs, seed=rows), group)
    pairs = layer.scales_and_zeros.float().numpy()  # (G, N, 2): offset = zero - 8 scale, rounded once
    scale, offset = pairs[..., 0], (pairs[..., 1] - F32(8) * pairs[..., 0]).astype(F32)
    sz = native.blocked(layer.scales_and_zeros, 1) if blocked else layer.scales_and_zeros
    for m in (1, 3, 6):
        x = torch.randn(m, inputs).to(torch.bfloat16)
        got = native.int4_rows(x, layer.weight, sz, group, blocked_scales=blocked)
        assert torch.equal(got, _emulated(x, unpacked_int4(layer.weight), scale, offset, group))


@pytest.mark.parametrize("blocked", LAYOUTS)
@pytest.mark.parametrize(("rows", "inputs", "ms"), [(192, 512, (1, 2, 5)), (4096, 1536, (4,))])
def test_kscales_are_their_arithmetic_bit_for_bit(rows: int, inputs: int, ms: tuple[int, ...], blocked: bool) -> None:
    """The second case has the shipped layers' width and enough outputs (16,384) that fp32 steps done in another
    order change a few bf16 results (the fma as a multiply then an add: 2 of 16,384 differ; the small cases: none)."""
    layer = Int4KLinear.from_linear(_linear(rows, inputs, seed=5), 32, grid=True)
    scale, offset = (t.numpy() for t in k4_decoded(layer.codes, layer.highs, layer.supers, 32))
    scales = (layer.codes, layer.highs, layer.supers)
    if blocked:
        scales = (native.blocked(layer.codes, 1), native.blocked(layer.highs, 1), native.blocked(layer.supers, 2))
    for m in ms:
        x = (3 * torch.randn(m, inputs)).to(torch.bfloat16)
        got = native.int4k_rows(x, layer.weight, *scales, 32, blocked_scales=blocked)
        assert torch.equal(got, _emulated(x, unpacked_int4(layer.weight), scale, offset, 32))


@pytest.mark.skipif(not native.reads_records(), reason="no k-scale records here")
@pytest.mark.parametrize(("rows", "inputs", "group", "ms"), [(192, 512, 32, (1, 2, 5)), (4096, 1536, 32, (4,)),
                                                            (128, 768, 64, (1, 3))])
def test_kscale_records_are_their_arithmetic_bit_for_bit(rows: int, inputs: int, group: int, ms: tuple[int, ...]) -> None:
    """The k-scales as records (native.kscale_records: one array per block, 6-bit codes put together at load), also
    with 64-input groups (4 per super-block; the kernel's path for a group size other than 32); the layers'
    product (qlinear.int4k_mm) reads them."""
    layer = Int4KLinear.from_linear(_linear(rows, inputs, seed=7), group, grid=True)
    scale, offset = (t.numpy() for t in k4_decoded(layer.codes, layer.highs, layer.supers, group))
    records = native.kscale_records(layer.codes, layer.highs, layer.supers)
    assert records.shape == (rows // 64, inputs // 256, 256 + 128 * (256 // group))
    assert (native.laid_out("int4k", (layer.codes, 1), (layer.highs, 1), (layer.supers, 2))[0] == records).all()
    for m in ms:
        x = (3 * torch.randn(m, inputs)).to(torch.bfloat16)
        want = _emulated(x, unpacked_int4(layer.weight), scale, offset, group)
        assert torch.equal(native.int4k_records_rows(x, layer.weight, records, group), want)
        assert torch.equal(layer(x), want)


def test_the_caller_names_the_scale_layout() -> None:
    """native.laid_out lays scales out by the kind its caller names (qlinear.scale_kind), not by their count or dtype:
    the same three k-scale arrays are records only as "int4k"; an unknown kind is a one-line error."""
    layer = Int4KLinear.from_linear(_linear(128, 512, seed=5), 32, grid=True)
    arrays = ((layer.codes, 1), (layer.highs, 1), (layer.supers, 2))
    assert scale_kind(Int4KLinear) == "int4k" and scale_kind(Int6KLinear) == "int6k" and scale_kind(Int8Linear) is None
    as_blocked = native.laid_out("int6k", *arrays)  # the blocked layout of each array, whatever they hold
    assert len(as_blocked) == 3
    assert all(torch.equal(t, native.blocked(a, axis)) for t, (a, axis) in zip(as_blocked, arrays))
    records = native.laid_out("int4k", *arrays)
    assert len(records) == (1 if native.reads_records() else 3)
    if native.reads_records():
        assert torch.equal(records[0], native.kscale_records(layer.codes, layer.highs, layer.supers))
    with pytest.raises(ValueError, match="unknown packed layer kind 'q4'"):
        native.laid_out("q4", *arrays)


@pytest.mark.parametrize("blocked", LAYOUTS)
def test_six_bit_layers_are_their_arithmetic_bit_for_bit(blocked: bool) -> None:
    layer = Int6KLinear.from_linear(_linear(128, 768, seed=6))
    codes, supers = (native.blocked(layer.codes, 1), native.blocked(layer.supers, 1)) if blocked else (layer.codes, layer.supers)
    step = (layer.codes.float() * layer.supers.float().repeat_interleave(16, dim=0)).numpy()  # d code, (G, N)
    q = unpacked_int4(layer.weight) + 16 * unpack_high(layer.hi)
    assert int(q.max()) > 47 and int(q.min()) < 16  # the high bits are exercised
    for m in (1, 4, 7):
        x = torch.randn(m, 768).to(torch.bfloat16)
        got = native.int6k_rows(x, layer.weight, layer.hi, codes, supers, 16, blocked_scales=blocked)
        assert torch.equal(got, _emulated(x, q, step, (F32(-32) * step).astype(F32), 16))


LAID6 = pytest.mark.skipif(not native.reads_laid6(), reason="no laid 6-bit product here (the AVX2 port has it)")


@LAID6
@pytest.mark.parametrize(("rows", "inputs", "ms"), [(192, 768, (1, 4, 7)), (2048, 1536, (1, 2))])
def test_laid_six_bit_weights_are_their_arithmetic_bit_for_bit(rows: int, inputs: int, ms: tuple[int, ...]) -> None:
    """The 6-bit weights re-ordered in place for the AVX2 product (native.lay6): the same arithmetic's bits for one
    activation row, four and a rest; laid back, the stored bytes again."""
    layer = Int6KLinear.from_linear(_linear(rows, inputs, seed=rows))
    stored = layer.weight.clone(), layer.hi.clone()
    step = (layer.codes.float() * layer.supers.float().repeat_interleave(16, dim=0)).numpy()  # d code, (G, N)
    q = unpacked_int4(layer.weight) + 16 * unpack_high(layer.hi)
    codes, supers = native.blocked(layer.codes, 1), native.blocked(layer.supers, 1)
    native.lay6(layer.weight, layer.hi, laid=True)
    assert not torch.equal(layer.weight, stored[0]) and not torch.equal(layer.hi, stored[1])
    for m in ms:
        x = torch.randn(m, inputs).to(torch.bfloat16)
        got = native.int6k_laid_rows(x, layer.weight, layer.hi, codes, supers)
        assert torch.equal(got, _emulated(x, q, step, (F32(-32) * step).astype(F32), 16))
    native.lay6(layer.weight, layer.hi, laid=False)
    assert torch.equal(layer.weight, stored[0]) and torch.equal(layer.hi, stored[1])


@LAID6
def test_a_six_bit_layer_lays_its_weights_once_and_saves_the_stored_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Int6KLinear lays its weights at the first product (or at load) and keeps the bits of the stored-order product;
    its state dict holds the stored order; a load of stored-order buffers and the slow reference both read them as
    such."""
    layer = Int6KLinear.from_linear(_linear(128, 512, seed=13), 16)
    stored = {k: v.clone() for k, v in layer.state_dict().items()}
    x = torch.randn(3, 512).to(torch.bfloat16)
    want = native.int6k_rows(x, layer.weight, layer.hi, layer.codes, layer.supers, 16)[:, :128]
    assert torch.equal(layer(x), want) and qlinear.laid6(layer, lay=False)
    assert not torch.equal(layer.weight, stored["weight"])
    assert all(torch.equal(v, stored[k]) for k, v in layer.state_dict().items())
    layer.load_state_dict(stored)  # copied into the laid buffers: stored order again
    assert not qlinear.laid6(layer, lay=False) and torch.equal(layer(x), want)
    monkeypatch.setenv("LHAMA_INT4_KERNEL", "aten")  # the fp32 reference: other bits, the same weights
    reference = layer(x)
    assert not qlinear.laid6(layer, lay=False) and torch.equal(layer.weight, stored["weight"])
    assert (reference.float() - want.float()).abs().max() < 0.05 * want.float().abs().max()


def _int8_emulated(x: torch.Tensor, layer: Int8Linear) -> torch.Tensor:
    """int16 activations (absmax / 16383), 16 int32 lanes (input pairs 2 l, 2 l + 1 of each 32), one fp32 sum per
    8192 inputs (added in turn), then the lanes summed as gcc's _mm512_reduce_add_ps does, times scale * dx."""
    xs = x.float().numpy()
    amax = np.abs(xs).max(-1)
    xq = np.rint((xs * (F32(16383) / amax)[:, None]).astype(F32)).astype(np.int64)
    dx = (amax / F32(16383)).astype(F32)
    w = layer.weight.numpy().astype(np.int64)
    acc = np.zeros((x.shape[0], w.shape[0], 16), F32)
    for start in range(0, w.shape[1], 8192):
        xs_, ws_ = xq[:, start:start + 8192], w[:, start:start + 8192]
        lanes = np.einsum("mcla,ncla->mnl", xs_.reshape(x.shape[0], -1, 16, 2), ws_.reshape(w.shape[0], -1, 16, 2))
        acc = (acc + lanes.astype(F32)).astype(F32)
    t3 = (acc[..., 8:] + acc[..., :8]).astype(F32)
    t6 = (t3[..., 4:] + t3[..., :4]).astype(F32)
    total = ((t6[..., 0] + t6[..., 2]).astype(F32) + (t6[..., 1] + t6[..., 3]).astype(F32)).astype(F32)
    scales = layer.scales.float().numpy()
    return torch.from_numpy((total * (scales[None] * dx[:, None]).astype(F32)).astype(F32)).to(torch.bfloat16)


def test_layers_keep_blocked_scales_and_rebuild_them_for_new_buffers() -> None:
    """A layer's product is its arithmetic through the kept blocked copy; new codes (another layer's) are used, not the
    stale copy."""
    first, second = (Int4KLinear.from_linear(_linear(128, 512, seed=seed), 32, grid=True) for seed in (11, 12))
    x = torch.randn(2, 512).to(torch.bfloat16)
    for layer in (first, second):
        scale, offset = (t.numpy() for t in k4_decoded(layer.codes, layer.highs, layer.supers, 32))
        assert torch.equal(layer(x), _emulated(x, unpacked_int4(layer.weight), scale, offset, 32))
    assert ("_native_scales" in first.__dict__) == native.reads_blocked()
    first.weight, first.codes, first.highs, first.supers = second.weight, second.codes, second.highs, second.supers
    assert torch.equal(first(x), second(x))


def test_a_fused_product_and_its_parts_share_one_blocked_copy_and_keep_their_bits() -> None:
    """lean.Fused (query/key/value as one product): the parts' blocked scales are views of the fused ones, and every
    product gives the bits of the part alone, before fusing."""
    parts = [Int4KLinear.from_linear(_linear(rows, 512, seed=rows), 32, grid=True) for rows in (128, 64, 64)]
    x = torch.randn(3, 512).to(torch.bfloat16)
    alone = [p(x) for p in parts]
    for p in parts:
        p.__dict__.pop("_native_scales", None)
    fused = Fused(parts)
    assert torch.equal(fused(x), torch.cat(alone, dim=-1))
    assert all(torch.equal(p(x), want) for p, want in zip(parts, alone))
    if native.reads_blocked():
        storage = fused.__dict__["_native_scales"][1][0].untyped_storage().data_ptr()
        assert all(p.__dict__["_native_scales"][1][0].untyped_storage().data_ptr() == storage for p in parts)


@pytest.mark.parametrize(("rows", "inputs", "ms"), [(70, 1024, (1, 3, 5)), (37, 1056, (1, 2, 6))])
def test_int8_rows_are_their_arithmetic_bit_for_bit(rows: int, inputs: int, ms: tuple[int, ...]) -> None:
    """Rows not a multiple of the kernel's work items, inputs with and without a 32-input tail, one activation row
    and several (groups of four and a rest)."""
    layer = Int8Linear.from_linear(_linear(rows, inputs, seed=8))
    for m in ms:
        x = torch.randn(m, inputs).to(torch.bfloat16)
        assert torch.equal(int8_mm(x, layer.weight, layer.scales), _int8_emulated(x, layer))


def test_int8_rows_over_8192_inputs_are_their_arithmetic_bit_for_bit() -> None:
    """Over 8192 inputs the kernel adds each 8192's lane sums in fp32 (here two windows, the second with a 32-input
    tail); same-sign weights and inputs make the lane sums pass 2^24, where fp32 conversions round."""
    linear = _linear(40, 8992, seed=9)
    with torch.no_grad():
        linear.weight.abs_()
    layer = Int8Linear.from_linear(linear)
    x = torch.rand(5, 8992).to(torch.bfloat16)
    want = _int8_emulated(x, layer)
    for m in (1, 2, 5):
        assert torch.equal(int8_mm(x[:m], layer.weight, layer.scales), want[:m])


def test_the_kernel_matches_this_cpu_and_packing() -> None:
    variant = native._variant()
    assert variant is not None and native.packed_rows() in (32, 64)
    assert variant[0] == ((native.SOURCE,) if native.packed_rows() == 64 else native.SOURCES_AVX2)
