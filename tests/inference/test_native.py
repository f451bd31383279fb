"""The native int4 kernel (AVX512-VNNI, int8 activations) against PyTorch's int4 kernel and fp32."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lhama.inference import native
from lhama.inference.quant import Int4Linear, int4_mm

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
