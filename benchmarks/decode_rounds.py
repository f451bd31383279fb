"""Decode speed of lhama against llama.cpp on the same GGUF: N pairs of processes, medians and the ratio's interval.

    PYTHONPATH=src:benchmarks python benchmarks/decode_rounds.py --pairs 4 --threads 2 --tokens 128 --bench --serve

Each pair is two fresh processes, one after the other: lhama (the model as shipped: its registry quant unless
``--quant``, the lean step with its C glue, plain greedy decoding of the bench prompt, ``--tokens`` tokens after an
8-token warm-up, as ``lhama bench decode`` times it) and llama.cpp (``decode.llama_cpp_row``: xllamacpp on the GGUF
the model was prepared from, the same chat messages, greedy, the same token and thread counts, after an 8-token
warm-up request too; session 15's rows warmed it up with a whole 128-token request: ~13 s more per pair here). A fresh
process per row keeps one engine's memory and caches out of the other's timing; interleaving makes a change in the
machine's load hit both engines alike. Every row is printed as it ends (with the 1-minute load average), then each
engine's median, the median of the per-pair ratios lhama / llama.cpp, median/median, and a bootstrap 95% interval of
both ratios (pairs resampled with replacement, seed 0). ``--bench`` then runs ``lhama bench decode --no-baseline
--json`` once (time to first token with and without an image, peak RSS); ``--serve`` runs ``benchmarks/serve.py`` at 1
and 16 clients (continuous batching, 32 tokens per request, guard off: the #27 target is 16 clients >= 2x one).
``--max-seconds`` starts no new pair once the pairs so far say the next would end after it (the rows run so far are
reported). A row whose process fails is printed and the run stops with exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("lhama", "llama.cpp")


def row(args: argparse.Namespace) -> dict:
    """One row in this process: ``args.row`` (an engine) on ``args.model``."""
    import torch

    from lhama.weights.resolve import resolve

    torch.set_num_threads(args.threads)
    model_dir = resolve(args.model, args.model)
    if args.row == "llama.cpp":
        from decode import llama_cpp_row
        from lhama.inference.bench import gguf_file

        gguf = gguf_file(model_dir)
        if gguf is None:
            raise SystemExit(f"no GGUF for {args.model}: llama.cpp cannot run on the same weights")
        return {**llama_cpp_row(gguf, args.tokens, args.threads, warmup_tokens=8), "gguf": gguf.name}
    return lhama_row(model_dir, args)


def lhama_row(model_dir: Path, args: argparse.Namespace) -> dict:
    import lhama
    from lhama.inference.bench import QUESTION, _prompt_ids, _time_decode
    from lhama.inference.lean import lean_decoder
    from lhama.inference.quant_cache import load_for_inference

    loaded = load_for_inference(model_dir, args.quant)
    lean = lean_decoder(loaded.model.language_model)
    ids = _prompt_ids(loaded, QUESTION)
    _time_decode(loaded, ids, 8, None)  # warm-up, as bench_decode
    ttft, tok_s = _time_decode(loaded, ids, args.tokens, None)
    return {"tok_s": round(tok_s, 2), "ttft_s": round(ttft, 3), "tokens": args.tokens, "quant": args.quant,
            "lean": lean is not None, "glue": lean is not None and lean.glue is not None,
            "src": str(Path(lhama.__file__).parents[1])}


def shipped_quant(model: str) -> str:
    """The registry's quant for a registered name (what chat and serve load), else int4."""
    from lhama.weights.registry import REGISTRY

    return next((spec.quant for spec in REGISTRY if spec.name == Path(model).name), "int4")


def child(engine: str, args: argparse.Namespace) -> dict:
    """Run one row in a fresh process; its JSON line, with the load around it."""
    command = [sys.executable, str(Path(__file__).resolve()), "--row", engine, "--model", args.model, "--quant",
               args.quant, "--tokens", str(args.tokens), "--threads", str(args.threads)]
    load, started = os.getloadavg()[0], time.monotonic()
    done = subprocess.run(command, env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        print(f"{engine} row failed (exit {done.returncode}):\n{done.stderr[-2000:]}", flush=True)
        raise SystemExit(1)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "engine": engine, "wall_s": round(time.monotonic() - started, 1), "load_before": load,
            "load_after": os.getloadavg()[0]}


def _env() -> dict:
    path = [str(ROOT / "src"), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}


def pairs(args: argparse.Namespace) -> list[dict]:
    """The interleaved pairs, printed as they end; fewer than ``args.pairs`` when ``--max-seconds`` stops them."""
    done, started = [], time.monotonic()
    for index in range(args.pairs):
        longest = max((p["lhama"]["wall_s"] + p["llama.cpp"]["wall_s"] for p in done), default=0.0)
        if args.max_seconds and time.monotonic() - started + longest > args.max_seconds:
            print(f"--max-seconds {args.max_seconds}: stopping after {index} pairs", flush=True)
            break
        order = ENGINES if args.order == "lhama-first" or index % 2 == 0 else ENGINES[::-1]
        pair = {engine: child(engine, args) for engine in order}
        done.append(pair)
        print(f"pair {index + 1}: " + "  ".join(_shown(pair[e]) for e in ENGINES)
              + f"  ratio {pair['lhama']['tok_s'] / pair['llama.cpp']['tok_s']:.3f}", flush=True)
    return done


