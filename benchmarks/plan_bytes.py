"""Bytes of weights one decoded token reads, per LM weight plan: from the cached copies' headers.

    python benchmarks/plan_bytes.py --model qwen2.5-coder-1.5b-instruct --quants int8 int4-g32 int4-g32-grid+lossy

Decode on a CPU is bound by memory bandwidth, so these bytes predict the speed ratio between
plans (and against llama.cpp's GGUF). Counted: every tensor of the cached language model
(``quant-<plan>/language_model.safetensors``, lhama.inference.quant_cache) except the embedding
table, of which a token reads one row. Only the safetensors header is read: no weights loaded.
A plan without a cache is reported as such (load it once, e.g. with ``lhama chat --quant``).
"""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path

from lhama.inference.quant_cache import WEIGHTS, quant_dir
from lhama.weights.resolve import resolve


def bytes_per_token(weights: Path) -> int:
    """Bytes of every tensor in ``weights`` (a safetensors file) but the embedding table and buffers."""
    with weights.open("rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    return sum(end - start for name, entry in header.items() if name != "__metadata__"
               and "embed_tokens" not in name and not name.startswith("__buffer__")
               for start, end in [entry["data_offsets"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--quants", nargs="+", default=["int8", "int4-g32", "int4-g32-grid+head", "int4-g32-grid+lossy"])
    args = parser.parse_args()
    model_dir = resolve(args.model, args.model)
    print(f"{args.model}: MB of weights read per token")
    for quant in args.quants:
        weights = quant_dir(model_dir, quant) / WEIGHTS
        size = f"{bytes_per_token(weights) / 1e6:10.1f}" if weights.is_file() else "  no cache"
        print(f"{quant:<28}{size}")


if __name__ == "__main__":
    main()
