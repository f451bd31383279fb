"""Session 16 (#30): distil the 0.5B with the label loss alone on the chat target's greedy answers, longer.

Session 15 (benchmarks/distill_s15.py) trained the 0.5B on 64 of lhama-default's own chat answers with
0.5 x top-32 KL at T=1 + 0.5 x label CE, LoRA 32, 16 steps: acceptance 0.509 -> 0.499 (no change shown);
the student's argmax moved at 272 of 3,888 held-out positions. Acceptance counts the teacher's greedy
token only, so this run trains on exactly that: the cross-entropy on the teacher's greedy answers
(``--kd-weight 0``: no teacher logits at all, so every one of the 102 answers can be used), for 3 epochs
(~5x the s15 updates) at a higher learning rate.

THE RULE (committed with the new prompts, before any model answers them; nothing below changes after):

- Train: the 102 training answers of session 15 (``benchmarks/data/distill_s15_train.jsonl``, committed in
  40df021: lhama-default's chat answers, its plan int4-g32-grid-k+lossy6 with int8 lossy layers then).
- Student: qwen2.5-coder-0.5b-instruct, ``lhama distill --teacher <lhama-default dir> --kd-weight 0 --lora 32
  --lr 5e-4 --batch 2 --grad-accum 2 --max-length 384 --epochs 3 --seed 0`` in slot chunks of <= 15 min
  (``--stop-after`` / ``--resume``). No evaluation during training, no checkpoint choice: the final model.
  If the 3 epochs cannot finish by 02:00 UTC, the newest checkpoint's run is finished with ``--steps`` equal
  to the steps done (a cost decision; reported as a deviation).
- Fresh held-out (the claim): ``benchmarks/data/distill_s16_prompts.txt``, 92 new everyday pt-BR requests
  written by hand this session, every one held out (``check``: no exact or near match with any committed
  text). Answered once (``answer``) by lhama-default as chat runs it now (its directory, plan
  int4-g32-grid-k+lossy6, 6-bit lossy layers on AVX2 since df5e885, its system prompt and
  no_repeat_ngram 6, greedy, <= 128 new tokens, benchmarks/batched.py, 1 thread). Each model is measured
  on it once (``measure``); the original 0.5B's row may be computed while the student trains.
- Dev (not a claim): session 15's 48 held-out answers, read once in s15, dev from now on; the original
  0.5B's s15 row is reused.
- Numbers (``compare``, session 15's code): A3 = simulated acceptance of speculative decoding with 3
  proposals over the first 48 tokens, A1 = with 1 proposal, top-1 agreement, held-out perplexity of the
  teacher's answers; distilled vs original with a paired bootstrap over prompts (10,000 draws, seed 0).
- Verdict: "raised" iff the 95 % interval of the A3 difference lies above 0 on the fresh set; "fell" iff
  below; else "no change shown". Perplexity: the distilled beats the original iff the ratio's interval < 1.
  If A3 is raised: chat's tok/s with ``--draft`` the distilled student vs ``--draft none`` on a slot.

    python benchmarks/distill_s16.py check
    /work/team/heavy -- python3 benchmarks/distill_s16.py answer --teacher DIR --out /tmp/30a/s16/fresh
    python benchmarks/distill_s16.py measure --model DIR --name NAME --heldout H.jsonl --results R.json
    python benchmarks/distill_s16.py compare --results R.json --before "0.5B" --after "0.5B distilled s16"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import distill_s15 as s15

PROMPTS = Path(__file__).resolve().parent / "data" / "distill_s16_prompts.txt"


def prompts() -> list[dict]:
    """The prompts in file order (id, text); every one is held out."""
    lines = [line.strip() for line in PROMPTS.read_text(encoding="utf-8").splitlines()]
    return [{"id": f"s16-{i:03d}", "prompt": t, "split": "heldout"} for i, t in enumerate(t for t in lines if t and not t.startswith("#"))]


def check() -> list[tuple[str, str]]:
    """(prompt, committed text) pairs that are the same or near; also repeats inside the file."""
    rows, seen = prompts(), s15.committed_texts(skip=PROMPTS)
    folded = [s15.fold(r["prompt"]) for r in rows]
    clashes = sorted({(r["prompt"], s) for r, f in zip(rows, folded) for s in seen if s15.near(f, s)})
    clashes += [(rows[i]["prompt"], rows[j]["prompt"]) for i in range(len(rows)) for j in range(i) if s15.near(folded[i], folded[j])]
    print(f"{len(rows)} prompts (all held out) against {len(seen)} committed texts: {len(clashes)} clashes")
    for pair in clashes:
        print("  CLASH:", pair)
    return clashes


def answer(teacher: str, out: Path, batch: int, max_new_tokens: int) -> None:
    """The teacher's chat answers to every prompt: heldout.jsonl (system, request, answer) and answers.json."""
    import torch
    from batched import answer_all

    from lhama.inference.quant_cache import is_cached, load_for_inference

    out = s15._mine(out)
    if not is_cached(teacher, s15.PLAN):  # never quantise (and write) a shared model's cache from here
        raise SystemExit(f"{teacher} has no current {s15.PLAN} cache; the lead prepares it")
    torch.set_num_threads(int(os.environ.get("LHAMA_THREADS", "1")))
    loaded = load_for_inference(teacher, s15.PLAN)
    system, rows = loaded.generation.system_prompt, prompts()
    tic = time.perf_counter()
    chats = [[{"role": "system", "content": system}, {"role": "user", "content": r["prompt"]}] for r in rows]
    done = answer_all(loaded, chats, max_new_tokens, batch)
    seconds = time.perf_counter() - tic
    items = [{**r, "answer": c.text.strip(), "tokens": len(c.token_ids), "finish": c.finish_reason} for r, c in zip(rows, done)]
    out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(s15._chat(i, system), ensure_ascii=False) + "\n" for i in items if i["answer"]]
    (out / "heldout.jsonl").write_text("".join(lines), encoding="utf-8")
    meta = {"teacher": teacher, "plan": s15.PLAN, "system_prompt": system, "max_new_tokens": max_new_tokens, "batch": batch,
            "threads": torch.get_num_threads(), "seconds": seconds, "tokens": sum(i["tokens"] for i in items),
            "at_limit": sum(i["finish"] == "length" for i in items), "items": items}
    (out / "answers.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in meta.items() if k != "items"}, ensure_ascii=False))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("check")
    ans = sub.add_parser("answer")
    ans.add_argument("--teacher", required=True, help="lhama-default's directory (with its current quant cache)")
    ans.add_argument("--out", type=Path, required=True)
    ans.add_argument("--batch", type=int, default=16)
    ans.add_argument("--max-new-tokens", type=int, default=128)
    mea = sub.add_parser("measure")
    for name in ("--model", "--name"):
        mea.add_argument(name, required=True)
    mea.add_argument("--heldout", type=Path, required=True)
    mea.add_argument("--results", type=Path, required=True)
    cmp = sub.add_parser("compare")
    cmp.add_argument("--results", type=Path, required=True)
    cmp.add_argument("--before", required=True)
    cmp.add_argument("--after", required=True)
    cmp.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.step == "check":
        sys.exit(1 if check() else 0)
    elif args.step == "answer":
        answer(args.teacher, args.out, args.batch, args.max_new_tokens)
    elif args.step == "measure":
        s15.measure(args.model, args.name, args.heldout, args.results)
    else:
        found = s15.compare(args.results, args.before, args.after)
        if args.out:
            args.out.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
