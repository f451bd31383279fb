"""Packed weights laid in place for the AVX2 port's products: the same values in the order its product reads, one
load per 64 weights instead of unpacking PyTorch's int4 packing (``native.lay6`` for ``Int6KLinear``, ``int6_avx2.c``;
``native.lay4`` for ``Int4KLinear``, ``int4_laid_avx2.c``). Laid once at load (``qlinear.build_native_scales``); a
layer keeps the address of the buffers it holds laid (``_laid``), so a replaced buffer is not taken as laid; what
reads PyTorch's packing (a fallback product, a saved state dict, a copy of rows) gets it back (:func:`stored4`)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from lhama.inference import native
from lhama.inference.kscales import KSUPER


def laid6(layer: nn.Module, lay: bool = True) -> bool:
    """Whether ``layer``'s weights (an ``Int6KLinear``'s) are in the order the AVX2 6-bit product reads
    (:func:`native.lay6`, in place, the same values); with ``lay``, laid now where that product runs them (groups of
    16, inputs a multiple of 256)."""
    key = (layer.weight.data_ptr(), layer.hi.data_ptr())
    if layer.__dict__.get("_laid") == key:
        return True
    if not lay or layer.group_size != 16 or layer.in_features % KSUPER or not native.reads_laid6():
        return False
    with torch.no_grad():
        native.lay6(layer.weight, layer.hi, laid=True)
    layer.__dict__["_laid"] = key
    return True


def laid4(layer: nn.Module | None, lay: bool = True) -> bool:
    """Whether ``layer``'s packed int4 weights are in the order the AVX2 product with k-scale records reads
    (:func:`native.lay4`, in place, the same values); with ``lay`` (``layer`` an ``Int4KLinear``), laid now where that
    product runs it (groups of 32, inputs a multiple of 256). A fused product (``lean.Fused``) is marked by
    :func:`mark_laid4`, never laid here."""
    if layer is None:
        return False
    key = layer.weight.data_ptr()
    if layer.__dict__.get("_laid") == key:
        return True
    if not lay or layer.group_size != 32 or layer.in_features % KSUPER or not native.reads_laid4():
        return False
    with torch.no_grad():
        native.lay4(layer.weight, laid=True)
    layer.__dict__["_laid"] = key
    return True


def laid4_parts(parts: Iterable[nn.Module]) -> bool:
    """Whether layers about to be joined into one product all hold laid int4 weights (if some do, the others are laid
    now: a joined product reads one order)."""
    parts = list(parts)
    if any(laid4(p, lay=False) for p in parts):
        return all(laid4(p) for p in parts)
    return False


def mark_laid4(fused: nn.Module, parts: Iterable[nn.Module], laid: bool) -> None:
    """After ``parts`` were joined into ``fused`` (their weights now views of its weight, or it of theirs): mark them all
    laid when ``laid`` (:func:`laid4_parts`, asked before the join) or when ``fused`` wraps one part laid since (its
    blocked scales built: ``qlinear.build_native_scales`` lays an ``Int4KLinear``)."""
    parts = list(parts)
    if laid or (len(parts) == 1 and laid4(parts[0], lay=False)):
        for module in (fused, *parts):
            module.__dict__["_laid"] = module.weight.data_ptr()


def stored4(owner: nn.Module | None, weight: torch.Tensor) -> torch.Tensor:
    """``weight`` in PyTorch's packing: itself, or a copy laid back where ``owner``'s weights are laid (the products and
    readers that take PyTorch's packing: a fallback, a saved state dict, a copy of rows)."""
    if not laid4(owner, lay=False):
        return weight
    stored = weight.clone()
    native.lay4(stored, laid=False)
    return stored
