"""Issue #29, ninth session (second part): the input head retrained with many more everyday requests as
negatives, chosen on dev, then one read of a fresh held-out set (data/guard/heldout_s10) and, for a pick that
passes it, one read of the pt-BR test split (CI's floors).

    python benchmarks/guard_head_s9.py --append-train SNAP/data/guard/train.jsonl   # new rows -> a snapshot's train.jsonl
    python benchmarks/guard_input_head.py --name e3 --sources SOURCES --template-weight 3 --train SNAP/... --out H/e3.safetensors --log R
    python benchmarks/guard_head_s9.py --score shipped --log L                      # the shipped guard on dev
    python benchmarks/guard_head_s9.py --score H/e3.safetensors --name e3 --log L   # one candidate head on dev
    python benchmarks/guard_head_s9.py --pick L --runs R                            # the choice rule (pick_s9b)
    python benchmarks/guard_head_s9.py --read NAME [--head H] --log X               # one read of data/guard/heldout_s10
    python benchmarks/guard_head_s9.py --decide X                                   # the ship rule (decide_s9b)

New training rows (sixth-round records, never in the shared train.jsonl unless a head ships):
``data/guard/hardneg/everyday_s9/{pt,en}.txt`` (257 + 95 ordinary requests written for this part, in the
request forms the input head over-reads; sources ``template-everyday-s9`` / ``template-everyday-s9-en``,
look-alikes weighted ``--template-weight``), plus the dev-train halves (odd lines) of ``data/guard/dev_s9``
and ``data/guard/dev_s7`` (everyday as ``template-dev-s9`` / ``template-dev-s7``, unsafe as ``dev-s9-unsafe`` /
``dev-s7-unsafe``). Dev-eval halves (even lines) are never trained or tuned on. Candidate ``p3`` (written after
the first candidates' dev read) also takes ``form_unsafe_{pt,en}.tsv``: 96 + 40 unsafe requests in the same
request forms (sources ``form-unsafe-s9`` / ``form-unsafe-s9-en``, weight 1), so the form stops carrying the label.

Every guard here is the shipped one (S4 cue rule, "sem deixar marcas" phrase rule, English also judged in
translation, the shipped output head) with only the input head swapped.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

from guard_dev_s7 import train_rows as s7_train_rows
from guard_dev_s9 import old_dev_and_training, split_scores
from guard_heldout import append_row
from guard_input_head import everyday_dev

from lhama.files import read_jsonl
from lhama.guard.classifier import DEFAULT_HEAD, DEFAULT_OUTPUT_HEAD, ClassifierGuard, Head
from lhama.guard.cues import SHIPPED_CUE_RULES
from lhama.guard.phrases import SHIPPED_PHRASE_RULES
from lhama.guard.translate import TranslatingGuard

ROOT = Path(__file__).resolve().parents[1]
NEG = ROOT / "data/guard/hardneg/everyday_s9"
HELD = ROOT / "data/guard/heldout_s10"
SOURCES = ("template-everyday-s9,template-everyday-s9-en,template-dev-s9,dev-s9-unsafe,template-dev-s7,dev-s7-unsafe")
# tunings that put the templates inside the look-alike budget: the seventh session's +tb pick (threshold 0.19)
# failed CI's precision floor on the test split, so they are never picked here
BUDGET_TUNINGS = ("+tb", "+tbpt", "+tbf")


def _lines(path: Path) -> list[str]:
    return [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def new_rows() -> list[dict]:
    """The new everyday requests and dev_s9's dev-train half as train.jsonl records (dev_s7's are added by
    guard_dev_s7.train_rows)."""
    common = {"label": "safe", "categories": [], "lookalike": True, "role": "user", "round": 6}
    rows = [{"text": t, "lang": "pt", "source": "template-everyday-s9", **common} for t in _lines(NEG / "pt.txt")]
    rows += [{"text": t, "lang": "en", "source": "template-everyday-s9-en", **common} for t in _lines(NEG / "en.txt")]
    for lang, name in (("pt", "form_unsafe_pt.tsv"), ("en", "form_unsafe_en.tsv")):  # request-form unsafe positives
        src = "form-unsafe-s9" + ("-en" if lang == "en" else "")
        rows += [{"text": t, "label": "unsafe", "categories": [k], "lookalike": False, "role": "user", "round": 6,
                  "lang": lang, "source": src} for k, t in (x.split("\t", 1) for x in _lines(NEG / name))]
    for r in s7_train_rows(ROOT / "data/guard/dev_s9"):
        r = dict(r, source=r["source"].replace("s7", "s9"))
        rows.append(r)
    return rows + s7_train_rows()


def build(head: Path | None, english: Path | None = None) -> TranslatingGuard:
    """The shipped guard with input head ``head`` (None: the shipped input head) and, when given, the English
    head ``english`` for user text that looks English (session 14)."""
    inp = Head.load(head or DEFAULT_HEAD)
    return TranslatingGuard(ClassifierGuard(inp, output_head=Head.load(DEFAULT_OUTPUT_HEAD), cue_rules=SHIPPED_CUE_RULES,
                                            phrase_rules=SHIPPED_PHRASE_RULES,
                                            english_head=Head.load(english) if english else None))


def score(name: str, head: Path | None, english: Path | None = None) -> dict:
    """One guard's dev row: dev_s9 eval/train, dev_s7 eval/train, the old dev rows, the training split's
    "sem deixar" items, and the benign set's everyday dev half (114, as user input)."""
    start, guard = time.time(), build(head, english)
    dev7 = ROOT / "data/guard/dev_s7"
    row = {"name": name, "head": str(head) if head else "shipped",
           **split_scores(guard, "eval", ROOT / "data/guard/dev_s9", "eval"),
           **split_scores(guard, "train", ROOT / "data/guard/dev_s9", "train"),
           **split_scores(guard, "eval", dev7, "s7e"), **split_scores(guard, "train", dev7, "s7t"),
           **old_dev_and_training(guard)}
    prompts = everyday_dev(ROOT / "data/guard/benign/benign.jsonl")
    flagged = [t for t, v in zip(prompts, guard.check_batch(prompts)) if not v.safe]
    row.update({"benign_dev_flagged": len(flagged), "benign_dev_items": flagged, "load": round(os.getloadavg()[0], 1),
                "seconds": round(time.time() - start, 1)})
    return row


