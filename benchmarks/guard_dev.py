"""Issue #29's dev split: decide English handling and the second stage without the test split.

    python benchmarks/guard_dev.py                                  # first stage: original / translated / union
    python benchmarks/guard_dev.py --judge llama-guard:DIR,int4 --threads 1   # + the judge on flagged items

The dev items are the fifth round's user requests in ``train.jsonl`` (``"round": 5``, role user:
67 pt-BR unsafe, 67 pt-BR everyday look-alikes, 104 English unsafe, 76 English look-alikes). The
shipped *input* head is the fourth-round head, trained on the first 2561 lines only, so it never
saw them; the judge was never trained on any of this data. English items are judged as written
(with the head's threshold), as their Bergamot pt-BR translation, and as the union
(:class:`lhama.guard.translate.TranslatingGuard`). With ``--judge``, the judge re-checks every
item the union flags (what :class:`lhama.guard.cascade.CascadeGuard` would do), and its answers
and seconds per item are written to ``--out`` (resumable: items already there are not re-run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from lhama.guard import load_guard
from lhama.guard.metrics import binary_scores
from lhama.guard.translate import bergamot_en_pt

ROOT = Path(__file__).resolve().parents[1]


def dev_rows(train: Path) -> list[dict]:
    rows = [json.loads(line) for line in train.open(encoding="utf-8") if line.strip()]
    return [r for r in rows if r.get("round") == 5 and r.get("role") == "user"]


def row(name: str, truth: np.ndarray, pred: np.ndarray, look: np.ndarray) -> str:
    s = binary_scores(truth, pred)
    return (f"| {name} | {len(truth)} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | "
            f"{pred[look].mean():.3f} ({pred[look].sum()} of {look.sum()}) |")


def first_stage(rows: list[dict], spec: str | None) -> dict[str, np.ndarray]:
    """Flags of the classifier on the text as written and on its translation (English only)."""
    guard = load_guard(spec)
    texts = [r["text"] for r in rows]
    orig = np.array([not v.safe for v in guard.check_batch(texts)])
    english = [i for i, r in enumerate(rows) if r["lang"] == "en"]
    translated = bergamot_en_pt()([texts[i] for i in english])
    trans = orig.copy()
    for i, t, v in zip(english, translated, guard.check_batch(translated)):
        trans[i], rows[i]["translation"] = not v.safe, t
    return {"original": orig, "translated": trans, "union": orig | trans}


def judge_flags(rows: list[dict], flagged: np.ndarray, spec: str, out: Path) -> np.ndarray:
    """The judge's verdict on every flagged row (cached in ``out``); unflagged rows stay safe."""
    done = {}
    if out.is_file():
        done = {d["text"]: d for d in map(json.loads, out.open(encoding="utf-8"))}
    judge = None
    with out.open("a", encoding="utf-8") as f:
        for i in np.flatnonzero(flagged):
            text = rows[i]["text"]
            if text in done:
                continue
            judge = judge or load_guard(spec)
            start = time.perf_counter()
            v = judge.check(text)
            done[text] = {"text": text, "unsafe": not v.safe, "categories": list(v.categories),
                          "seconds": round(time.perf_counter() - start, 2)}
            f.write(json.dumps(done[text], ensure_ascii=False) + "\n")
            f.flush()
    secs = [done[rows[i]["text"]]["seconds"] for i in np.flatnonzero(flagged)]
    print(f"\njudge: {len(secs)} flagged items, {np.mean(secs):.2f} s per item (median {np.median(secs):.2f})")
    return np.array([bool(flagged[i]) and done[r["text"]]["unsafe"] for i, r in enumerate(rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guard", default="classifier", help="first-stage spec (default: the shipped heads alone; "
                        "the script itself forms the union with the translation)")
    parser.add_argument("--judge", default=None, help="second-stage spec, e.g. llama-guard:DIR,int4")
    parser.add_argument("--train", type=Path, default=ROOT / "data/guard/train.jsonl")
    parser.add_argument("--out", type=Path, default=Path("/tmp/guard_dev_judge.jsonl"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the judge")
    parser.add_argument("--show", action="store_true", help="print flagged look-alikes and missed unsafe items")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows = dev_rows(args.train)
    flags = first_stage(rows, args.guard)
    if args.judge:
        flags["union + judge"] = judge_flags(rows, flags["union"], args.judge, args.out)
    truth = np.array([r["label"] == "unsafe" for r in rows])
    look = np.array([bool(r.get("lookalike")) for r in rows])
    print("| dev | items | precision | recall | F1 | look-alikes flagged |\n|---|---|---|---|---|---|")
    for lang in ("pt", "en"):
        m = np.array([r["lang"] == lang for r in rows])
        for name, pred in flags.items():
            if lang == "en" or name in ("original", "union + judge"):
                print(row(f"{lang} {name}", truth[m], pred[m], look[m]))
    if args.show:
        last = flags[list(flags)[-1]]
        for r, p, t in zip(rows, last, truth):
            if p != t:
                print(f"  {'FP' if p else 'FN'} [{r['lang']}] {r['categories']}: {r['text']} -> {r.get('translation', '')}")


if __name__ == "__main__":
    main()
