"""Session 15 (#30): distil the 0.5B on what lhama-default's 1.5B says in chat; does draft acceptance rise?

Sessions 3-5 distilled the 0.5B on the plain 1.5B's answers under a generic system prompt (32-68 answers,
LoRA 16, 12-17 steps) and measured acceptance against those answers: 0.519 -> 0.498 (round 2), 0.524 /
0.529 (round 4). This run trains on the chat target's own answers: lhama-default (its LM is that 1.5B)
with its shipped quant plan, system prompt, chat template and decoding settings.

THE RULE (committed with the prompts, before any model answers them; nothing below changes after):

- Prompts: ``benchmarks/data/distill_s15_prompts.txt``, 150 everyday-like pt-BR requests written by hand
  for this session, checked against every committed everyday, guard and distillation text (``check``:
  no exact or near match). Held out: ``crc32(prompt) % 100 < 30`` (``split``), the held-out ids
  md5-pinned in tests/train/test_distill_s15.py. No held-out prompt or answer is trained on.
- Teacher answers (``answer``): lhama-default's directory, plan ``int4-g32-grid-k+lossy6`` (the shipped
  chat quant; its lossy layers are int8 on AVX2), its ``lhama_generation.json`` (system prompt,
  no_repeat_ngram 6), greedy, <= 128 new tokens, lhama's serving engine (benchmarks/batched.py), 1 thread.
  Each record: system turn (that prompt), the request, the teacher's answer.
- Student: qwen2.5-coder-0.5b-instruct, ``lhama distill --teacher <lhama-default dir> --teacher-quant
  int4-g32-grid-k+lossy6 --data train.jsonl --lora 32 --lr 3e-4 --kd-weight 0.5 --temperature 1 --top-k 32
  --batch 2 --grad-accum 2 --max-length 384 --seed 0`` and ``--epochs 2``, or ``--epochs 1`` if the
  measured teacher-cache + step costs say 2 epochs cannot finish by 23:03 UTC (a cost decision, made
  before training, from no held-out number). Chunks of <= 15 min with ``--stop-after`` / ``--resume``.
  No held-out evaluation during training (no ``--eval-data``).
- Measure (``measure``, once per model, on every held-out record): per answer the loss (nats) and the
  agreement flags (the model's argmax given the teacher's prefix = the teacher's token). The original
  0.5B's row may be computed while the student trains (no setting depends on it).
- Numbers (``compare``): A3 = draft acceptance of lhama's speculative decoding with 3 proposals per step
  over the first 48 tokens (``distill.simulated_acceptance``, sessions 3-5's measure), A1 = the same with
  1 proposal (``--draft``'s default DRAFT_TOKENS), top-1 agreement over all answer tokens, held-out
  perplexity; each distilled - original with a paired bootstrap over prompts (10,000 draws, seed 0).
- Verdict: "distillation raised the draft's acceptance" iff A3 rises and the 95 % interval of its
  difference lies above 0; "fell" iff the interval lies below 0; else "no change shown". The issue's
  perplexity requirement: the distilled 0.5B beats the original iff the perplexity ratio's interval < 1.
  Reported whichever way it goes.

    python benchmarks/distill_s15.py check
    /work/team/heavy -- python3 benchmarks/distill_s15.py answer --teacher DIR --out /tmp/30a/s15/answers
    python benchmarks/distill_s15.py measure --model DIR --name NAME --heldout H.jsonl --results R.json
    python benchmarks/distill_s15.py compare --results R.json --before "0.5B" --after "0.5B distilled s15"
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
import unicodedata
import zlib
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
PROMPTS = DATA / "distill_s15_prompts.txt"
ROOT = Path(__file__).resolve().parents[1]
PLAN = "int4-g32-grid-k+lossy6"  # lhama-default's chat quant (int8 lossy layers on AVX2)
HELD_SHARE = 30  # percent held out, by crc32 of the prompt text
BUDGET, DRAWS = 48, 10_000
COMMITTED = [ROOT / "benchmarks" / "data", ROOT / "data"]  # every committed text the prompts must not repeat


def prompts() -> list[dict]:
    """The prompts in file order: id, text, split ("heldout" or "train")."""
    lines = [line.strip() for line in PROMPTS.read_text(encoding="utf-8").splitlines()]
    texts = [line for line in lines if line and not line.startswith("#")]
    return [{"id": f"s15-{i:03d}", "prompt": text, "split": "heldout" if zlib.crc32(text.encode()) % 100 < HELD_SHARE
             else "train"} for i, text in enumerate(texts)]


def fold(text: str) -> str:
    """Lower case, accents and punctuation off, spaces folded: what 'the same text' means here."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
    return " ".join(re.findall(r"\w+", bare))


def committed_texts(skip: Path = PROMPTS) -> list[str]:
    """Every line of every committed text/JSON(L)/TSV file under COMMITTED (folded), ours excepted; in a JSON
    line, every string value."""
    found = []
    for root in COMMITTED:
        for path in sorted(root.rglob("*")):
            if path == skip or not path.is_file() or path.suffix not in (".txt", ".jsonl", ".tsv", ".json"):
                continue
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                found += [fold(s) for s in _strings(line) if len(fold(s).split()) >= 3]
    return found