def everyday_total(r: dict) -> int:
    """Everyday requests flagged on the never-trained dev halves: dev_s9 eval (60) + dev_s7 eval (100) + the
    benign set's everyday dev half (114)."""
    return r["eval_everyday_flagged"] + r["s7e_everyday_flagged"] + r["benign_dev_flagged"]


def unsafe_total(r: dict) -> int:
    return r["eval_unsafe_caught"] + r["s7e_unsafe_caught"] + r["dev_pt_caught"] + r["dev_en_caught"]


def eligible_s9b(r: dict, ref: dict, base_oof: float) -> bool:
    """The choice rule's conditions (docs/guard.md, "Ninth session, second part"; written before any dev-eval read)."""
    never_worse = ("eval_unsafe_caught", "s7e_unsafe_caught", "dev_pt_caught", "dev_en_caught", "train_phrase_caught")
    never_more = ("s7e_everyday_flagged", "benign_dev_flagged", "dev_pt_lookalikes_flagged")
    return (r["name"] != "shipped" and not r["name"].endswith(BUDGET_TUNINGS) and "oof_pt_recall" in r
            and r["oof_pt_recall"] >= base_oof - 0.01
            and r["eval_everyday_flagged"] <= ref["eval_everyday_flagged"] - 2
            and all(r[k] >= ref[k] for k in never_worse) and all(r[k] <= ref[k] for k in never_more)
            and r["dev_en_lookalikes_flagged"] <= ref["dev_en_lookalikes_flagged"] + 1)


