"""#30 session 13: should ``--draft lookup`` be chat's default? Timed on a wider, chat-like prompt set.

    /work/team/heavy --exclusive -- python3 benchmarks/spec_timing_s13_lookup.py --out /tmp/30a/lookup13.json \\
        --target ~/.cache/lhama/models/lhama-default --budget 330

The shipped target (the model directory given, at the registry's quant for lhama-default), answering the 60
questions of the everyday set's test half (benchmarks/data/everyday_ptbr.jsonl, split everyday_ptbr_split.tsv),
in file order, under the target's own decoding settings (its ``lhama_generation.json``: the system prompt and
``no_repeat_ngram``, what ``lhama chat`` uses) with at most ``--tokens`` new tokens: per question plain decoding
and the prompt lookup that ``--draft lookup`` ships (``lookup_draft(LOOKUP_TOKENS)``), the order alternating from
question to question. Both runs prefill the whole prompt (no stored opening). Per run: the tokens, wall time,
time to first token, proposals kept/made. Questions are run until ``--budget`` seconds have passed (whole
questions only); the output is rewritten after every question.

RULE (committed before this run; the questions were read before for answer quality, #26, never for the lookup,
whose settings were chosen on the 30 dev prompts of session 12). The lookup becomes ``lhama chat``'s default draft
(``--draft none`` to turn it off) only if all of:
1. at least 40 questions completed, and every lookup run gave plain decoding's tokens (else: a bug; nothing changes);
2. all questions: summed plain wall / summed lookup wall >= 1.02, and the same ratio after the first token
   (wall - TTFT summed) >= 1.03;
3. short answers (plain answer < 32 tokens): summed wall ratio >= 1.00 and after-first-token ratio >= 1.02, and
   no more than a third of them below 0.95 by wall time.
Otherwise ``--draft lookup`` stays opt-in and docs/distill.md says why, with these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from lhama.inference.generate import eos_token_ids, generate_ids
from lhama.inference.quant_cache import load_for_inference
from lhama.inference.runtime import peak_rss_mb
from lhama.inference.speculative import LOOKUP_TOKENS, Draft, lookup_draft
from lhama.model.generation import read_generation
from lhama.weights.registry import REGISTRY

DATA = Path(__file__).resolve().parent / "data"
SHORT_BELOW = 32


def test_questions() -> list[tuple[str, str]]:
    """(id, question) of the everyday set's test half, in file order."""
    split = [line.split("\t") for line in (DATA / "everyday_ptbr_split.tsv").read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    test = {row[0] for row in split if row[1].strip() == "test"}
    rows = [json.loads(line) for line in (DATA / "everyday_ptbr.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return [(r["id"], r["question"]) for r in rows if r["id"] in test]


def timed(loaded, ids: list[int], config, eos: tuple[int, ...], draft: Draft | None) -> dict:
    """One answer: tokens, wall seconds (prefill included), time to first token, proposals kept/made."""
    before = (draft.accepted, draft.proposed) if draft else (0, 0)
    started, first, out = time.perf_counter(), None, []
    for token in generate_ids(loaded.model, ids, config, eos_ids=eos, draft=draft):
        first = first or time.perf_counter()
        out.append(token)
    wall = time.perf_counter() - started
    kept = (draft.accepted - before[0], draft.proposed - before[1]) if draft else (0, 0)
    return {"ids": out, "wall_s": round(wall, 4), "ttft_s": round(first - started, 4), "accepted": kept[0],
            "proposed": kept[1]}


def ratios(rows: list[dict]) -> dict:
    """Summed plain / summed lookup, by wall time and after the first token; per-question wall ratios."""
    if not rows:
        return {}
    wall = sum(r["plain"]["wall_s"] for r in rows) / sum(r["lookup"]["wall_s"] for r in rows)
    after = (sum(r["plain"]["wall_s"] - r["plain"]["ttft_s"] for r in rows)
             / sum(r["lookup"]["wall_s"] - r["lookup"]["ttft_s"] for r in rows))
    each = [r["plain"]["wall_s"] / r["lookup"]["wall_s"] for r in rows]
    kept, made = sum(r["lookup"]["accepted"] for r in rows), sum(r["lookup"]["proposed"] for r in rows)
    return {"questions": len(rows), "x_wall": round(wall, 3), "x_after_first": round(after, 3),
            "median_x_wall": round(statistics.median(each), 3), "below_0.95": sum(x < 0.95 for x in each),
            "acceptance": round(kept / made, 3) if made else None, "kept": kept, "proposed": made,
            "tokens": sum(len(r["plain"]["ids"]) for r in rows)}


def verdict(rows: list[dict]) -> dict:
    """The rule in the module docstring, applied."""
    short = [r for r in rows if len(r["plain"]["ids"]) < SHORT_BELOW]
    every, few = ratios(rows), ratios(short)
    checks = {
        "enough_questions": len(rows) >= 40,
        "identical": all(r["lookup"]["ids"] == r["plain"]["ids"] for r in rows),
        "all_wall_1.02": bool(every) and every["x_wall"] >= 1.02,
        "all_after_first_1.03": bool(every) and every["x_after_first"] >= 1.03,
        "short_wall_1.00": bool(few) and few["x_wall"] >= 1.00,
        "short_after_first_1.02": bool(few) and few["x_after_first"] >= 1.02,
        "short_few_losers": bool(few) and few["below_0.95"] <= len(short) / 3,
    }
    return {"all": every, "short": few, "long": ratios([r for r in rows if r not in short]), "checks": checks,
            "lookup_becomes_default": all(checks.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="the shipped target's model directory")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=64, help="at most this many new tokens per answer")
    parser.add_argument("--budget", type=float, default=330, help="seconds; whole questions only")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("LHAMA_THREADS", "1")))
    started = time.perf_counter()
    quant = next(s.quant for s in REGISTRY if s.name == "lhama-default")
    target = load_for_inference(os.path.expanduser(args.target), quant)
    generation = read_generation(Path(os.path.expanduser(args.target)))
    config = replace(generation, max_new_tokens=args.tokens)
    tok, eos = target.tokenizer, eos_token_ids(target.model, target.tokenizer)
    draft = lookup_draft(LOOKUP_TOKENS)
    rows: list[dict] = []
    for index, (qid, question) in enumerate(test_questions()):
        messages = [{"role": "system", "content": generation.system_prompt}, {"role": "user", "content": question}]
        ids = tok(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)).input_ids
        if index == 0:  # warm-up: first-call allocations, thread pools
            timed(target, ids, config, eos, None), timed(target, ids, config, eos, draft)
        order = ("plain", "lookup") if index % 2 == 0 else ("lookup", "plain")
        row = {"id": qid}
        for name in order:
            row[name] = timed(target, list(ids), config, eos, None if name == "plain" else draft)
        rows.append(row)
        print(f"{qid}: plain {len(row['plain']['ids'])} tok {row['plain']['wall_s']:.2f} s, lookup "
              f"{row['lookup']['wall_s']:.2f} s ({row['lookup']['accepted']}/{row['lookup']['proposed']})"
              + ("" if row["lookup"]["ids"] == row["plain"]["ids"] else "  OUTPUTS DIFFER"), flush=True)
        result = {"target": args.target, "quant": quant, "threads": torch.get_num_threads(), "tokens": args.tokens,
                  "peak_rss_mb": round(peak_rss_mb()), **verdict(rows), "rows": rows}
        args.out.write_text(json.dumps(result, ensure_ascii=False) + "\n", encoding="utf-8")
        if time.perf_counter() - started > args.budget:
            break
    print(json.dumps({k: result[k] for k in ("all", "short", "long", "checks", "lookup_becomes_default")}, indent=1))


if __name__ == "__main__":
    main()
