"""Speed of a chat model with an image, through the real chat path (``lhama.serve.session``).

Per model: load time, time to first token with an image (the image attached -- decoded and, for a
cascade model, classified -- plus prefill and the first token), decode tokens/s, whole answer
time, peak RSS of this process. Greedy, the guard off (it is measured in docs/guard.md).

    python benchmarks/default_speed.py --model lhama-default --image examples/coruja.jpg

Run it under the heavy lock; numbers on the shared 2-core CPU are noisy.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch

from lhama.inference.generate import Completion, GenerationConfig
from lhama.inference.quant_cache import load_for_inference
from lhama.serve.session import ChatSession
from lhama.weights.registry import registry_entry
from lhama.weights.resolve import registered_name, resolve


def timed_answer(session: ChatSession, image: Path | None, text: str) -> dict:
    """Attach ``image`` (if any), ask ``text``; the timings of that answer."""
    start = time.perf_counter()
    if image is not None:
        session.attach("image", image)
    attached = time.perf_counter()
    first, done = None, None
    for item in session.ask(text):
        if first is None and isinstance(item, str) and item.strip():
            first = time.perf_counter()
        if isinstance(item, Completion):
            done = item
    end = time.perf_counter()
    decode = max(end - (first or end), 1e-9)
    return {"question": text, "image": str(image) if image else None, "answer": done.text.strip(),
            "finish": done.finish_reason, "tokens": len(done.token_ids), "attach_s": round(attached - start, 3),
            "ttft_s": round((first or end) - start, 3), "total_s": round(end - start, 3),
            "decode_tok_s": round((len(done.token_ids) - 1) / decode, 2) if len(done.token_ids) > 1 else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lhama-default")
    parser.add_argument("--quant", default=None, help="default: the registered model's own (lhama-default: int8)")
    parser.add_argument("--image", type=Path, default=Path("examples/coruja.jpg"))
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    name = registered_name(args.model, args.model)
    quant = args.quant or (registry_entry(name).quant if name else "none")
    start = time.perf_counter()
    loaded = load_for_inference(resolve(args.model, args.model), quant)
    load_s = time.perf_counter() - start
    generation = GenerationConfig(max_new_tokens=args.max_new_tokens, image_guidance=loaded.generation.image_guidance)
    runs = []
    for image, text in ((args.image, "Descreva a imagem."), (args.image, "O que é isto?"), (None, "Qual é a capital do Brasil?"),
                        (None, "Me dê três dicas para dormir melhor.")):
        runs.append(timed_answer(ChatSession(loaded, generation), image, text))
        print(json.dumps(runs[-1], ensure_ascii=False), flush=True)
    result = {"command": f"python benchmarks/default_speed.py --model {args.model} --image {args.image}",
              "model": args.model, "quant": quant, "load_s": round(load_s, 2),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
              "machine": f"{platform.machine()} CPU, 2 threads, shared with other jobs (noisy)", "runs": runs}
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