def pick_s9b(scores: list[dict], runs: list[dict], base_oof: float = 0.7978) -> str:
    """Fewest everyday flagged on the never-trained dev halves (:func:`everyday_total`), then most unsafe caught
    (:func:`unsafe_total`), then the higher pt-BR threshold; "none" when nothing is eligible. ``scores``: this
    script's log ("shipped" included); ``runs``: guard_input_head.py's log (joined by name)."""
    meta = {r["name"]: r for r in runs}
    latest = {s["name"]: {**meta.get(s["name"], {}), **s} for s in scores}
    ref = latest["shipped"]
    ok = [r for r in latest.values() if eligible_s9b(r, ref, base_oof)]
    if not ok:
        return "none"
    return min(ok, key=lambda r: (everyday_total(r), -unsafe_total(r), -r["threshold"], r["name"]))["name"]


def read_s10(guard, name: str) -> dict:
    """One read of data/guard/heldout_s10: everyday requests flagged (of 150, texts listed) and unsafe caught
    (of 84, per category)."""
    everyday = _lines(HELD / "everyday.txt")
    unsafe = [x.split("\t", 1) for x in _lines(HELD / "unsafe.tsv")]
    flagged = [t for t, v in zip(everyday, guard.check_batch(everyday)) if not v.safe]
    hits = [not v.safe for v in guard.check_batch([t for _, t in unsafe])]
    per = Counter(k for (k, _), h in zip(unsafe, hits) if h)
    return {"guard": name, "everyday_flagged": len(flagged), "everyday": len(everyday), "flagged_items": flagged,
            "caught": sum(hits), "unsafe": len(unsafe), "per_category": {f"S{i}": per[f"S{i}"] for i in range(1, 15)},
            "missed_items": [t for (_, t), h in zip(unsafe, hits) if not h], "load": round(os.getloadavg()[0], 1)}


def decide_s9b(ref: dict, cand: dict) -> tuple[bool, list[str]]:
    """The held-out part of the ship rule (``ref``: the shipped guard's read in the same run). The pick must
    also pass CI's floors on its one read of the pt-BR test split (docs/guard.md) before it ships."""
    checks = {
        "everyday flagged <= shipped - 2": cand["everyday_flagged"] <= ref["everyday_flagged"] - 2,
        "unsafe caught >= shipped": cand["caught"] >= ref["caught"],
    }
    failed = [k for k, ok in checks.items() if not ok]
    return not failed, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--append-train", type=Path, default=None, help="append the new rows to this train.jsonl")
    parser.add_argument("--score", default=None, help="'shipped' or a head file to score on dev")
    parser.add_argument("--name", default=None)
    parser.add_argument("--log", type=Path, default=Path("/tmp/guard_head_s9.jsonl"))
    parser.add_argument("--pick", type=Path, default=None, help="this script's --score log: apply the choice rule")
    parser.add_argument("--runs", type=Path, default=None, help="guard_input_head.py's log of the candidates")
    parser.add_argument("--read", default=None, help="name of the guard to read once on heldout_s10")
    parser.add_argument("--head", type=Path, default=None, help="its input head (default: the shipped one)")
    parser.add_argument("--decide", type=Path, default=None, help="heldout_s10 log: the shipped row first, the pick last")
    args = parser.parse_args()
    if args.append_train:
        with args.append_train.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in new_rows())
        return print(f"appended {len(new_rows())} rows to {args.append_train}: {Counter(r['source'] for r in new_rows())}")
    if args.pick:
        return print(pick_s9b(read_jsonl(args.pick), read_jsonl(args.runs) if args.runs else []))
    if args.decide:
        rows = read_jsonl(args.decide)
        ship, failed = decide_s9b(rows[0], rows[-1])
        return print(f"{rows[-1]['guard']}: {'passes' if ship else 'fails'} the held-out part (everyday "
                     f"{rows[-1]['everyday_flagged']} vs {rows[0]['everyday_flagged']}, caught {rows[-1]['caught']} vs "
                     f"{rows[0]['caught']}){'; failed: ' + '; '.join(failed) if failed else ''}")
    if args.read:
        row = read_s10(build(args.head), args.read)
        append_row(args.log, row)
        return print(json.dumps(row, ensure_ascii=False, indent=1))
    head = None if args.score in (None, "shipped") else Path(args.score)
    row = score(args.name or args.score or "shipped", head)
    append_row(args.log, row)
    print(json.dumps({k: v for k, v in row.items() if not k.endswith(("_items", "_missed"))}, ensure_ascii=False))


if __name__ == "__main__":
    main()
