"""Decode speed, one process, one prompt: lhama's engine vs transformers fp32 vs llama.cpp.

    python benchmarks/decode.py --model qwen2.5-coder-1.5b-instruct --quant int4 \\
        --draft qwen2.5-coder-0.5b-instruct --tokens 128 --out /tmp/decode.json

Rows, in this order (lhama's peak RSS is read before the others load):
- lhama: ``lhama.inference.bench.bench_decode`` (quantised LM from its cache, static KV cache,
  optional speculative draft), the same as ``lhama bench decode``;
- transformers: plain fp32 ``generate``, greedy (inside bench_decode);
- llama.cpp: PyPI ``xllamacpp`` on the very GGUF the model was prepared from (joined from its
  PyPI parts once into $LHAMA_HOME/gguf/), the same chat messages, greedy, ``ignore_eos``,
  the same token count and thread count; decode speed is its own ``predicted_per_second``, TTFT
  its ``prompt_ms`` (after one warm-up call). xllamacpp is only needed here (pip install xllamacpp).

Run it under the shared lock on a busy machine; the numbers of one run are comparable with each
other, not with another day's.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from lhama.inference.bench import QUESTION, SYSTEM, BenchConfig, bench_decode, gguf_file
from lhama.weights.resolve import resolve


def llama_cpp_row(gguf: Path, tokens: int, threads: int, warmup_tokens: int | None = None) -> dict:
    """Decode tok/s and TTFT of llama.cpp (xllamacpp) on ``gguf``, greedy, exactly ``tokens`` tokens, after a warm-up
    request of ``warmup_tokens`` (default: ``tokens``)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.n_ctx = 1024
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    server = xllamacpp.Server(params)
    request = {
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
        "max_tokens": tokens, "temperature": 0, "ignore_eos": True, "cache_prompt": False,
    }
    server.handle_chat_completions({**request, "max_tokens": warmup_tokens or tokens})  # warm-up
    reply = server.handle_chat_completions(request)
    timings = reply["timings"]
    return {"tok_s": round(timings["predicted_per_second"], 2), "ttft_s": round(timings["prompt_ms"] / 1000, 3),
            "tokens": timings["predicted_n"], "prompt_tokens": timings["prompt_n"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--draft", default=None)
    parser.add_argument("--quant", default="int4")
    parser.add_argument("--draft-tokens", type=int, default=3, help="draft tokens proposed per step")
    parser.add_argument("--threads", type=int, default=None, help="lhama's torch threads (default: physical cores)")
    parser.add_argument("--llama-threads", type=int, default=None, help="llama.cpp's threads (default: lhama's)")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--no-baseline", action="store_true", help="skip transformers fp32 (slow on the 1.5B)")
    parser.add_argument("--no-llama-cpp", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    model_dir = resolve(args.model, "lhama-default")
    draft_dir = resolve(args.draft, "lhama-default") if args.draft else None
    config = BenchConfig(model_dir, args.tokens, args.quant, draft_dir, args.draft_tokens, not args.no_baseline,
                         args.threads)
    lhama = bench_decode(config)
    rows = {"lhama": asdict(lhama)}
    gguf = gguf_file(model_dir)
    if not args.no_llama_cpp and gguf is not None:
        threads = args.llama_threads or lhama.threads
        rows["llama_cpp"] = {**llama_cpp_row(gguf, args.tokens, threads), "threads": threads, "gguf": str(gguf)}
    _print(rows, args)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


def _print(rows: dict, args: argparse.Namespace) -> None:
    lhama = rows["lhama"]
    engine = f"lhama ({args.quant}{', draft ' + args.draft if args.draft else ''})"
    print(f"model {args.model}, {args.tokens} new tokens, greedy; lhama {lhama['threads']} threads, "
          f"llama.cpp {rows.get('llama_cpp', {}).get('threads', '-')} threads")
    print(f"{'engine':<48}{'decode tok/s':>14}{'TTFT text s':>13}{'TTFT image s':>14}{'peak RSS MB':>13}")
    print(f"{engine:<48}{lhama['lhama_tok_s']:>14.2f}{lhama['ttft_s']:>13.3f}"
          f"{_or_dash(lhama['ttft_image_s']):>14}{lhama['peak_rss_mb']:>13.0f}")
    if lhama["transformers_tok_s"] is not None:
        print(f"{'transformers fp32 generate':<48}{lhama['transformers_tok_s']:>14.2f}{'-':>13}{'-':>14}{'-':>13}")
    if "llama_cpp" in rows:
        cpp = rows["llama_cpp"]
        print(f"{'llama.cpp (xllamacpp, same GGUF)':<48}{cpp['tok_s']:>14.2f}{cpp['ttft_s']:>13.3f}{'-':>14}{'-':>13}")
    if lhama["acceptance_rate"] is not None:
        print(f"draft acceptance rate: {lhama['acceptance_rate']:.1%}")
    sys.stdout.flush()


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
