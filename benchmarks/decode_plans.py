"""Decode speed of several LM weight plans, interleaved in one process (fair on a busy machine).

    python benchmarks/decode_plans.py --model qwen2.5-coder-1.5b-instruct \\
        --quants int4-g128 int4-g32 int4-g128+head+v+down-half int8 --rounds 3 --tokens 64 --llama-cpp

Every plan is loaded once (from its cache beside the model: lhama.inference.quant_cache), then
each round decodes ``--tokens`` greedy tokens of the same chat prompt with every plan in turn
(and, with ``--llama-cpp``, llama.cpp on the model's GGUF, same threads), so that a change in the
machine's load hits every row alike. A plan alone shares the kernels' work with an OpenMP loop
(the default, LHAMA_KERNEL_POOL=omp); ``int4-g128:own`` is the same weights with the kernels' own
work-sharing pool (LHAMA_KERNEL_POOL=own); ``:omp`` says the default explicitly; ``:strided`` the same weights
with the AVX2 kernel reading the scales as stored instead of blocked (LHAMA_KERNEL_SCALES=strided, lhama.inference.native).
Prints the median and the best round of each row; decode
tok/s after the first token, as ``benchmarks/decode.py`` and ``lhama bench decode`` count it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch

from decode import llama_cpp_row
from lhama.inference.bench import QUESTION, _prompt_ids, _time_decode, gguf_file
from lhama.inference.quant_cache import load_for_inference
from lhama.weights.resolve import resolve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--quants", nargs="+", default=["int4-g128", "int4-g32"],
                        help="LM weight plans (lhama.inference.quant.plan_for); plan:own shares the kernels' work "
                             "with their own pool instead of the default OpenMP loop; plan:strided reads the scales "
                             "as stored (AVX2 kernel)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--llama-cpp", action="store_true", help="a llama.cpp row (xllamacpp, same GGUF) each round")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = resolve(args.model, args.model)
    plans = {spec.partition(":")[0] for spec in args.quants}
    loaded_plans = {plan: load_for_inference(model_dir, plan) for plan in sorted(plans)}  # each loaded once
    models = {spec: loaded_plans[spec.partition(":")[0]] for spec in args.quants}
    ids = _prompt_ids(next(iter(models.values())), QUESTION)
    for loaded in models.values():
        _time_decode(loaded, ids, 8, None)  # warm-up
    gguf = gguf_file(model_dir) if args.llama_cpp else None
    speeds: dict[str, list[float]] = {name: [] for name in [*models, *(["llama.cpp"] if gguf else [])]}
    for round_ in range(args.rounds):
        for spec, loaded in models.items():  # "plan:own": the kernels' own pool instead of the OpenMP loop
            suffix = spec.partition(":")[2]
            os.environ["LHAMA_KERNEL_POOL"] = suffix if suffix in ("own", "omp") else "omp"
            os.environ["LHAMA_KERNEL_SCALES"] = "strided" if suffix == "strided" else "blocked"
            speeds[spec].append(_time_decode(loaded, ids, args.tokens, None)[1])
        if gguf:
            speeds["llama.cpp"].append(llama_cpp_row(gguf, args.tokens, args.threads)["tok_s"])
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in speeds.items()), flush=True)
    print(f"{args.model}, {args.tokens} greedy tokens x {args.rounds} rounds, {args.threads} threads")
    print(f"{'weights':<32}{'median tok/s':>14}{'best tok/s':>12}")
    for name, values in speeds.items():
        print(f"{name:<32}{statistics.median(values):>14.2f}{max(values):>12.2f}")
    if args.out:
        args.out.write_text(json.dumps(speeds, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
