"""A packed layer's native product decided once and kept on its owner (the layer, or a fused product): the entry
point, the addresses of its weights and scales and the thread count, decided again whenever something it was decided on
changes (the kernel switches in the environment, torch's thread count, the loaded library, a buffer, the laid mark).
The same C call with the same arguments, so the same bits; it skips the per-call checks and lookups of the first
decision (``qlinear.int4k_mm``, ``qlinear.int6k_mm``): ~30 us of Python around each of ~140 products of a
lhama-default decode step (27b's micro-measurements, #27 session 16)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
from torch import nn

from lhama.inference import native

Product = Callable[[torch.Tensor], torch.Tensor]  # (M, K) bf16 rows -> (M, N) bf16


def switches() -> tuple:
    """What, besides the owner's buffers, decides a product's call: the kernel switches (``native``), torch's thread
    count and the loaded library."""
    return (os.environ.get("LHAMA_INT4_KERNEL"), os.environ.get("LHAMA_KERNEL_SCALES"),
            os.environ.get("LHAMA_KERNEL_THREADS"), torch.get_num_threads(), native.kernel())


def _key(owner: nn.Module, buffers: Sequence[torch.Tensor]) -> tuple:
    return (switches(), owner.__dict__.get("_laid"), *(b.data_ptr() for b in buffers))


def kept(owner: nn.Module | None, *buffers: torch.Tensor) -> Product | None:
    """``owner``'s kept product if it was decided on what holds now (its ``buffers``, its laid mark, :func:`switches`)."""
    held = None if owner is None else owner.__dict__.get("_bound")
    return held[1] if held is not None and held[0] == _key(owner, buffers) else None


def bind(owner: nn.Module | None, buffers: Sequence[torch.Tensor], name: str, arrays: Sequence[torch.Tensor],
         group_size: int) -> Product:
    """The product through the kernel's entry point ``name`` (arguments: x, ``arrays``, out, M, K, N, g, threads; N the
    first array's rows), kept on ``owner`` under what holds now (called once the decision is made: after any laying)."""
    entry, threads, rows = getattr(native.kernel(), name), native.threads(), arrays[0].shape[0]
    pointers = tuple(t.data_ptr() for t in arrays)

    def product(x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        out = torch.empty(x.shape[0], rows, dtype=torch.bfloat16)
        failed = entry(x.data_ptr(), *pointers, out.data_ptr(), x.shape[0], x.shape[1], rows, group_size, threads)
        if failed:
            raise MemoryError(f"the native kernel could not run {name} (error {failed})")
        return out

    product.arrays = tuple(arrays)  # the buffers stay alive while the product is kept
    if owner is not None:
        owner.__dict__["_bound"] = (_key(owner, buffers), product)
    return product
