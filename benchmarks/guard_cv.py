"""Out-of-fold quality of a head setting on the TRAINING split only (the test split is not read).

    python benchmarks/guard_cv.py                              # shipped FitConfig, 5 folds, seed 0
    python benchmarks/guard_cv.py --lookalike-weight 3 --seeds 3   # another setting, 3 fold seeds

Every training row is scored by a head that never saw it; the threshold is tuned on those scores
as ``fit_head`` does, and precision / recall / F1 / look-alike FPR are reported on the pt-BR rows.
This is how settings are compared (docs/guard.md), never by the test split.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from lhama.guard.classifier import features
from lhama.guard.dataset import read_examples
from lhama.guard.fit import FitConfig, out_of_fold, targets, tune_threshold
from lhama.guard.metrics import binary_scores
from lhama.guard.verdict import CODES

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=ROOT / "data" / "guard" / "train.jsonl")
    parser.add_argument("--weight-decay", type=float, default=FitConfig.weight_decay)
    parser.add_argument("--lookalike-weight", type=float, default=FitConfig.lookalike_weight)
    parser.add_argument("--category-mix", type=float, default=FitConfig.category_mix)
    parser.add_argument("--max-lookalike-fpr", type=float, default=FitConfig.max_lookalike_fpr)
    parser.add_argument("--seeds", type=int, default=1, help="fold shuffles to average over")
    args = parser.parse_args()
    torch.set_num_threads(1)
    examples = read_examples(args.train)
    base = FitConfig(weight_decay=args.weight_decay, lookalike_weight=args.lookalike_weight,
                     max_lookalike_fpr=args.max_lookalike_fpr, category_mix=args.category_mix)
    x = features([e.text for e in examples], base.hash_dim, 0.0, None)
    y = targets(examples)
    weights = np.array([base.lookalike_weight if e.lookalike else 1.0 for e in examples])
    pt = np.array([e.lang == "pt" for e in examples])
    truth = np.array([e.unsafe for e in examples])
    look = np.array([e.lookalike for e in examples])
    start, rows, flagged = time.perf_counter(), [], []
    for seed in range(args.seeds):
        scores = out_of_fold(x, y, replace(base, seed=seed), weights)
        t = tune_threshold(scores, examples, base.max_lookalike_fpr)
        pred = scores >= t
        s = binary_scores(truth[pt], pred[pt])
        rows.append((t, s.precision, s.recall, s.f1, pred[pt & look].mean()))
        flagged.append(pred)
    print(f"{len(examples)} train items ({pt.sum()} pt-BR), {args.seeds} fold seed(s), "
          f"{time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.1f}")
    print("| threshold | precision | recall | F1 | FPR (look-alikes) |\n|---|---|---|---|---|")
    print("| " + " | ".join(f"{v:.3f}" for v in np.mean(rows, axis=0)) + " |")
    _per_category(examples, pt, np.mean(flagged, axis=0))


def _per_category(examples: list, pt: np.ndarray, flagged: np.ndarray) -> None:
    print("\n| category | pt-BR items | out-of-fold recall (flagged) |\n|---|---|---|")
    for code in CODES:
        idx = [i for i, e in enumerate(examples) if pt[i] and code in e.categories]
        print(f"| {code} | {len(idx)} | {flagged[idx].mean():.2f} |")


if __name__ == "__main__":
    main()
