"""Does `lhama chat` answer the same from the stored system-prompt opening as from a full prefill? (#26, s13)

For each question, one chat session prefills the whole prompt (no stored opening) and another starts from the
opening stored on disk (:mod:`lhama.inference.prefix_store`, stored once in a temporary directory before the
first question, as a first `lhama chat` does). Both answer greedily with the model's own settings (its system
prompt and token limit: the cache sizes of a real chat). Printed per question: whether the answer tokens are the
same, whether every key/value the two sessions hold is the same bits, the first differing answer token, and
each path's time to first token (the stored path's includes reading the file).

    python benchmarks/prefix_agreement.py --model /path/to/lhama-default --quant int4-g32-grid-k+lossy6 --limit 20

Pass a model DIRECTORY for measurements (a registered name must already be prepared: nothing is prepared here).
Questions: the session 12 prompt below, then ``--questions`` (a JSONL with "question" fields; default the
everyday dev set, benchmarks/data/everyday_fresh_s10.jsonl, read since session 10).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from statistics import median

import torch
from rich.console import Console
from rich.table import Table

from lhama.inference.generate import Completion
from lhama.inference.prefix_store import StoredPrefix, weights_key
from lhama.inference.quant_cache import load_for_inference
from lhama.serve.session import ChatSession
from lhama.weights.resolve import registered_source, resolve

SESSION_12 = "Corrija a frase: eu vai na escola amanha de manha."  # the stored opening changed one token (s12)
DEV = Path(__file__).with_name("data") / "everyday_fresh_s10.jsonl"


def ask(session: ChatSession, question: str) -> tuple[list[int], float]:
    """The answer's token ids and the seconds to its first text."""
    started, first = time.perf_counter(), None
    for item in session.ask(question):
        if first is None:
            first = time.perf_counter() - started
        if isinstance(item, Completion):
            return item.token_ids, first
    raise RuntimeError("no completion")


def same_bits(a: ChatSession, b: ChatSession) -> bool:
    n = len(a.kv.ids)
    return a.kv.ids == b.kv.ids and all(
        torch.equal(x.keys[:, :, :n], y.keys[:, :, :n]) and torch.equal(x.values[:, :, :n], y.values[:, :, :n])
        for x, y in zip(a.kv.cache.layers, b.kv.cache.layers))


def first_difference(a: list[int], b: list[int]) -> int | None:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None if len(a) == len(b) else min(len(a), len(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lhama-default", help="a prepared model's name or a model directory")
    parser.add_argument("--quant", default=None, help="the LM's weights (default: the registry's choice, else none)")
    parser.add_argument("--questions", type=Path, default=DEV)
    parser.add_argument("--limit", type=int, default=20, help="questions from the file (after the session 12 prompt)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the model's own (chat's)")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON")
    args = parser.parse_args()
    source = registered_source(args.model, args.model)
    quant = args.quant or (source.quant if source else "none")
    started = time.perf_counter()
    loaded = load_for_inference(resolve(args.model, args.model), quant)
    console = Console()
    console.print(f"{args.model} ({quant}) loaded in {time.perf_counter() - started:.1f} s; torch threads "
                  f"{torch.get_num_threads()}; {platform.processor() or platform.machine()}")
    generation = loaded.generation
    if args.max_new_tokens:
        generation = replace(generation, max_new_tokens=args.max_new_tokens)
    rows_in = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [SESSION_12] + [row["question"] for row in rows_in[: args.limit]]
    store = StoredPrefix(Path(tempfile.mkdtemp(prefix="lhama-openings-")), weights_key(loaded.model))
    warm = ChatSession(loaded, replace(generation, max_new_tokens=1), prefix=store)
    ask(warm, questions[0])  # stores the opening (and warms the kernels) before anything is timed
    rows = []
    for question in questions:
        whole, seeded = ChatSession(loaded, generation), ChatSession(loaded, generation, prefix=store)
        full, full_s = ask(whole, question)
        stored, stored_s = ask(seeded, question)
        rows.append({"question": question, "prompt_tokens": len(whole.kv.ids) - len(full), "answer_tokens": len(full),
                     "same_answer": full == stored, "same_bits": same_bits(whole, seeded),
                     "first_difference": first_difference(full, stored), "ttft_full_s": round(full_s, 3),
                     "ttft_stored_s": round(stored_s, 3), "full": loaded.tokenizer.decode(full, skip_special_tokens=True),
                     "stored": loaded.tokenizer.decode(stored, skip_special_tokens=True)})
        console.print(f"[dim]{len(rows)}/{len(questions)} {rows[-1]['same_answer']} {rows[-1]['same_bits']}[/]")
    table = Table(title=f"stored opening vs full prefill ({args.model}, {quant}, {torch.get_num_threads()} thread(s))")
    for name in ("question", "prompt", "answer", "same answer", "same bits", "1st diff", "TTFT full s", "TTFT stored s"):
        table.add_column(name)
    for row in rows:
        table.add_row(row["question"][:40], str(row["prompt_tokens"]), str(row["answer_tokens"]), str(row["same_answer"]),
                      str(row["same_bits"]), str(row["first_difference"]), f"{row['ttft_full_s']:.2f}",
                      f"{row['ttft_stored_s']:.2f}")
    console.print(table)
    console.print(f"same answers {sum(r['same_answer'] for r in rows)}/{len(rows)}, same bits "
                  f"{sum(r['same_bits'] for r in rows)}/{len(rows)}; median TTFT full "
                  f"{median(r['ttft_full_s'] for r in rows):.2f} s, stored {median(r['ttft_stored_s'] for r in rows):.2f} s")
    if args.out:
        args.out.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
