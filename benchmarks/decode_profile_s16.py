"""#27 session 16 (27b): the lean step's glue calls through one struct per step (ctypes or extension) vs session 15's.

    PYTHONPATH=src python benchmarks/decode_profile_s16.py --model ~/.cache/lhama/models/lhama-default --steps 40

Session 15's glued step (``S``, re-created here as it was: ten to sixteen ctypes arguments per glue call, the strides
read per call, a new SiLU output per layer, the bias-free fused products called as modules, each layer's cache checked
apart) against today's: :class:`lhama.inference.glue.GlueStep` calling through ctypes (``T``) or through the CPython
extension module (``E``, what runs where Python's headers are installed), the products called directly. Two caches
are prefilled alike with the bench prompt; each pair of steps (``--pairs``, default S:E then T:E) runs one variant
on each cache, in alternating order, and compares the logits bit for bit. Prints each variant's median step (wall;
main-thread CPU), the paired median difference, in how many pairs the second was faster, and the bits. ``--segments N``:
then N steps of E with wall timers around each part (the products with their Python wrappers, attention, the glue calls;
"outside the layers": the step's embedding, mask, rotary rows and cache counts), per step. Threads:
``--threads`` (default: OMP_NUM_THREADS, else 2). Writes nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections import defaultdict

import torch
import torch.nn.functional as F

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


SEGMENTS: defaultdict[str, float] = defaultdict(float)


def _tick(name: str, started: float) -> float:
    now = time.perf_counter()
    SEGMENTS[name] += now - started
    return now


def timed_glued_rows(self, hidden, rotary, layers, column, mask):
    """Today's ``LeanDecoder._glued_rows`` (and ``_attend``) with wall timers around each part."""
    t = time.perf_counter()
    step = self.glue.step(hidden, rotary, self.heads, layers[0], column, self.intermediate)
    rows, added = len(hidden), None
    t = _tick("glue calls", t)
    for layer, (keys, values), calls in zip(self.layers, layers, self.calls):
        x = step.add_rms(added, layer.norm1)
        t = _tick("glue calls", t)
        qkv = calls.qkv(x)
        t = _tick("qkv product", t)
        step.rope_write(qkv, calls.qkv_bias, keys, values)
        t = _tick("glue calls", t)
        query = step.query.reshape(rows, self.kv_heads, self.heads // self.kv_heads, self.head_dim)
        out = F.scaled_dot_product_attention(query, keys, values, attn_mask=mask, scale=self.scaling)
        out = out.reshape(rows, self.heads * self.head_dim)
        t = _tick("attention (SDPA)", t)
        attended = calls.o_proj(out)
        t = _tick("o product", t)
        x = step.add_rms(attended, layer.norm2)
        t = _tick("glue calls", t)
        gate_up = calls.gate_up(x)
        t = _tick("gate_up product", t)
        h = step.silu_mul(gate_up)
        t = _tick("glue calls", t)
        added = calls.down(h)
        t = _tick("down product", t)
    x = step.add_rms(added, self.norm)
    t = _tick("glue calls", t)
    logits = self.head(x)
    _tick("head product", t)
    return logits


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
    parser.add_argument("--segments", type=int, default=0, help="then this many steps of E with timers per part")
    parser.add_argument("--pairs", default="S:E,T:E", help="the variant pairs to time, each --rounds times")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    loaded = load_for_inference(resolve(args.model, args.model), args.quant)
    decoder = L.lean_decoder(loaded.model.language_model)
    assert decoder is not None and decoder.glue is not None, "the glue is not in use: nothing to compare"
    assert decoder.glue.ext is not None, "no extension module for the glue here (Python headers?)"
    glues = {"S": dataclasses.replace(decoder.glue, ext=None), "T": dataclasses.replace(decoder.glue, ext=None),
             "E": decoder.glue}
    ids = _prompt_ids(loaded, QUESTION)
    print(f"{args.threads} threads; loaded in {time.perf_counter() - started:.1f} s; prompt {len(ids)} ids; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    today = L.LeanDecoder._rows
    with torch.inference_mode():
        caches, logits = [], []
        for _ in range(2):
            kv = KVState()
            room = len(args.pairs.split(",")) * args.rounds * args.steps + args.segments + 8  # every step's column
            logits.append(prefill(loaded.model, ids, None, kv, room).logits[0, -1].clone())
            caches.append(kv)

        def run(index: int, variant: str) -> tuple[float, float]:
            L.LeanDecoder._rows, decoder.glue = s15_rows if variant == "S" else today, glues[variant]
            wall, cpu = time.perf_counter(), time.thread_time()
            logits[index] = decoder.step(int(torch.argmax(logits[index].float())), caches[index].cache)[0]
            wall, cpu = 1e3 * (time.perf_counter() - wall), 1e3 * (time.thread_time() - cpu)
            L.LeanDecoder._rows, decoder.glue = today, glues["E"]
            return wall, cpu

        for pair in args.pairs.split(","):
            for _ in range(args.rounds):
                paired(run, tuple(pair.split(":")), args.steps, logits)
        if args.segments:
            segments(decoder, caches[1].cache, logits, args.segments)
    print(f"total {time.perf_counter() - started:.1f} s, load {os.getloadavg()[0]:.2f}")


def segments(decoder: L.LeanDecoder, cache, logits: list[torch.Tensor], steps: int) -> None:
    """``steps`` one-sequence steps of today's glued step (E, cache 1) with timers: ms per step for each part."""
    plain, walls = L.LeanDecoder._glued_rows, []
    L.LeanDecoder._glued_rows = timed_glued_rows
    try:
        for _ in range(steps):
            token = int(torch.argmax(logits[1].float()))
            started = time.perf_counter()
            logits[1] = decoder.step(token, cache)[0]
            walls.append(time.perf_counter() - started)
    finally:
        L.LeanDecoder._glued_rows = plain
    total = 1e3 * sum(walls) / steps
    parts = {name: 1e3 * value / steps for name, value in SEGMENTS.items()}
    parts["outside the layers"] = total - sum(parts.values())
    print(f"segments (E, {steps} steps, wall ms per step; step {total:.2f}): "
          + ", ".join(f"{k} {v:.2f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])), flush=True)


def paired(run, pair: tuple[str, str], steps: int, logits: list[torch.Tensor]) -> None:
    """``steps`` pairs (``pair[0]`` on cache 0, ``pair[1]`` on cache 1, alternating order); the first 4 not counted."""
    (a, b), same = pair, 0
    times = {a: [], b: []}
    for step in range(steps):
        for variant in pair if step % 2 == 0 else pair[::-1]:
            times[variant].append(run(pair.index(variant), variant))
        same += torch.equal(logits[0].view(torch.int16), logits[1].view(torch.int16))
    kept = {v: t[4:] for v, t in times.items()}
    diffs = [x[0] - y[0] for x, y in zip(kept[a], kept[b])]
    print("; ".join(f"{v}: step median {statistics.median(w for w, _ in t):.2f} ms wall, "
                    f"{statistics.median(c for _, c in t):.2f} ms main-thread CPU" for v, t in kept.items())
          + f"; paired {a}-{b} median {statistics.median(diffs):.3f} ms (mean {statistics.mean(diffs):.3f}), "
          f"{b} faster in "
          f"{sum(d > 0 for d in diffs)}/{len(diffs)}; bit-identical logits {same}/{steps}; "
          f"load {os.getloadavg()[0]:.2f}",
          flush=True)


if __name__ == "__main__":
    main()
