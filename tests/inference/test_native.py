"""The native int4 kernel (AVX512-VNNI, int8 activations) against PyTorch's int4 kernel and fp32."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lhama.inference import native
from lhama.inference.qlinear import Int4Linear, Int8Linear, int4_mm

pytestmark = pytest.mark.skipif(native.kernel() is None, reason="no AVX512-VNNI CPU or no C compiler here")


def _layer(rows: int, inputs: int, group: int, seed: int = 0) -> tuple[nn.Linear, Int4Linear]:
    torch.manual_seed(seed)
    linear = nn.Linear(inputs, rows, bias=False)
    return linear, Int4Linear.from_linear(linear, group)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float() - b.detach().float()).norm() / b.detach().float().norm())


@pytest.mark.parametrize(("rows", "inputs", "group"), [(128, 256, 64), (192, 512, 128), (64, 128, 32)])
def test_one_row_matches_pytorch_kernel_within_the_activation_rounding(rows: int, inputs: int, group: int) -> None:
    linear, layer = _layer(rows, inputs, group)
    x = torch.randn(1, inputs).to(torch.bfloat16)
    got = native.int4_rows(x, layer.weight, layer.scales_and_zeros, group)
    aten = torch.ops.aten._weight_int4pack_mm_for_cpu(x, layer.weight, group, layer.scales_and_zeros)
    assert got.shape == (1, rows) and got.dtype == torch.bfloat16
    assert _rel(got, aten) < 0.015  # int8 activations: ~0.6% measured
    assert abs(_rel(got, x.float() @ linear.weight.t()) - _rel(aten, x.float() @ linear.weight.t())) < 0.01
    assert not torch.equal(got, aten)  # it is another computation, not a call of PyTorch's


def test_each_row_of_a_few_is_its_own_one_row_product() -> None:
    _, layer = _layer(128, 256, 64, seed=1)
    x = torch.randn(7, 256).to(torch.bfloat16)  # rows are taken 4 at a time: 4 + 3
    many = native.int4_rows(x, layer.weight, layer.scales_and_zeros, 64)
    for m in range(7):
        assert torch.equal(many[m : m + 1], native.int4_rows(x[m : m + 1], layer.weight, layer.scales_and_zeros, 64))


def test_int4_mm_runs_the_native_kernel_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    _, layer = _layer(128, 256, 64, seed=2)
    aten = torch.ops.aten._weight_int4pack_mm_for_cpu
    for rows in (1, 4, 13):  # a decode step, a speculative check, a prompt
        x = torch.randn(rows, 256).to(torch.bfloat16)
        assert torch.equal(int4_mm(x, layer.weight, 64, layer.scales_and_zeros),
                           native.int4_rows(x, layer.weight, layer.scales_and_zeros, 64))
    monkeypatch.setenv("LHAMA_INT4_KERNEL", "aten")  # the switch back to PyTorch's kernel
    assert torch.equal(int4_mm(x, layer.weight, 64, layer.scales_and_zeros), aten(x, layer.weight, 64,
                                                                                layer.scales_and_zeros))


def test_shapes_it_does_not_take_go_to_pytorch() -> None:
    assert not native.usable(80, 256, 64)  # output rows not whole blocks of 64
    assert native.usable(128, 256, 64) and not native.usable(128, 250, 64)
    _, layer = _layer(72, 128, 32)  # padded to 80 rows
    x = torch.randn(1, 128).to(torch.bfloat16)
    assert torch.equal(layer(x), torch.ops.aten._weight_int4pack_mm_for_cpu(
        x, layer.weight, 32, layer.scales_and_zeros)[:, :72])


def _reference_int4(x: torch.Tensor, linear: nn.Linear, group: int) -> torch.Tensor:
    """The native int4 kernel's arithmetic in float64: int8 activations per group (absmax / 127,
    round half to even), 4-bit weights w = (q - 8) scale + zero as Int4Linear stores them."""
    weight = linear.weight.detach().double().reshape(linear.out_features, -1, group)
    low, high = weight.amin(-1, keepdim=True), weight.amax(-1, keepdim=True)
    scale = ((high - low) / 15).clamp(min=1e-8).to(torch.bfloat16).double()
    zero = (low + 8 * ((high - low) / 15).clamp(min=1e-8)).to(torch.bfloat16).double()
    q = torch.round((weight - low) / ((high - low) / 15).clamp(min=1e-8)).clamp(0, 15)  # as from_linear rounds
    xs = x.double().reshape(x.shape[0], -1, group)
    dx = xs.abs().amax(-1, keepdim=True).float().double() / 127
    xq = torch.round(xs * (127 / xs.abs().amax(-1, keepdim=True))).clamp(-127, 127)
    dot = torch.einsum("mgk,ngk->mng", xq, q)  # exact integer sums, (M, N, G)
    out = dx[..., 0][:, None, :] * (scale[..., 0][None] * dot + (zero - 8 * scale)[..., 0][None] * xq.sum(-1)[:, None, :])
    return out.sum(-1)


@pytest.mark.parametrize("group", [32, 64, 128])
def test_every_group_size_equals_its_exact_arithmetic_up_to_the_final_rounding(group: int) -> None:
    linear, layer = _layer(128, 512, group, seed=group)
    x = torch.randn(3, 512).to(torch.bfloat16)
    got = native.int4_rows(x, layer.weight, layer.scales_and_zeros, group).double()
    want = _reference_int4(x, linear, group)
    # fp32 sums in another order, then bf16: within a few bf16 steps (2^-8) of the exact value
    assert ((got - want).abs() <= 2**-7 * want.abs() + 1e-3 * want.abs().max()).all()
    assert _rel(got, want) < 0.004


def _int8_layer(rows: int, inputs: int, seed: int = 0) -> tuple[nn.Linear, Int8Linear]:
    torch.manual_seed(seed)
    linear = nn.Linear(inputs, rows, bias=False)
    return linear, Int8Linear.from_linear(linear)


def test_int8_product_matches_pytorch_kernel_and_each_row_is_its_own_product() -> None:
    linear, layer = _int8_layer(70, 256)  # 70 rows: not a multiple of the 16-row items
    x = torch.randn(6, 256).to(torch.bfloat16)
    got = native.int8_rows(x, layer.weight, layer.scales)
    aten = torch.ops.aten._weight_int8pack_mm(x, layer.weight, layer.scales)
    assert got.shape == (6, 70) and got.dtype == torch.bfloat16
    assert _rel(got, aten) < 0.003  # int16 activations: only the bf16 output rounding and sum order
    assert not torch.equal(got, aten)
    exact = (x.double() @ layer.weight.double().t()) * layer.scales.double()
    assert _rel(got, exact) < 0.003
    for m in range(6):
        assert torch.equal(got[m : m + 1], native.int8_rows(x[m : m + 1], layer.weight, layer.scales))


def test_int8_mm_runs_the_native_kernel_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    _, layer = _int8_layer(64, 128, seed=3)
    x = torch.randn(2, 128).to(torch.bfloat16)
    assert torch.equal(layer(x), native.int8_rows(x, layer.weight, layer.scales))
    monkeypatch.setenv("LHAMA_INT4_KERNEL", "aten")
    assert torch.equal(layer(x), torch.ops.aten._weight_int8pack_mm(x, layer.weight, layer.scales))
    assert not native.usable_int8(48)  # inputs not a multiple of 32


@pytest.mark.parametrize("pool", ["own", "omp"])
def test_thread_count_and_work_sharing_do_not_change_a_bit(monkeypatch: pytest.MonkeyPatch, pool: str) -> None:
    _, layer4 = _layer(640, 256, 64, seed=4)  # 10 row blocks
    _, layer8 = _int8_layer(300, 256, seed=5)
    x = torch.randn(9, 256).to(torch.bfloat16)
    monkeypatch.setenv("LHAMA_KERNEL_THREADS", "1")
    want4 = native.int4_rows(x, layer4.weight, layer4.scales_and_zeros, 64)
    want8 = native.int8_rows(x, layer8.weight, layer8.scales)
    monkeypatch.setenv("LHAMA_KERNEL_POOL", pool)
    for threads in ("2", "3"):
        monkeypatch.setenv("LHAMA_KERNEL_THREADS", threads)
        for _ in range(20):  # repeated: the workers claim different blocks each time
            assert torch.equal(native.int4_rows(x, layer4.weight, layer4.scales_and_zeros, 64), want4)
            assert torch.equal(native.int8_rows(x, layer8.weight, layer8.scales), want8)
