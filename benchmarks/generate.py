"""Decode speed: lhama's generation loop vs plain ``transformers`` ``generate`` on the same
model, prompt and greedy settings, in the same process.

    python benchmarks/generate.py --model gemma-3-270m --tokens 64 --repeats 3

Prints a table: prompt tokens, new tokens, seconds, tokens/s (median of the repeats).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from rich.console import Console
from rich.table import Table

from lhama.data.conversation import encode_prompt, render_prompt
from lhama.model.build import load_model
from lhama.inference.generate import GenerationConfig, generate_ids
from lhama.weights.resolve import resolve

PROMPT = "Escreva um parágrafo sobre a história da cidade de São Paulo."


def time_lhama(loaded, ids: list[int], tokens: int) -> tuple[float, int]:
    config = GenerationConfig(max_new_tokens=tokens)
    start = time.perf_counter()
    produced = list(generate_ids(loaded.model, ids, config))  # no EOS stop: fixed work
    return time.perf_counter() - start, len(produced)


def time_transformers(loaded, ids: list[int], tokens: int) -> tuple[float, int]:
    inputs = torch.tensor([ids])
    start = time.perf_counter()
    with torch.inference_mode():
        out = loaded.model.language_model.generate(
            inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=tokens, min_new_tokens=tokens,
            do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id or 0,
        )
    return time.perf_counter() - start, out.shape[1] - inputs.shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    loaded = load_model(resolve(args.model, args.model))
    load_s = time.perf_counter() - start
    prompt = render_prompt(loaded.tokenizer, [{"role": "user", "content": PROMPT}])
    ids = encode_prompt(loaded.tokenizer, prompt)
    time_lhama(loaded, ids, 4)  # warm-up: first-call allocations
    table = Table(title=f"{args.model}: greedy decode, {len(ids)} prompt tokens, {torch.get_num_threads()} threads")
    for column in ("implementation", "new tokens", "seconds (median)", "tokens/s"):
        table.add_column(column, justify="right" if column != "implementation" else "left")
    contenders = (("lhama generate_ids", time_lhama), ("transformers generate", time_transformers))
    runs: dict[str, list[tuple[float, int]]] = {name: [] for name, _ in contenders}
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        for name, fn in contenders:
            runs[name].append(fn(loaded, ids, args.tokens))
    for name, results in runs.items():
        seconds = statistics.median(r[0] for r in results)
        table.add_row(name, str(results[0][1]), f"{seconds:.2f}", f"{results[0][1] / seconds:.1f}")
    console = Console()
    console.print(f"load_model from the prepared directory: {load_s:.1f} s")
    console.print(table)


if __name__ == "__main__":
    main()
