"""The int4 product with k-scale records on weights laid in place for the AVX2 port (``int4_laid_avx2.c``,
``native.lay4``, ``lhama.inference.laid``): the same bits as the product on PyTorch's packing, for one activation row,
four and a rest; laid at load, saved in PyTorch's packing, joined into fused products, read back by the fallback and
by a trimmed head (#27 session 16)."""

from __future__ import annotations

import pytest
import torch

from lhama.inference import native
from lhama.inference.draft_vocab import rows_of
from lhama.inference.laid import laid4
from lhama.inference.lean import Fused
from lhama.inference.qlinear import Int4KLinear, build_native_scales, k4_decoded, unpacked_int4
from tests.inference.test_native_exact import _emulated, _linear

pytestmark = pytest.mark.skipif(not native.reads_laid4(), reason="no laid int4 product here (the AVX2 port has it)")


def _layer(rows: int, inputs: int, seed: int) -> Int4KLinear:
    return Int4KLinear.from_linear(_linear(rows, inputs, seed=seed), 32, grid=True)


@pytest.mark.parametrize(("rows", "inputs", "ms"), [(192, 768, (1, 4, 7)), (2048, 1536, (1, 2))])
def test_laid_int4_weights_are_their_arithmetic_bit_for_bit(rows: int, inputs: int, ms: tuple[int, ...]) -> None:
    layer = _layer(rows, inputs, seed=rows)
    stored = layer.weight.clone()
    scale, offset = (t.numpy() for t in k4_decoded(layer.codes, layer.highs, layer.supers, 32))
    q = unpacked_int4(layer.weight)
    records = native.kscale_records(layer.codes, layer.highs, layer.supers)
    native.lay4(layer.weight, laid=True)
    assert not torch.equal(layer.weight, stored)
    for m in ms:
        x = (3 * torch.randn(m, inputs)).to(torch.bfloat16)
        want = _emulated(x, q, scale, offset, 32)
        assert torch.equal(native.int4k_laid_rows(x, layer.weight, records, 32), want)
        assert torch.equal(native.int4k_records_rows(x, stored, records, 32), want)
    native.lay4(layer.weight, laid=False)
    assert torch.equal(layer.weight, stored)


def test_the_laid_product_refuses_what_it_cannot_read() -> None:
    layer = _layer(128, 512, seed=3)
    with pytest.raises(ValueError, match="not an int4 layer's packed weights"):
        native.lay4(layer.weight[:100], laid=True)
    records = native.kscale_records(layer.codes, layer.highs, layer.supers)
    with pytest.raises(ValueError, match="groups of 32 and inputs a multiple of 256, got 64"):
        native.int4k_laid_rows(torch.zeros(1, 512, dtype=torch.bfloat16), layer.weight, records, 64)


def test_an_int4_layer_is_laid_at_load_and_saves_pytorchs_packing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Laid once at load (build_native_scales; a second call changes nothing), the product keeps its bits; the state
    dict holds PyTorch's packing; a load of such buffers is read as such; the fallback reads a copy laid back."""
    layer = _layer(128, 512, seed=13)
    stored = {k: v.clone() for k, v in layer.state_dict().items()}
    x = torch.randn(3, 512).to(torch.bfloat16)
    want = layer(x)
    assert not laid4(layer, lay=False)
    build_native_scales(layer)
    build_native_scales(layer)
    assert laid4(layer, lay=False) and not torch.equal(layer.weight, stored["weight"])
    assert torch.equal(layer(x), want)
    assert all(torch.equal(v, stored[k]) for k, v in layer.state_dict().items())
    monkeypatch.setenv("LHAMA_KERNEL_SCALES", "strided")  # the product on PyTorch's packing, scales as stored
    assert torch.equal(layer(x), want) and laid4(layer, lay=False)
    monkeypatch.setenv("LHAMA_INT4_KERNEL", "aten")  # PyTorch's kernel: other bits, the same weights
    reference = layer(x)
    assert (reference.float() - want.float()).abs().max() < 0.05 * want.float().abs().max()
    monkeypatch.delenv("LHAMA_INT4_KERNEL")
    monkeypatch.delenv("LHAMA_KERNEL_SCALES")
    layer.load_state_dict(stored)  # copied into the laid buffer: PyTorch's packing again
    assert not laid4(layer, lay=False) and torch.equal(layer(x), want)


@pytest.mark.parametrize("laid_parts", [(True, True, True), (True, False, False), (False, False, False)])
def test_fused_products_of_laid_parts_keep_their_bits(laid_parts: tuple[bool, ...]) -> None:
    """lean.Fused joins laid parts (copied side by side here) into one laid product; parts laid and not are all laid
    first; parts never laid stay in PyTorch's packing. Every product keeps the bits of the part alone."""
    parts = [_layer(rows, 512, seed=rows) for rows in (128, 64, 64)]
    x = torch.randn(3, 512).to(torch.bfloat16)
    alone = [p(x) for p in parts]
    for part, lay in zip(parts, laid_parts):
        if lay:
            build_native_scales(part)
    fused = Fused(parts)
    assert laid4(fused, lay=False) == any(laid_parts) and all(laid4(p, lay=False) == any(laid_parts) for p in parts)
    assert torch.equal(fused(x), torch.cat(alone, dim=-1))
    assert all(torch.equal(p(x), want) for p, want in zip(parts, alone))


def test_a_one_part_fused_product_lays_its_layer_once() -> None:
    layer = _layer(192, 512, seed=21)
    x = torch.randn(2, 512).to(torch.bfloat16)
    want = layer(x)
    fused = Fused([layer])
    assert laid4(layer, lay=False) and laid4(fused, lay=False) and fused.weight is layer.weight
    assert torch.equal(fused(x)[:, :192], want) and torch.equal(layer(x), want)


def test_a_trimmed_head_copies_the_rows_of_a_laid_layer() -> None:
    layer = _layer(256, 512, seed=5)
    build_native_scales(layer)
    ids = torch.tensor([3, 200, 64, 65, 0])
    x = torch.randn(2, 512).to(torch.bfloat16)
    assert torch.equal(rows_of(layer, ids)(x), layer(x)[:, ids])
