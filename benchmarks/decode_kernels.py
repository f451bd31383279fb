"""Decode speed of lhama-default with the AVX2 kernel built from each given C source, interleaved in one process.

    PYTHONPATH=src:benchmarks python benchmarks/decode_kernels.py --rounds 4 --tokens 128 --threads 2 \\
        s12=/tmp/old_int4_avx2.c s13=src/lhama/inference/int4_avx2.c+src/lhama/inference/int8_avx2.c

For comparing two versions of the AVX2 kernel (e.g. ``git show 3f30fd6:src/lhama/inference/int4_avx2.c >
/tmp/old_int4_avx2.c``, one file up to session 12; since session 13 two, joined by ``+``) on the same loaded weights:
each round decodes ``--tokens`` greedy tokens of the bench prompt with every kernel in turn (``native.kernel()`` is
rebuilt/reloaded from those sources between rows, the library file named after the first one's stem and the sources'
sha256; two untimed steps then rebuild the scales' kept copies if that kernel reads another layout), then llama.cpp
on the model's GGUF with the same threads, so that a change in the machine's load hits every row alike. Prints each row's tok/s per round, median, best, and its ratio to
llama.cpp per round. A CPU without AVX512 only (the AVX2 kernel). Run #27 session 12 as ``/tmp/27a/plans_ab.py``
(the same measurement; committed here under this name).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from decode import llama_cpp_row
from lhama.inference import native
from lhama.inference.bench import QUESTION, _prompt_ids, _time_decode, gguf_file
from lhama.inference.quant_cache import load_for_inference
from lhama.weights.resolve import resolve


def use(source: str) -> None:
    """Make ``native.kernel()`` the library built from ``source`` (paths joined by ``+``; built once into
    $LHAMA_HOME/kernels)."""
    native.SOURCES_AVX2 = tuple(Path(path) for path in source.split("+"))
    native.kernel.cache_clear()
    lib = native.kernel()
    if lib is None or not Path(lib._name).stem.startswith(Path(source.split("+")[0]).stem):
        raise SystemExit(f"no AVX2 kernel from {source} on this machine")


def rounds(loaded, kernels: dict[str, str], gguf: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    ids = _prompt_ids(loaded, QUESTION)
    for source in kernels.values():
        use(source)
        _time_decode(loaded, ids, 8, None)  # warm-up (and the build)
    speeds: dict[str, list[float]] = {name: [] for name in [*kernels, "llama.cpp"]}
    for round_ in range(args.rounds):
        for name, source in kernels.items():
            use(source)
            _time_decode(loaded, ids, 2, None)  # untimed: kept scale copies in this kernel's layout
            speeds[name].append(_time_decode(loaded, ids, args.tokens, None)[1])
        speeds["llama.cpp"].append(llama_cpp_row(gguf, args.tokens, args.threads)["tok_s"])
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in speeds.items()), flush=True)
    return speeds


def report(speeds: dict[str, list[float]], args: argparse.Namespace) -> None:
    print(f"{args.model} {args.quant}, {args.tokens} greedy tokens x {args.rounds} rounds, {args.threads} threads")
    cpp = speeds["llama.cpp"]
    for name, values in speeds.items():
        line = (f"{name:<12} median {statistics.median(values):6.2f}  best {max(values):6.2f}  per round "
                + ", ".join(f"{v:.2f}" for v in values))
        if name != "llama.cpp":
            line += ("  ratio per round " + ", ".join(f"{v / c:.2f}" for v, c in zip(values, cpp))
                     + f"  median/median {statistics.median(values) / statistics.median(cpp):.2f}x")
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernels", nargs="+", help="name=path/to/int4_avx2.c[+path/to/int8_avx2.c]")
    parser.add_argument("--model", default="lhama-default")
    parser.add_argument("--quant", default="int4-g32-grid-k+lossy6")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kernels = dict(spec.split("=", 1) for spec in args.kernels)
    model_dir = resolve(args.model, args.model)
    gguf = gguf_file(model_dir)
    if gguf is None:
        raise SystemExit(f"no GGUF for {args.model}: llama.cpp cannot run on the same weights")
    use(next(iter(kernels.values())))
    speeds = rounds(load_for_inference(model_dir, args.quant), kernels, gguf, args)
    report(speeds, args)
    if args.out:
        args.out.write_text(json.dumps(speeds, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
