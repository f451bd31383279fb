"""A packed layer's product decided once and kept (``lhama.inference.bound``): the same bits as the first decision,
no per-call checks while nothing changes, decided again when a switch, the thread count, a buffer or the laid mark
changes (#27 session 16)."""

from __future__ import annotations

import pytest
import torch

from lhama.inference import native
from lhama.inference.laid import laid4
from lhama.inference.lean import Fused
from lhama.inference.qlinear import Int4KLinear, Int6KLinear, build_native_scales
from tests.inference.test_native_exact import _linear

pytestmark = pytest.mark.skipif(not native.reads_records(), reason="no k-scale records product here")


def _layers() -> list[torch.nn.Module]:
    four = [Int4KLinear.from_linear(_linear(rows, 512, seed=rows), 32, grid=True) for rows in (128, 64)]
    return [*four, Int6KLinear.from_linear(_linear(192, 512, seed=9))]


def test_a_kept_product_gives_the_same_bits_without_the_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    layers = _layers()
    x = torch.randn(3, 512).to(torch.bfloat16)
    want = [layer(x) for layer in layers]  # decided (and laid where the product reads laid weights)
    assert all("_bound" in layer.__dict__ for layer in layers)
    monkeypatch.setattr(native, "usable", lambda *a: pytest.fail("a kept product checked the kernel again"))
    assert all(torch.equal(layer(x), w) for layer, w in zip(layers, want))
    assert all(torch.equal(layer(x[:1]), w[:1]) for layer, w in zip(layers, want))  # one row: its own bits


def test_a_fused_product_is_kept_on_the_fused_module() -> None:
    parts = _layers()[:2]
    x = torch.randn(2, 512).to(torch.bfloat16)
    alone = torch.cat([p(x) for p in parts], dim=-1)
    for part in parts:
        build_native_scales(part)
    fused = Fused(parts)
    assert torch.equal(fused(x), alone) and torch.equal(fused(x), alone)
    assert "_bound" in fused.__dict__ and laid4(fused, lay=False) == native.reads_laid4()


@pytest.mark.parametrize("change", ["scales", "threads", "buffer", "mark"])
def test_a_product_is_decided_again_when_what_decided_it_changes(change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """After each change the kept product (replaced here by one that fails under the same key) is not called, and the
    product keeps its bits."""
    layer, other = (Int4KLinear.from_linear(_linear(128, 512, seed=s), 32, grid=True) for s in (3, 4))
    build_native_scales(layer)
    build_native_scales(other)
    x = torch.randn(2, 512).to(torch.bfloat16)
    want = layer(x)
    key = layer.__dict__["_bound"][0]
    layer.__dict__["_bound"] = (key, lambda _: pytest.fail("the kept product ran after a change"))
    if change == "scales":
        monkeypatch.setenv("LHAMA_KERNEL_SCALES", "strided")  # PyTorch's packing, scales as stored: nothing kept
    elif change == "threads":
        monkeypatch.setenv("LHAMA_KERNEL_THREADS", "1")
    elif change == "buffer":
        want = other(x)
        layer.weight, layer.codes, layer.highs, layer.supers = other.weight, other.codes, other.highs, other.supers
        layer.__dict__["_laid"] = other.__dict__.get("_laid")  # the other layer's buffers, laid as its own
    else:
        layer.load_state_dict(layer.state_dict())  # PyTorch's packing copied in: not laid any more
        assert not laid4(layer, lay=False)
    assert torch.equal(layer(x), want) and torch.equal(layer(x), want)
