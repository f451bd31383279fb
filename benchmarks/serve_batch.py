"""The serve engine's batched decode step: lean step vs the transformers forward, on real weights.

    python benchmarks/serve_batch.py --model qwen2.5-coder-1.5b-instruct --quant int8 --sizes 1 4 16 \\
        --steps 16 --rounds 2 --threads 1

Prefills ``max(--sizes)`` chat prompts once (one per question, as ``lhama serve`` prefills each
request alone), then for each batch size B and round decodes ``--steps`` greedy steps of the
first B rows through :class:`lhama.inference.batch.DecodeBatch` twice, interleaved: with the
lean step (the default) and with ``LHAMA_LEAN_DECODE=0`` (the transformers forward). Prints the
median ms per step, the rows' tokens per second (B / step time) and whether both paths chose the
same greedy tokens.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from lhama.data.conversation import encode_prompt, render_prompt
from lhama.inference.batch import DecodeBatch
from lhama.inference.quant_cache import load_for_inference
from lhama.weights.resolve import resolve

QUESTIONS = ["Qual é a capital do Brasil?", "Explique o que é fotossíntese.", "Dê três dicas para estudar melhor.",
             "O que é um número primo?", "Por que o céu é azul?", "Como funciona um motor elétrico?",
             "Quem escreveu Dom Casmurro?", "O que é uma célula?"]


@torch.inference_mode()
def prefilled(loaded, count: int) -> list[tuple[list, int, int]]:
    """(layers' keys/values, length, first token) of ``count`` chat prompts, each prefilled alone."""
    rows = []
    for i in range(count):
        question = f"{QUESTIONS[i % len(QUESTIONS)]} (pergunta {i + 1})"
        ids = encode_prompt(loaded.tokenizer, render_prompt(loaded.tokenizer, [{"role": "user", "content": question}]))
        out = loaded.model(torch.tensor([ids]), use_cache=True, past_key_values=DecodeBatch.empty_cache(),
                           logits_to_keep=1)
        rows.append((out.past_key_values, len(ids), int(out.logits[0, -1].argmax())))
    return rows


@torch.inference_mode()
def decode(loaded, rows: list, steps: int, lean: bool) -> tuple[float, list[list[int]]]:
    """(seconds per step, tokens of each step) of greedy decoding ``rows`` as one batch."""
    os.environ["LHAMA_LEAN_DECODE"] = "1" if lean else "0"
    batch = DecodeBatch()
    for cache, length, _ in rows:
        batch.add(cache, length)
    tokens, chosen = [token for *_, token in rows], []
    language_model = loaded.model.language_model
    started = time.perf_counter()
    for _ in range(steps):
        tokens = batch.step(language_model, torch.tensor(tokens)).argmax(-1).tolist()
        chosen.append(tokens)
    return (time.perf_counter() - started) / steps, chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--quant", default="int8")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_for_inference(resolve(args.model, args.model), args.quant)
    rows = prefilled(loaded, max(args.sizes))
    decode(loaded, rows[:2], 4, True)  # warm-up (the lean decoder is built on first use)
    print(f"{args.model} {args.quant}, {args.threads} threads, {args.steps} greedy steps x {args.rounds} rounds "
          f"(load {os.getloadavg()[0]:.1f})")
    print(f"{'rows':>5}{'lean ms/step':>14}{'forward ms/step':>17}{'lean tok/s':>12}{'forward tok/s':>15}"
          f"{'speed-up':>10}{'same tokens':>13}")
    for size in args.sizes:
        times: dict[bool, list[float]] = {True: [], False: []}
        same = True
        for _ in range(args.rounds):
            (lean_s, lean_tokens), (plain_s, plain_tokens) = (decode(loaded, rows[:size], args.steps, mode)
                                                              for mode in (True, False))
            times[True].append(lean_s)
            times[False].append(plain_s)
            same &= lean_tokens == plain_tokens
        lean_s, plain_s = statistics.median(times[True]), statistics.median(times[False])
        print(f"{size:>5}{lean_s * 1e3:>14.1f}{plain_s * 1e3:>17.1f}{size / lean_s:>12.2f}{size / plain_s:>15.2f}"
              f"{plain_s / lean_s:>9.2f}x{'yes' if same else 'NO':>13}", flush=True)
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
