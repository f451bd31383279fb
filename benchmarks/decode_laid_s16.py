"""#27 session 16 (27a): lhama-default's decode with its int4 weights in PyTorch's packing vs laid for the AVX2 product
(``int4_laid_avx2.c``), on the same loaded weights in one process, rounds interleaved, llama.cpp after each round.

    PYTHONPATH=src:benchmarks python benchmarks/decode_laid_s16.py --model ~/.cache/lhama/models/lhama-default \\
        --rounds 5 --tokens 128 --threads 2

Each round: ``stored`` (every Int4KLinear laid back in place, the marks dropped: the records product reads them) and
``laid`` (laid again: the laid product), in alternating order, then llama.cpp (xllamacpp) on the model's GGUF with the
same threads. Prints tok/s per row, medians, the median of the per-round ratios to llama.cpp, and whether both
variants gave the same greedy tokens (they must: the same bits). AVX2 port only (``native.reads_laid4``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from decode import llama_cpp_row
from lhama.inference import native
from lhama.inference.bench import QUESTION, _prompt_ids, gguf_file
from lhama.inference.generate import GenerationConfig, generate_ids
from lhama.inference.laid import laid4
from lhama.inference.lean import Fused, lean_decoder
from lhama.inference.qlinear import Int4KLinear
from lhama.inference.quant_cache import load_for_inference
from lhama.weights.resolve import resolve


def set_laid(language_model: torch.nn.Module, laid: bool) -> int:
    """Every Int4KLinear's weights laid (or laid back) in place, each layer's memory once (a fused product's weight is
    its parts' memory), and the fused products' marks set to match. Returns the layers changed."""
    layers = [m for m in language_model.modules() if isinstance(m, Int4KLinear)]
    changed = 0
    for layer in layers:
        if laid4(layer, lay=False) != laid:
            if laid:
                laid4(layer)
            else:
                native.lay4(layer.weight, laid=False)
                layer.__dict__.pop("_laid")
            changed += 1
    lean = lean_decoder(language_model)
    fused = [p for layer in lean.layers for p in (layer.qkv, layer.gate_up, layer.o_proj, layer.down)] + [lean.head]
    for product in fused:
        if isinstance(product, Fused) and product.kind is Int4KLinear:
            if laid:
                product.__dict__["_laid"] = product.weight.data_ptr()
            else:
                product.__dict__.pop("_laid", None)
    return changed


def timed(loaded, ids: list[int], tokens: int) -> tuple[float, list[int]]:
    """(decode tok/s after the first token, the greedy tokens) for exactly ``tokens`` tokens."""
    out, first = [], None
    for token in generate_ids(loaded.model, ids, GenerationConfig(max_new_tokens=tokens)):
        first = first or time.perf_counter()
        out.append(int(token))
    return (len(out) - 1) / (time.perf_counter() - first), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lhama-default")
    parser.add_argument("--quant", default="int4-g32-grid-k+lossy6")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-llama", action="store_true", help="skip the llama.cpp rows (a quick check)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not native.reads_laid4():
        raise SystemExit("no laid int4 product here (the AVX2 port has it)")
    torch.set_num_threads(args.threads)
    model_dir = resolve(args.model, args.model)
    gguf = None if args.no_llama else gguf_file(model_dir)
    started = time.perf_counter()
    loaded = load_for_inference(model_dir, args.quant)
    print(f"loaded in {time.perf_counter() - started:.1f} s (int4 layers laid at load)", flush=True)
    language_model, ids = loaded.model.language_model, _prompt_ids(loaded, QUESTION)
    with torch.inference_mode():
        timed(loaded, ids, 8)  # warm-up
        speeds, tokens = {"stored": [], "laid": [], "llama.cpp": []}, {}
        for round_ in range(args.rounds):
            for name in ("stored", "laid") if round_ % 2 == 0 else ("laid", "stored"):
                changed = set_laid(language_model, name == "laid")
                speed, tokens[name] = timed(loaded, ids, args.tokens)
                speeds[name].append(speed)
                print(f"round {round_ + 1} {name}: {speed:.2f} tok/s ({changed} layers re-laid)", flush=True)
            if gguf is not None:
                speeds["llama.cpp"].append(llama_cpp_row(gguf, args.tokens, args.threads)["tok_s"])
                print(f"round {round_ + 1} llama.cpp: {speeds['llama.cpp'][-1]:.2f}", flush=True)
    print(f"same greedy tokens: {tokens['stored'] == tokens['laid']} ({len(tokens['laid'])} tokens)")
    for name, values in speeds.items():
        if values:
            line = f"{name:<10} median {statistics.median(values):6.2f}  rows " + ", ".join(f"{v:.2f}" for v in values)
            if name != "llama.cpp" and speeds["llama.cpp"]:
                ratios = [v / c for v, c in zip(values, speeds["llama.cpp"])]
                line += "  ratio per round " + ", ".join(f"{r:.2f}" for r in ratios)
                line += f"  median ratio {statistics.median(ratios):.2f}x"
            print(line)
    pairs = [b / a for a, b in zip(speeds["stored"], speeds["laid"])]
    print(f"laid / stored per round: {', '.join(f'{p:.3f}' for p in pairs)}; median {statistics.median(pairs):.3f}")
    if args.out:
        args.out.write_text(json.dumps({"speeds": speeds, "same_tokens": tokens["stored"] == tokens["laid"]}) + "\n")


if __name__ == "__main__":
    main()