def _shown(r: dict) -> str:
    extra = f" lean {r['lean']} glue {r['glue']}" if r["engine"] == "lhama" else ""
    return (f"{r['engine']} {r['tok_s']:.2f} tok/s (ttft {r['ttft_s']:.3f} s, {r['wall_s']:.0f} s wall, load "
            f"{r['load_before']:.2f}->{r['load_after']:.2f}{extra})")


def summary(speeds: list[tuple[float, float]], resamples: int = 10000, seed: int = 0) -> dict:
    """Medians, the median of per-pair ratios, median/median, and their bootstrap 95% intervals (percentile)."""
    ours, theirs = [s[0] for s in speeds], [s[1] for s in speeds]
    rng, per_pair, of_medians = random.Random(seed), [], []
    for _ in range(resamples):
        picked = [speeds[rng.randrange(len(speeds))] for _ in speeds]
        per_pair.append(statistics.median(a / b for a, b in picked))
        of_medians.append(statistics.median(a for a, _ in picked) / statistics.median(b for _, b in picked))
    return {"pairs": len(speeds), "lhama_median": statistics.median(ours),
            "llama_cpp_median": statistics.median(theirs),
            "ratio_median_of_pairs": statistics.median(a / b for a, b in speeds),
            "ratio_median_of_pairs_ci95": _interval(per_pair),
            "ratio_of_medians": statistics.median(ours) / statistics.median(theirs),
            "ratio_of_medians_ci95": _interval(of_medians),
            "lhama_ahead": sum(a > b for a, b in speeds)}


def _interval(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return ordered[int(0.025 * (len(ordered) - 1))], ordered[int(0.975 * (len(ordered) - 1))]


def report(done: list[dict], args: argparse.Namespace) -> dict:
    s = summary([(p["lhama"]["tok_s"], p["llama.cpp"]["tok_s"]) for p in done])
    print(f"{args.model} ({args.quant}) vs llama.cpp on its GGUF: {s['pairs']} pairs, {args.tokens} greedy tokens, "
          f"{args.threads} threads, order {args.order}")
    print(f"lhama     median {s['lhama_median']:.2f} tok/s  rows "
          + ", ".join(f"{p['lhama']['tok_s']:.2f}" for p in done))
    print(f"llama.cpp median {s['llama_cpp_median']:.2f} tok/s  rows "
          + ", ".join(f"{p['llama.cpp']['tok_s']:.2f}" for p in done))
    low, high = s["ratio_median_of_pairs_ci95"]
    print(f"ratio lhama/llama.cpp: median of per-pair ratios {s['ratio_median_of_pairs']:.3f}x (bootstrap 95% "
          f"{low:.3f}-{high:.3f}); median/median {s['ratio_of_medians']:.3f}x (95% {s['ratio_of_medians_ci95'][0]:.3f}-"
          f"{s['ratio_of_medians_ci95'][1]:.3f}); lhama ahead in {s['lhama_ahead']} of {s['pairs']} pairs", flush=True)
    return s


def extras(args: argparse.Namespace) -> None:
    """``lhama bench decode`` once and/or the serve benchmark, their output as it comes."""
    if args.bench:
        print("$ lhama bench decode --no-baseline --json", flush=True)
        subprocess.run([sys.executable, "-m", "lhama", "bench", "decode", "--model", args.model, "--quant", args.quant,
                        "--tokens", str(args.bench_tokens), "--no-baseline", "--json"], env=_env(), check=False)
    if args.serve:
        print("$ benchmarks/serve.py (1 and 16 clients)", flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "serve.py"), "--model", args.model, "--quant",
                        args.quant, "--levels", "1,16", "--max-batches", "16", "--max-tokens", "32", "--skip-image",
                        "--threads", str(args.threads), "--port", str(args.port)], env=_env(), check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lhama-default", help="a prepared model's name or directory")
    parser.add_argument("--quant", default=None, help="lhama's weights (default: the registry's, as chat loads them)")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--order", choices=("lhama-first", "alternate"), default="lhama-first")
    parser.add_argument("--max-seconds", type=float, default=0.0, help="start no pair that would end after this")
    parser.add_argument("--bench", action="store_true", help="also run lhama bench decode --no-baseline --json once")
    parser.add_argument("--bench-tokens", type=int, default=64)
    parser.add_argument("--serve", action="store_true", help="also run benchmarks/serve.py at 1 and 16 clients")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--out", type=Path, default=None, help="also write every row and the summary as JSON here")
    parser.add_argument("--row", choices=ENGINES, help=argparse.SUPPRESS)  # internal: one row, in this process
    args = parser.parse_args()
    args.quant = args.quant or shipped_quant(args.model)
    if args.row:
        print(json.dumps(row(args)))
        return
    print(f"tree {ROOT}, load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
    done = pairs(args)
    if not done:
        raise SystemExit("no pair ran")
    result = {"rows": done, "summary": report(done, args)}
    extras(args)
    print(f"load after {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
    if args.out:
        temporary = args.out.with_name(args.out.name + ".tmp")
        temporary.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        temporary.replace(args.out)


if __name__ == "__main__":
    main()
