"""Measure a guard on the held-out pt-BR test split (data/guard/test.jsonl) and print the table.

    python benchmarks/guard_eval.py                          # default shipped classifier, pt-BR
    python benchmarks/guard_eval.py --lang en                # the English items
    python benchmarks/guard_eval.py --guard llama-guard:/models/Llama-Guard-3-1B
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lhama.guard import load_guard
from lhama.guard.dataset import read_examples
from lhama.guard.evaluate import evaluate
from lhama.guard.verdict import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", type=Path, default=ROOT / "data" / "guard" / "test.jsonl")
    parser.add_argument("--lang", default="pt", help="pt, en, or all")
    parser.add_argument("--guard", default=None, help="guard spec (default: shipped classifier)")
    args = parser.parse_args()
    examples = read_examples(args.test, None if args.lang == "all" else args.lang)
    r = evaluate(load_guard(args.guard), examples)
    o = r.overall
    print(f"items {r.n} (unsafe {o.support}, look-alikes {r.lookalikes}); load {os.getloadavg()[0]:.1f}")
    print("| precision | recall | F1 | FPR (all safe) | FPR (look-alikes) | ms / message |")
    print("|---|---|---|---|---|---|")
    print(f"| {o.precision:.3f} | {o.recall:.3f} | {o.f1:.3f} | {o.fpr:.3f} | {r.lookalike_fpr:.3f} | {r.ms_per_message:.1f} |")
    print("\n| category | items | recall (flagged) | recall (right category) |")
    print("|---|---|---|---|")
    for c in r.categories:
        print(f"| {c.code} {CATEGORIES[c.code][0]} | {c.support} | {c.flagged:.2f} | {c.named:.2f} |")


if __name__ == "__main__":
    main()