def _strings(line: str) -> list[str]:
    try:
        value = json.loads(line)
    except ValueError:
        return line.split("\t")
    out, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
    return out


def near(a: str, b: str) -> bool:
    """Same folded text, one inside the other, or >= 70 % of the words shared (Jaccard)."""
    wa, wb = set(a.split()), set(b.split())
    inside = min(len(wa), len(wb)) >= 4 and (a in b or b in a)
    return a == b or inside or len(wa & wb) / max(len(wa | wb), 1) >= 0.7


def check() -> list[tuple[str, str]]:
    """(prompt, committed text) pairs that are the same or near; also repeats inside the file."""
    rows, seen = prompts(), committed_texts()
    folded = [fold(r["prompt"]) for r in rows]
    clashes = sorted({(r["prompt"], s) for r, f in zip(rows, folded) for s in seen if near(f, s)})
    clashes += [(rows[i]["prompt"], rows[j]["prompt"]) for i in range(len(rows)) for j in range(i) if near(folded[i], folded[j])]
    held = sum(r["split"] == "heldout" for r in rows)
    print(f"{len(rows)} prompts ({held} held out, {len(rows) - held} train) against {len(seen)} committed texts: "
          f"{len(clashes)} clashes")
    for pair in clashes:
        print("  CLASH:", pair)
    return clashes


def _mine(path: Path) -> Path:
    """Outputs go under /tmp/30a only (the team's rule for scripts that write)."""
    path = Path(path).resolve()
    if not str(path).startswith("/tmp/30a/"):
        raise SystemExit(f"refusing to write {path}: outputs go under /tmp/30a/")
    return path


def answer(teacher: str, out: Path, batch: int, max_new_tokens: int, probe: int) -> None:
    """The teacher's chat answers to every prompt, then train.jsonl / heldout.jsonl (system, request,
    answer) and answers.json (tokens, finish, seconds); ``probe``: time its logits on that many train records."""
    import torch
    from batched import answer_all

    from lhama.inference.quant_cache import is_cached, load_for_inference

    out = _mine(out)
    if not is_cached(teacher, PLAN):  # never quantise (and write) a shared model's cache from here
        raise SystemExit(f"{teacher} has no current {PLAN} cache; the lead prepares it")
    torch.set_num_threads(int(os.environ.get("LHAMA_THREADS", "1")))
    loaded = load_for_inference(teacher, PLAN)
    system, rows = loaded.generation.system_prompt, prompts()
    tic = time.perf_counter()
    done = answer_all(loaded, [[{"role": "system", "content": system}, {"role": "user", "content": r["prompt"]}] for r in rows],
                      max_new_tokens, batch)
    seconds = time.perf_counter() - tic
    out.mkdir(parents=True, exist_ok=True)
    items = [{**r, "answer": c.text.strip(), "tokens": len(c.token_ids), "finish": c.finish_reason} for r, c in zip(rows, done)]
    for split in ("train", "heldout"):
        chats = [_chat(i, system) for i in items if i["split"] == split and i["answer"]]
        (out / f"{split}.jsonl").write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chats), encoding="utf-8")
    meta = {"teacher": teacher, "plan": PLAN, "system_prompt": system, "max_new_tokens": max_new_tokens, "batch": batch,
            "threads": torch.get_num_threads(), "seconds": seconds, "tokens": sum(i["tokens"] for i in items),
            "at_limit": sum(i["finish"] == "length" for i in items), "items": items}
    if probe:
        meta["probe"] = _probe(loaded, out / "train.jsonl", probe)
    (out / "answers.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in meta.items() if k != "items"}, ensure_ascii=False))


def _chat(item: dict, system: str) -> dict:
    turns = [{"from": "system", "value": system}, {"from": "human", "value": item["prompt"]}, {"from": "gpt", "value": item["answer"]}]
    return {"id": item["id"], "conversations": turns}


def _probe(loaded, train: Path, count: int) -> dict:
    """Seconds per record and per token of the teacher's top-32 logits (train/logit_cache.teacher_topk)."""
    from lhama.data.collate import CollateConfig, Collator
    from lhama.data.dataset import DatasetConfig, load_samples
    from lhama.train.logit_cache import teacher_topk

    collator = Collator(loaded.tokenizer, loaded.expansions(), loaded.readers(), CollateConfig(max_length=384, system_prompt=""), "")
    items = [collator.encode(s) for s in load_samples(DatasetConfig(path=str(train))).samples[:count]]
    tic = time.perf_counter()
    for item in items:
        teacher_topk(loaded.model, collator([item]), 32)
    seconds = time.perf_counter() - tic
    tokens = sum(len(i.input_ids) for i in items)
    return {"records": len(items), "tokens": tokens, "seconds": seconds, "s_per_record": seconds / max(len(items), 1)}


def measure(model_dir: str, name: str, heldout: Path, results: Path) -> None:
    """Per held-out answer: loss sum, tokens, agreement flags (benchmarks/distill._scores); merged into ``results``."""
    import torch
    from distill import _scores

    from lhama.data.collate import CollateConfig, Collator
    from lhama.data.dataset import DatasetConfig, load_samples
    from lhama.model.build import load_model

    results = _mine(results)
    torch.set_num_threads(int(os.environ.get("LHAMA_THREADS", "1")))
    tic = time.perf_counter()
    loaded = load_model(model_dir)
    collator = Collator(loaded.tokenizer, {}, None, CollateConfig(max_length=512, system_prompt=""), "")
    samples = load_samples(DatasetConfig(path=str(heldout))).samples
    scores = _scores(loaded.model, collator, [collator.encode(s) for s in samples])
    row = {"name": name, "model": model_dir, "heldout": str(heldout), "texts": len(samples), "tokens": scores["tokens"],
           "ppl": float(torch.tensor(scores["loss"]).exp()), "top1": scores["top1"], "seconds": time.perf_counter() - tic,
           "per_text": [{"id": s.id, **item} for s, item in zip(samples, scores["items"], strict=True)]}
    rows = [r for r in (json.loads(results.read_text()) if results.is_file() else []) if r["name"] != name]
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(rows + [row], indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in row.items() if k != "per_text"}, ensure_ascii=False))


