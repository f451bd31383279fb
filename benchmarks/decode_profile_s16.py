"""#27 session 16 (27b): the lean step's glue calls through one struct per step, against session 15's explicit calls.

    PYTHONPATH=src python benchmarks/decode_profile_s16.py --model ~/.cache/lhama/models/lhama-default --steps 40

Session 15's glued step (``S``, re-created here as it was: ten to sixteen ctypes arguments per glue call, the strides
read per call, a new SiLU output per layer, the bias-free fused products called as modules, each layer's cache checked
apart) against today's (``T``: :class:`lhama.inference.glue.GlueStep`, the products called directly). Two caches are
prefilled alike with the bench prompt; each pair of steps runs S on one and T on the other, in alternating order, and
compares the logits bit for bit. Prints each variant's median step (wall; main-thread CPU), the paired median
difference, in how many pairs T was faster, and the bits. Threads: ``--threads`` (default: OMP_NUM_THREADS, else 2).
Writes nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from lhama.inference import lean as L
from lhama.inference.bench import QUESTION, _prompt_ids
from lhama.inference.kv import KVState, prefill
from lhama.inference.quant_cache import load_for_inference
from lhama.weights.resolve import resolve


def s15_rows(self, hidden, positions, layers, column, mask):
    """Session 15's ``LeanDecoder._rows`` (the glued branch only)."""
    cos, sin = self._rotary(positions, hidden.dtype)
    mask = None if mask is None else L._additive(mask, hidden.dtype)
    assert self.glue is not None and all(map(_s15_glue_cache, layers))
    return s15_glued_rows(self, hidden.contiguous(), (cos, sin), layers, column, mask)


def s15_glued_rows(self, hidden, rotary, layers, column, mask):
    """Session 15's ``LeanDecoder._glued_rows``, line for line (o_proj called as a module, as its ``_attend`` did)."""
    rows, (heads, dim) = hidden.shape[0], (self.heads, self.head_dim)
    x, query, added = torch.empty_like(hidden), hidden.new_empty(rows, heads, dim), None
    for layer, (keys, values) in zip(self.layers, layers):
        self.glue.add_rms(hidden, added, layer.norm1, x)
        qkv, bias = (layer.qkv.product(x), layer.qkv.bias) if isinstance(layer.qkv, L.Fused) else (layer.qkv(x), None)
        self.glue.rope_write(qkv, bias, rotary, query, (keys, values), column)
        if keys.shape[0] != rows:
            keys, values = keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1)
        self.glue.add_rms(hidden, self._attend(layer.o_proj, query, (keys, values), mask), layer.norm2, x)
        added = layer.down(self.glue.silu_mul(layer.gate_up(x)))
    self.glue.add_rms(hidden, added, self.norm, x)
    return self.head(x)


def _s15_glue_cache(kv):
    keys, values = kv
    return (keys.dtype == values.dtype == torch.bfloat16 and keys.stride() == values.stride()
            and keys.stride(3) == 1 and keys.stride(2) == keys.shape[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lhama-default")
    parser.add_argument("--quant", default="int4-g32-grid-k+lossy6")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    loaded = load_for_inference(resolve(args.model, args.model), args.quant)
    decoder = L.lean_decoder(loaded.model.language_model)
    assert decoder is not None and decoder.glue is not None, "the glue is not in use: nothing to compare"
    ids = _prompt_ids(loaded, QUESTION)
    print(f"{args.threads} threads; loaded in {time.perf_counter() - started:.1f} s; prompt {len(ids)} ids; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    today = L.LeanDecoder._rows
    with torch.inference_mode():
        caches, logits = [], []
        for _ in range(2):
            kv = KVState()
            logits.append(prefill(loaded.model, ids, None, kv, args.rounds * args.steps + 40).logits[0, -1].clone())
            caches.append(kv)

        def run(index: int, variant: str) -> tuple[float, float]:
            L.LeanDecoder._rows = s15_rows if variant == "S" else today
            wall, cpu = time.perf_counter(), time.thread_time()
            logits[index] = decoder.step(int(torch.argmax(logits[index].float())), caches[index].cache)[0]
            wall, cpu = 1e3 * (time.perf_counter() - wall), 1e3 * (time.thread_time() - cpu)
            L.LeanDecoder._rows = today
            return wall, cpu

        for _ in range(args.rounds):
            paired(run, args.steps, logits)
    print(f"total {time.perf_counter() - started:.1f} s, load {os.getloadavg()[0]:.2f}")


def paired(run, steps: int, logits: list[torch.Tensor]) -> None:
    """``steps`` pairs (S on cache 0, T on cache 1, alternating order); the first 4 are not counted."""
    times, same = {"S": [], "T": []}, 0
    for step in range(steps):
        for variant in ("S", "T") if step % 2 == 0 else ("T", "S"):
            times[variant].append(run("ST".index(variant), variant))
        same += torch.equal(logits[0].view(torch.int16), logits[1].view(torch.int16))
    kept = {v: t[4:] for v, t in times.items()}
    diffs = [s[0] - t[0] for s, t in zip(kept["S"], kept["T"])]
    print("; ".join(f"{v}: step median {statistics.median(w for w, _ in t):.2f} ms wall, "
                    f"{statistics.median(c for _, c in t):.2f} ms main-thread CPU" for v, t in kept.items())
          + f"; paired S-T median {statistics.median(diffs):.3f} ms (mean {statistics.mean(diffs):.3f}), T faster in "
          f"{sum(d > 0 for d in diffs)}/{len(diffs)}; bit-identical logits {same}/{steps}; load {os.getloadavg()[0]:.2f}",
          flush=True)


if __name__ == "__main__":
    main()
