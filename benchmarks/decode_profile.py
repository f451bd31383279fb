"""Where one decode step's time goes: torch profiler over a few greedy steps of lhama's engine.

    python benchmarks/decode_profile.py --model qwen2.5-coder-1.5b-instruct --quant int4 --threads 1
    python benchmarks/decode_profile.py --model lhama-default --quant int4-g32-grid-k+lossy6 --native-only

For the transformers forward (PyTorch's int4 kernel), then lhama's lean step with PyTorch's and
with the native int4 kernel: the median time of a decode step (CPU time of the main thread, so
that a busy machine's waits do not count; wall time beside it), split into (1) the products
alone (the same kernels on the same packed weights called back to back, no other work): the
decoder's int4 and int8 ones and the output layer's; (2) the other ops' self-CPU time in the torch profiler over
``--steps`` steps (attention, KV-cache writes, sampling, other aten ops; inflated a little by
the profiler); (3) the rest: Python, dispatch, views.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from lhama.inference.bench import QUESTION, _prompt_ids
from lhama.inference.kv import KVState, prefill
from lhama.inference.lean import Fused, _Parts, lean_decoder
from lhama.inference.qlinear import Int4KLinear, Int4Linear, Int6KLinear, Int8Linear
from lhama.inference.quant_cache import load_for_inference
from lhama.weights.resolve import resolve

GROUPS = {  # profiler op name fragment -> share
    "_weight_int4pack_mm": "packed products", "_weight_int8pack_mm": "packed products",
    "linear": "float products", "addmm": "float products", "mm": "float products",
    "scaled_dot_product": "attention", "index_copy": "KV-cache writes", "index_put": "KV-cache writes",
    "argmax": "sampling",
}


def _step(language_model, kv: KVState, token: int, lean: bool) -> int:
    if lean:
        logits = lean_decoder(language_model).step(token, kv.cache)[0]
    else:
        out = language_model(input_ids=torch.tensor([[token]]), past_key_values=kv.cache, use_cache=True,
                             logits_to_keep=1)
        logits = out.logits[0, -1]
    kv.ids.append(token)
    return int(torch.argmax(logits.float()))  # as generate_ids picks greedy tokens


def _products_only(language_model, lean: bool, repeats: int = 5) -> tuple[dict[str, float], dict[str, float]]:
    """ms CPU (main thread) and ms wall of the decoder layers' int4 (or 6-bit) products, their int8 products and the
    output layer's product: the kernels alone, M = 1 (with ``lean``: the fused query/key/value and gate/up products
    instead of the separate ones)."""
    layers = [m for m in language_model.modules() if isinstance(m, (Int4Linear, Int4KLinear, Int6KLinear, Int8Linear))]
    head = language_model.get_output_embeddings()
    if lean:
        fused = [p for layer in lean_decoder(language_model).layers for p in (layer.qkv, layer.gate_up)]
        inside = {id(m) for layer in language_model.model.layers
                   for m in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj,
                             layer.mlp.gate_proj, layer.mlp.up_proj)}
        layers = [m for m in layers if id(m) not in inside]
        layers += [m for f in fused for m in ([f] if isinstance(f, Fused) else f.parts)]
    x = {m.in_features: torch.randn(1, m.in_features, dtype=torch.bfloat16) for m in layers}  # (1, K)
    int8 = [m for m in layers if m is not head and _is_int8(m)]
    groups = {"int4 products, decoder": [m for m in layers if m is not head and not _is_int8(m)],
              "int8 products, decoder": int8, f"{'int8' if _is_int8(head) else 'int4'} product, output layer": [head]}
    times, walls = defaultdict(list), defaultdict(list)
    for _ in range(repeats):
        for name, group in groups.items():
            started, wall = time.thread_time(), time.perf_counter()
            for m in group:
                m(x[m.in_features])
            times[name].append(time.thread_time() - started)
            walls[name].append(time.perf_counter() - wall)
    return ({name: 1e3 * min(t) for name, t in times.items()}, {name: 1e3 * min(t) for name, t in walls.items()})


def _is_int8(module) -> bool:
    return isinstance(module, Int8Linear) or getattr(module, "kind", None) is Int8Linear


def _shares(prof, steps: int) -> dict[str, float]:
    shares: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        group = next((g for key, g in GROUPS.items() if key in event.key), None)
        if group is None and event.key.startswith("aten::"):
            group = "other aten ops"
        if group is not None:
            shares[group] += event.self_cpu_time_total / 1e3 / steps
    return dict(shares)


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--quant", default="int4")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=8, help="decode steps profiled")
    parser.add_argument("--table", action="store_true", help="also print the profiler's top ops")
    parser.add_argument("--native-only", action="store_true", help="only the lean step on the native kernel")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_for_inference(resolve(args.model, "lhama-default"), args.quant)
    language_model = loaded.model.language_model
    ids = _prompt_ids(loaded, QUESTION)
    print(f"{args.model} {args.quant}, {args.threads} thread(s)")
    if not args.native_only:
        _prefill_kernels(loaded, ids)
    for lean, kernel in ((True, "vnni"),) if args.native_only else ((False, "aten"), (True, "aten"), (True, "vnni")):
        os.environ["LHAMA_INT4_KERNEL"] = kernel  # read at each product (lhama.inference.native)
        _report(language_model, loaded, ids, lean, args)


def _prefill_kernels(loaded, ids: list[int]) -> None:
    """CPU time of the prompt's prefill with PyTorch's int4 kernel and with the native kernel
    (which takes the prompt four rows at a time, reading the weights once per four rows)."""
    for name, kernel in (("PyTorch int4 kernel", "aten"), ("native int4 kernel", "vnni")):
        os.environ["LHAMA_INT4_KERNEL"] = kernel
        times = []
        for _ in range(2):
            started = time.thread_time()
            prefill(loaded.model, ids, None, KVState(), 8)
            times.append(1e3 * (time.thread_time() - started))
        print(f"prefill of {len(ids)} prompt tokens, {name}: {min(times):.0f} ms CPU")


def _report(language_model, loaded, ids: list[int], lean: bool, args: argparse.Namespace) -> None:
    kv = KVState()
    token = int(torch.argmax(prefill(loaded.model, ids, None, kv, 64 + 3 * args.steps).logits[0, -1]))
    walls, cpus = [], []
    for _ in range(16):
        started, cpu = time.perf_counter(), time.thread_time()
        token = _step(language_model, kv, token, lean)
        walls.append(1e3 * (time.perf_counter() - started))
        cpus.append(1e3 * (time.thread_time() - cpu))
    wall, step = statistics.median(walls[4:]), statistics.median(cpus[4:])
    products, product_walls = _products_only(language_model, lean)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            token = _step(language_model, kv, token, lean)
    kernel = "native int4 kernel" if os.environ["LHAMA_INT4_KERNEL"] == "vnni" else "PyTorch int4 kernel"
    print(f"== {'lean step (lhama.inference.lean)' if lean else 'transformers forward'}, {kernel}")
    print(f"decode step, median: {step:.1f} ms CPU ({wall:.1f} ms wall, {1e3 / wall:.1f} tok/s)")
    shares = dict(products)
    shares |= {g: ms for g, ms in _shares(prof, args.steps).items() if g not in ("packed products", "float products")}
    shares["rest: Python, dispatch, views"] = step - sum(shares.values())
    for group, ms in shares.items():
        print(f"  {group:<32}{ms:8.2f} ms {ms / step:6.1%}")
    # with several threads the main thread's CPU time undercounts the products: their wall time, and what is left
    walls = dict(product_walls) | {"rest of the step (wall)": wall - sum(product_walls.values())}
    print("  wall: " + ", ".join(f"{group} {ms:.2f} ms" for group, ms in walls.items()))
    if args.table:
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))

if __name__ == "__main__":
    main()