def stats(per_text: list[dict]) -> dict[str, tuple[float, float]]:
    """Per statistic, (numerator, denominator) sums over ``per_text``: a3, a1, top1, loss (nats per token)."""
    from distill import simulated_acceptance

    sums = {"a3": [0, 0], "a1": [0, 0], "top1": [0, 0], "loss": [0.0, 0]}
    for item in per_text:
        for key, k in (("a3", 3), ("a1", 1)):
            kept, proposed = simulated_acceptance(item["agree"], BUDGET, k)
            sums[key][0] += kept
            sums[key][1] += proposed
        flags = item["agree"][:-1]  # the last flag is the template's newline after the end token
        sums["top1"][0] += flags.count("1")
        sums["top1"][1] += len(flags)
        sums["loss"][0] += item["loss"]
        sums["loss"][1] += item["tokens"]
    return {k: (v[0], v[1]) for k, v in sums.items()}


def compare(results: Path, before: str, after: str) -> dict:
    """The rule's numbers and verdicts (module docstring): paired bootstrap over held-out prompts."""
    import math

    rows = {r["name"]: r for r in json.loads(Path(results).read_text())}
    per = {n: {i["id"]: stats([i]) for i in rows[n]["per_text"]} for n in (before, after)}
    ids = list(per[before])
    if set(ids) != set(per[after]):
        raise SystemExit(f"{before} and {after} were measured on different held-out answers")

    def value(name: str, pick: list[str], key: str) -> float:
        num, den = sum(per[name][i][key][0] for i in pick), sum(per[name][i][key][1] for i in pick)
        return math.exp(num / den) if key == "loss" else num / den

    rng, draws = random.Random(0), {k: [] for k in ("a3", "a1", "top1", "loss")}
    for _ in range(DRAWS):
        pick = [rng.choice(ids) for _ in ids]
        for key in draws:
            a, b = value(before, pick, key), value(after, pick, key)
            draws[key].append(b / a if key == "loss" else b - a)
    out = {"before": before, "after": after, "prompts": len(ids), "budget": BUDGET}
    for key, values in draws.items():
        values.sort()
        low, high = values[DRAWS // 40], values[-DRAWS // 40 - 1]
        out[key] = {"before": value(before, ids, key), "after": value(after, ids, key), "ci95": [low, high],
                    "measure": "perplexity ratio after/before" if key == "loss" else "difference after - before"}
    a3 = out["a3"]["ci95"]
    out["verdict_acceptance"] = "raised" if a3[0] > 0 else "fell" if a3[1] < 0 else "no change shown"
    out["verdict_ppl"] = "distilled beats original" if out["loss"]["ci95"][1] < 1 else "not shown"
    print(json.dumps(out, indent=1))
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("check")
    sub.add_parser("split")
    ans = sub.add_parser("answer")
    ans.add_argument("--teacher", required=True, help="lhama-default's directory (with its current quant cache)")
    ans.add_argument("--out", type=Path, required=True)
    ans.add_argument("--batch", type=int, default=16)
    ans.add_argument("--max-new-tokens", type=int, default=128)
    ans.add_argument("--probe", type=int, default=3, help="time the teacher's logits on this many train records")
    mea = sub.add_parser("measure")
    mea.add_argument("--model", required=True)
    mea.add_argument("--name", required=True)
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
    elif args.step == "split":
        for row in prompts():
            print(f"{row['id']}\t{row['split']}\t{row['prompt']}")
    elif args.step == "answer":
        answer(args.teacher, args.out, args.batch, args.max_new_tokens, args.probe)
    elif args.step == "measure":
        measure(args.model, args.name, args.heldout, args.results)
    else:
        found = compare(args.results, args.before, args.after)
        if args.out:
            args.out.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
