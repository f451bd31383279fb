"""Everyday pt-BR questions: % answered right, greedy, by one model.

The set is ``benchmarks/data/everyday_ptbr.jsonl`` (written by hand for issue #26, never used
for training); an answer is right when it matches an accepted pattern
(``lhama.eval.questions.is_right``: whole words of the folded answer). Each question is one user
turn after the model's own system prompt (``lhama_generation.json``; ``--system`` overrides it).

    python benchmarks/everyday.py --model lhama-default
    python benchmarks/everyday.py --model qwen2.5-coder-1.5b-instruct --quant int8 --system "Você é..."

Heavy for the 1.5B (~4 s per question on the 2-core CPU): run it under the heavy lock.

``--resume-from FILE --max-new-tokens 256`` re-asks only the questions whose saved answer in FILE
(an ``--out`` of this script) stopped at the token limit, and keeps the others as they were
(re-graded): under greedy decoding a higher limit cannot change an answer that ended before the
old one. So the product's own limit (chat: 256) costs minutes, not a whole run. Likewise
``--resume-from FILE --no-repeat-ngram N`` re-asks only the answers that repeat a run of tokens
(the others cannot change, :func:`resumable`). Both assume the same code and kernels as the
earlier run: after #27's int8 decode step, 6 of session 3's 60 dev answers came out worded
differently (the same 42 right).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

import torch
from batched import answer_all, overridden
from rich.console import Console
from rich.table import Table

from lhama.eval.questions import is_right, read_questions, score
from lhama.inference.quant_cache import load_for_inference
from lhama.weights.registry import registry_entry
from lhama.weights.resolve import registered_name, resolve

QUESTIONS = Path(__file__).with_name("data") / "everyday_ptbr.jsonl"
SPLIT = Path(__file__).with_name("data") / "everyday_ptbr_split.tsv"  # dev (tuning) / test (reported), fixed first


def split_ids(part: str, path: Path = SPLIT) -> set[str]:
    """The question ids of ``part`` ("dev" or "test") in the split table (``id<TAB>split`` lines)."""
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return {row[0] for row in rows[1:] if row[1] == part}


def repeats(text: str | list[int], n: int = 8) -> bool:
    """True when ``text`` says some run of ``n`` words (case folded; or of ``n`` token ids) twice:
    a loop or a degenerate restatement ("Coloque a televisão em modo de vaga ..." again and again)."""
    words = re.findall(r"\w+", text.lower()) if isinstance(text, str) else text
    runs = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(set(runs)) < len(runs)


def resumable(path: Path, questions: list, decoding, system: str, tokenizer) -> dict[str, dict]:
    """The answers of an earlier ``--out`` that these settings would give again (re-graded), by id.

    Greedy and the same settings: every answer that ended before the token limit. When only
    ``no_repeat_ngram`` is new (n > 0, the earlier run had 0): an answer changes only if it said
    some n tokens twice, so the answers whose re-tokenised text repeats no 3-token run (a margin
    for the re-tokenisation) are kept too. Anything else is refused (SystemExit)."""
    earlier = json.loads(path.read_text(encoding="utf-8"))
    before = (earlier.get("repetition_penalty", 1.0), earlier.get("no_repeat_ngram", 0), earlier["system_prompt"],
              earlier.get("repetition_scope", "all"))
    blocking = before[1] == 0 and decoding.no_repeat_ngram >= 3
    if (before[0] != decoding.repetition_penalty or before[2] != system or before[3] != decoding.repetition_scope
            or (before[1] != decoding.no_repeat_ngram and not blocking)):
        raise SystemExit(f"{path} was decoded with other settings; --resume-from needs the same ones (or a new --no-repeat-ngram)")

    def same(row: dict) -> bool:
        ids = tokenizer(row["answer"])["input_ids"]
        return row["finish"] != "length" and not (blocking and repeats(ids, 3))

    by_id = {q.id: q for q in questions}
    return {r["id"]: {**r, "right": is_right(r["answer"], by_id[r["id"]])} for r in earlier["items"]
            if r["id"] in by_id and same(r)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lhama-default", help="a registered name or a model directory")
    parser.add_argument("--quant", default=None, help="none, bf16, int8, int4; default: the registered model's own")
    parser.add_argument("--system", default=None, help="system prompt; default: the model's own ('' for none)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--repetition-penalty", type=float, default=None, help="default: the model's own")
    parser.add_argument("--no-repeat-ngram", type=int, default=None, help="default: the model's own (0: off)")
    parser.add_argument("--repetition-scope", choices=("all", "answer"), default=None,
                        help="the tokens the penalty counts: prompt and answer, or the answer only; default: the model's own")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions (0: all)")
    parser.add_argument("--sample", type=int, default=0, help="N questions spread evenly over the set (0: all)")
    parser.add_argument("--batch", type=int, default=8, help="answers decoded together (lhama's serving engine)")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--split", choices=("all", "dev", "test"), default="all",
                        help="dev: the half prompts are tuned on; test: the half reported (everyday_ptbr_split.tsv)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 under the heavy scheduler)")
    parser.add_argument("--resume-from", type=Path, default=None,
                        help="an --out of an earlier run: re-ask only the answers these settings could change (resumable())")
    parser.add_argument("--out", type=Path, default=None, help="write answers and scores as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    questions = read_questions(args.questions)
    if args.split != "all":
        questions = [q for q in questions if q.id in split_ids(args.split)]
    questions = questions[: args.limit] if args.limit else questions
    if args.sample and args.sample < len(questions):  # every (len/N)-th question: all categories, in proportion
        questions = [questions[i * len(questions) // args.sample] for i in range(args.sample)]
    name = registered_name(args.model, args.model)
    quant = args.quant or (registry_entry(name).quant if name else "none")
    loaded = load_for_inference(resolve(args.model, args.model), quant)
    system = loaded.generation.system_prompt if args.system is None else args.system
    decoding = overridden(loaded.generation, args)
    start, kept = time.perf_counter(), {}
    if args.resume_from:
        kept = resumable(args.resume_from, questions, decoding, system, loaded.tokenizer)
    asked = [q for q in questions if q.id not in kept]
    conversations = [([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": q.question}]
                     for q in asked]
    for q, done in zip(asked, answer_all(loaded, conversations, args.max_new_tokens, args.batch, decoding)):
        kept[q.id] = {"id": q.id, "question": q.question, "answer": done.text.strip(), "right": is_right(done.text, q),
                      "tokens": len(done.token_ids), "finish": done.finish_reason, "repeats": repeats(done.text)}
        print(f"{q.id} {'OK ' if kept[q.id]['right'] else 'NO '} {q.question} -> {kept[q.id]['answer']!r}", flush=True)
    rows = [kept[q.id] for q in questions]
    seconds = time.perf_counter() - start
    answers = [r["answer"] for r in rows]
    summary = score(questions, answers)
    at_limit = sum(r["finish"] == "length" for r in rows)
    looped = [r["id"] for r in rows if repeats(r["answer"])]
    table = Table(title=f"Everyday pt-BR questions: {args.model} ({quant}), greedy, <= {args.max_new_tokens} new tokens")
    for column in ("category", "n", "right", "%"):
        table.add_column(column)
    for category, s in summary.items():
        table.add_row(category, str(s["n"]), str(s["right"]), f"{s['rate']:.1%}")
    Console().print(table)
    print(f"{at_limit} answers reached the token limit; {len(looped)} repeat an 8-word run {looped}; {seconds:.0f} s in all")
    if args.out:
        result = {"command": "python benchmarks/everyday.py " + " ".join(f"--{k.replace('_', '-')} {v!r}" for k, v in vars(args).items() if v not in (None, 0)),
                  "model": args.model, "quant": quant, "system_prompt": system,
                  "repetition_penalty": decoding.repetition_penalty, "repetition_scope": decoding.repetition_scope,
                  "no_repeat_ngram": decoding.no_repeat_ngram, "machine":
                  f"{platform.machine()} CPU, {args.threads} thread(s), shared with other jobs", "seconds": round(seconds, 1),
                  "answers_at_token_limit": at_limit, "answers_repeating_8_words": looped, "reasked": [q.id for q in asked], "summary": summary, "items": rows}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
