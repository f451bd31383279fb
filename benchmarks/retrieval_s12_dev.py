"""Where 5-way retrieval fails, issue #26 session 12 (dev only): scoring rules, categories, caption length.

    lhama eval retrieval --data DATA [--split S] --scoring logprob --cache IMAGE.jsonl     # or any pmi run's cache
    lhama eval retrieval --data DATA [--split S] --no-image --cache PRIOR.jsonl           # only if IMAGE has no prior
    python benchmarks/retrieval_s12_dev.py --data DATA --image IMAGE.jsonl [--prior PRIOR.jsonl] --out OUT.json

Reads two ``lhama eval retrieval`` prediction caches of the same trials (with the picture; without
it, the caption-only prior: a pmi run's cache holds both) and prints top-1 for each scoring rule:

* ``logprob``: the summed log-probability of the caption (eval retrieval before session 12);
* ``mean``: the same per caption token (length-normalised);
* ``pmi``: log-probability with the picture minus without it (pointwise mutual information);
* ``prior``: without the picture (the LM alone; chance 0.2).

then top-1 per category (letters/digits/signs that the glyph reader reads, sign-language hands, and
each top-level Tux Paint folder), and the length bias: how often each rule picks the shortest
candidate, against how often the own caption is the shortest.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

RULES = ("logprob", "mean", "pmi", "prior")


def read_cache(path: Path) -> dict[str, dict]:
    records = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "item" in record:
            records[record["item"]] = record  # a later line replaces an earlier one, as the cache reads
    return records


def kind(file: str, category: str) -> str:
    """``glyph`` (a letter, digit or sign the glyph reader reads), ``sign_language``, or the top folder."""
    if "alphabets/asl" in category:
        return "sign_language"
    if "alphabets" in category or "math" in category:
        return "glyph"
    return category.split("/")[0]


def values(rule: str, scores: list[float], prior: list[float], lengths: list[int]) -> list[float]:
    if rule == "logprob":
        return scores
    if rule == "mean":
        return [s / n for s, n in zip(scores, lengths)]
    if rule == "pmi":
        return [s - p for s, p in zip(scores, prior)]
    return prior


def analyse(rows: list[dict]) -> dict:
    """rows: file, kind, answer, scores, prior, lengths -> top-1 per rule, per kind, length bias."""
    out = {"n": len(rows), "top1": {}, "by_kind": defaultdict(lambda: {"n": 0}), "picks_shortest": {}}
    shortest_own = sum(r["lengths"][r["answer"]] == min(r["lengths"]) for r in rows)
    for rule in RULES:
        picks = [max(range(len(r["scores"])), key=values(rule, r["scores"], r["prior"], r["lengths"]).__getitem__) for r in rows]
        out["top1"][rule] = round(sum(p == r["answer"] for p, r in zip(picks, rows)) / max(len(rows), 1), 4)
        out["picks_shortest"][rule] = sum(r["lengths"][p] == min(r["lengths"]) for p, r in zip(picks, rows))
        for p, r in zip(picks, rows):
            out["by_kind"][r["kind"]][rule] = out["by_kind"][r["kind"]].get(rule, 0) + (p == r["answer"])
    for r in rows:
        out["by_kind"][r["kind"]]["n"] += 1
    out["picks_shortest"]["own caption"] = shortest_own
    out["by_kind"] = dict(sorted(out["by_kind"].items(), key=lambda kv: -kv[1]["n"]))
    return out


def load_rows(data: Path, image: Path, prior: Path | None, tokenizer) -> list[dict]:
    with (data / "captions.tsv").open(encoding="utf-8", newline="") as handle:
        captions = {r["file"]: r for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)}
    seen, without = read_cache(image), read_cache(prior) if prior else {}
    rows = []
    for file, record in seen.items():
        candidates = record["candidates"]
        prior_scores = record.get("prior") or without[file]["scores"]
        if prior and without[file]["candidates"] != candidates:
            raise SystemExit(f"error: {file}: the two caches hold other trials (seed, split or data differ)")
        row = captions[file]
        rows.append({"file": file, "kind": kind(file, row.get("category", "")),
                     "answer": candidates.index(row["pt_BR"].strip()), "scores": record["scores"],
                     "prior": prior_scores, "lengths": [len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in candidates]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--prior", type=Path)
    parser.add_argument("--tokenizer", default=str(Path.home() / ".cache/lhama/models/lhama-default"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    out = analyse(load_rows(args.data, args.image, args.prior, AutoTokenizer.from_pretrained(args.tokenizer)))
    out["inputs"] = {"data": str(args.data), "image": str(args.image), "prior": str(args.prior)}
    print(f"n={out['n']}  " + "  ".join(f"{k} {v:.3f}" for k, v in out["top1"].items()))
    print("picks the shortest candidate:", out["picks_shortest"])
    print(f"{'kind':15s} {'n':>3s} " + " ".join(f"{r:>7s}" for r in RULES))
    for name, row in out["by_kind"].items():
        print(f"{name:15s} {row['n']:3d} " + " ".join(f"{row.get(r, 0):7d}" for r in RULES))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
