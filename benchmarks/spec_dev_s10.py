"""#30 session 10 dev data for choosing the draft's adaptive pace (never the timing prompts; one slot, 1 thread).

    /work/team/heavy -- python3 benchmarks/spec_dev_s10.py --out /tmp/30a/dev_s10.json

Dev prompts: session 8's 24 TRAINING-split prompts (every 6th; ids in docs/results/distill_qwen.json
``session8_vocab_dev.dev_ids``) and the 6 ``dev`` long-copy prompts of benchmarks/data/spec_longcopy.jsonl, each under the
distillation's system prompt. Per prompt: the shipped target's plain greedy answer (lhama-default at the registry's
quant, <= 48 new tokens, stopping at the end of the turn), and the int4-g32 0.5B draft's teacher-forced agreement flags
(its greedy choice at each answer position == the answer's token) when it reads the prompt's last 12 / 24 / 48 tokens or
the whole prompt (0). Then 1-thread costs, medians of interleaved repeats: the target's prefill at a few lengths, its 1-row
step and 2-4 row checks; the draft's prefill at a few lengths, its 1-row step, 1-2 row catch-ups, and catch-ups of R rows
on its own cache (after a rest). benchmarks/spec_sim_s10.py turns these into simulated end-to-end times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distill_spec import DATA, SYSTEM  # noqa: E402

from lhama.inference.generate import GenerationConfig, eos_token_ids, generate_ids  # noqa: E402
from lhama.inference.kv import KVState, prefill, rewind  # noqa: E402
from lhama.inference.lean import lean_decoder  # noqa: E402
from lhama.inference.quant_cache import load_for_inference  # noqa: E402
from lhama.weights.registry import REGISTRY  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
READS = (12, 24, 48, 0)


def dev_prompts() -> list[tuple[str, str]]:
    """(id, prompt) of the 24 session-8 dev prompts, then the 6 dev long-copy prompts."""
    ids = json.loads((ROOT / "docs/results/distill_qwen.json").read_text())["session8_vocab_dev"]["dev_ids"]
    rows = {r["id"]: r for r in map(json.loads, (DATA / "distill_prompts.jsonl").read_text().splitlines()) if r}
    copy = [r for r in map(json.loads, (DATA / "spec_longcopy.jsonl").read_text().splitlines()) if r["split"] == "dev"]
    return [(i, rows[i]["prompt"]) for i in ids] + [(r["id"], r["prompt"]) for r in copy]


def flags_for(draft, ids: list[int], answer: list[int], reads: int) -> list[int]:
    """1 where the draft reading the prompt's last ``reads`` tokens (0: all) picks the answer's token, teacher-forced."""
    cut = max(0, len(ids) - reads) if reads else 0
    seq = ids[cut:] + answer
    logits = draft.model.language_model(input_ids=torch.tensor([seq])).logits[0, len(seq) - len(answer) - 1: -1]
    return [int(a == c) for a, c in zip(answer, logits.argmax(-1).tolist())]


def cost_calls(target, draft, prompts: list[list[int]]) -> dict:
    """Named zero-argument calls whose median time is a cost of the simulation."""
    calls = {}
    filler = prompts[0] * 8
    for n in (32, 64, 128):
        calls[f"target|prefill|{n}"] = lambda n=n: prefill(target.model, filler[:n], None, KVState(), 60)
    for n in (8, 24, 48, 96, 160):
        calls[f"draft|prefill|{n}"] = lambda n=n: prefill(draft.model, filler[:n], None, KVState(), 60)
    base_ids = filler[:80]
    for name, loaded, rows in (("target", target, (1, 2, 3, 4)), ("draft", draft, (1, 2, 3))):
        kv = KVState()
        prefill(loaded.model, base_ids, None, kv, 60)
        lean, base = lean_decoder(loaded.model.language_model), len(kv.ids)
        for r in rows:
            def seq(r=r, kv=kv, lean=lean, base=base):
                rewind(kv, base)
                lean.step_seq([5] * r, kv.cache)
                kv.ids.extend([5] * r)
            calls[f"{name}|seq{r}"] = seq
        if name == "draft":
            for r in (3, 5, 9, 17):
                def resume(r=r, kv=kv, loaded=loaded, base=base):
                    rewind(kv, base - r)
                    prefill(loaded.model, base_ids, None, kv, kv.capacity - len(base_ids))
                calls[f"draft|resume{r}"] = resume
    return calls


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("LHAMA_THREADS", "1")))
    home = Path(os.path.expanduser("~/.cache/lhama/models"))
    quant = next(s.quant for s in REGISTRY if s.name == "lhama-default")
    target = load_for_inference(home / "lhama-default", quant)
    draft = load_for_inference(home / "qwen2.5-coder-0.5b-instruct", "int4-g32")
    tok, eos = target.tokenizer, eos_token_ids(target.model, target.tokenizer)
    out = {"target_quant": quant, "draft_quant": "int4-g32", "threads": torch.get_num_threads(), "prompts": []}
    inputs = []
    started = time.time()
    with torch.inference_mode():
        for pid, prompt in dev_prompts():
            messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
            ids = tok(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)).input_ids
            answer = list(generate_ids(target.model, ids, GenerationConfig(max_new_tokens=args.tokens), eos_ids=eos))
            row = {"id": pid, "prompt_tokens": len(ids), "answer": answer,
                   "flags": {str(r): flags_for(draft, ids, answer, r) for r in READS}}
            out["prompts"].append(row)
            inputs.append(ids)
            print(f"{time.time() - started:.0f}s {pid}: {len(ids)} + {len(answer)} tokens; agree "
                  + " ".join(f"r{r} {sum(f)}" for r, f in row["flags"].items()), flush=True)
            args.out.write_text(json.dumps(out) + "\n")
        calls = cost_calls(target, draft, inputs)
        for call in calls.values():
            call()
        times = {name: [] for name in calls}
        for rep in range(args.reps):
            for name, call in calls.items():
                t = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - t)
            print(f"rep {rep} {time.time() - started:.0f}s", flush=True)
    out["ms"] = {k: round(1000 * sorted(v)[len(v) // 2], 2) for k, v in times.items()}
    out["reps"] = args.reps
    args.out.write_text(json.dumps(out) + "\n")
    print(json.dumps(out["ms"]))


if __name__ == "__main__":
    main(sys.argv[1:])
