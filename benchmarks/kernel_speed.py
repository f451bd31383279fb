"""Speed of the native int4 (k-scales), 6-bit and int8 products alone, one activation row, at the 1.5B's shapes.

    python benchmarks/kernel_speed.py [--shapes head] [--threads 1]

For each shape: random weights quantised as lhama-default's layers are (Int4KLinear g32, Int6KLinear, Int8Linear),
the best and median time of back-to-back calls, and the bytes of the layer's buffers per second; then a plain int64
``sum`` over 512 MB in the same process, as the memory's reference. Products whose weights fit the L3 cache read
from it, the output layer (151,936 rows) from memory.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from lhama.inference import native
from lhama.inference.qlinear import Int4KLinear, Int6KLinear, Int8Linear, int4k_mm, int6k_mm

SHAPES = {"qkv": (2048, 1536), "o": (1536, 1536), "gate_up": (17920, 1536), "down": (1536, 8960), "head": (151936, 1536)}


def _times(call, repeats: int) -> tuple[float, float]:
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def _product(kind: str, linear: nn.Linear, x: torch.Tensor):
    """(layer, its product): as decoding calls it (scales blocked where the kernel reads them so), or with
    ``-strided`` the kernel on the scales as the layer stores them ((K/g, N): one line per group, rows N apart)."""
    if kind.startswith("int4k"):
        layer = Int4KLinear.from_linear(linear, 32)
        if kind == "int4k-strided":
            return layer, lambda: native.int4k_rows(x, layer.weight, layer.codes, layer.highs, layer.supers, 32)
        return layer, lambda: int4k_mm(x, layer.weight, 32, layer.codes, layer.highs, layer.supers, owner=layer)
    if kind.startswith("int6"):
        layer = Int6KLinear.from_linear(linear)
        if kind == "int6-strided":
            return layer, lambda: native.int6k_rows(x, layer.weight, layer.hi, layer.codes, layer.supers, 16)
        return layer, lambda: int6k_mm(x, layer)
    layer = Int8Linear.from_linear(linear)
    return layer, lambda: native.int8_rows(x, layer.weight, layer.scales)


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    kinds = ["int4k", "int4k-strided", "int6", "int6-strided", "int8"]
    parser.add_argument("--kinds", nargs="+", default=["int4k", "int6", "int8"], choices=kinds)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if native.kernel() is None:
        raise SystemExit("no native kernel on this machine")
    print(f"kernel {native._variant()[0].name}, packing {native.packed_rows()} rows, {args.threads} thread(s)")
    for name in args.shapes:
        rows, inputs = SHAPES[name]
        linear, x = nn.Linear(inputs, rows, bias=False), torch.randn(1, inputs).to(torch.bfloat16)
        for kind in args.kinds:
            layer, call = _product(kind, linear, x)
            size = sum(b.numel() * b.element_size() for b in layer.buffers() if b is not None)
            best, median = _times(call, 5 if name == "head" else 20)
            print(f"{name:8} {kind:6} {rows}x{inputs} {size / 1e6:7.1f} MB  best {best * 1e3:7.2f} ms  "
                  f"median {median * 1e3:7.2f} ms  {size / best / 1e9:5.1f} GB/s", flush=True)
    block = torch.ones(64 * 1024 * 1024, dtype=torch.int64)
    best, _ = _times(block.sum, 5)
    print(f"int64 sum over 512 MB: {best * 1e3:.1f} ms, {block.numel() * 8 / best / 1e9:.1f} GB/s")


if __name__ == "__main__":
    main()
