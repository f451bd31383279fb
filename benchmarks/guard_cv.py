"""Out-of-fold quality of a head setting on the TRAINING split only (the test split is not read).

    python benchmarks/guard_cv.py                              # shipped FitConfig, 5 folds, seed 0
    python benchmarks/guard_cv.py --lookalike-weight 3 --seeds 3   # another setting, 3 fold seeds
    python benchmarks/guard_cv.py --score-first 2063 --seeds 3     # judge new data on the old rows only

Every training row is scored by a head that never saw it; the threshold is tuned on those scores
as ``fit_head`` does, and precision / recall / F1 / look-alike FPR are reported on the pt-BR rows.
With ``--score-first N`` only the first N rows are scored (and tuned on); the later rows sit in
every training fold, so a batch of new data is judged on the same items as before it was added.
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

from lhama.guard.classifier import features, unsafe_score
from lhama.guard.dataset import read_examples
from lhama.guard.fit import FitConfig, fit_dual, gram_matrix, loss_weights, out_of_fold, targets, tune_thresholds
from lhama.guard.language import looks_english
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
    parser.add_argument("--max-benign-fpr", type=float, default=FitConfig.max_benign_fpr)
    parser.add_argument("--benign-weight", type=float, default=FitConfig.benign_weight)
    parser.add_argument("--seeds", type=int, default=1, help="fold shuffles to average over")
    parser.add_argument("--score-first", type=int, default=0,
                        help="score only the first N rows; later rows are always trained on (0: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    examples = read_examples(args.train)
    first = args.score_first or len(examples)
    base = FitConfig(weight_decay=args.weight_decay, lookalike_weight=args.lookalike_weight,
                     max_lookalike_fpr=args.max_lookalike_fpr, category_mix=args.category_mix,
                     max_benign_fpr=args.max_benign_fpr, benign_weight=args.benign_weight)
    x = features([e.text for e in examples], base.hash_dim, 0.0, None)
    y = targets(examples)
    weights = loss_weights(examples, base)
    scored = examples[:first]
    pt = np.array([e.lang == "pt" for e in scored])
    truth = np.array([e.unsafe for e in scored])
    look = np.array([e.lookalike for e in scored])
    benign = ~truth & ~look
    en_like = np.array([looks_english(e.text) for e in scored])
    start, rows, flagged = time.perf_counter(), [], []
    for seed in range(args.seeds):
        cfg = replace(base, seed=seed)
        scores = out_of_fold(x, y, cfg, weights) if first == len(examples) else _oof_first(x, y, cfg, weights, first)
        t, t_en = tune_thresholds(scores, scored, base)
        pred = scores >= np.where(en_like, t if t_en is None else t_en, t)
        s = binary_scores(truth[pt], pred[pt])
        en = binary_scores(truth[~pt], pred[~pt]).f1 if (~pt).any() else 0.0
        rows.append((t, t if t_en is None else t_en, s.precision, s.recall, s.f1, pred[pt & look].mean(), pred[pt & benign].mean(), en))
        flagged.append(pred)
    print(f"{len(examples)} train items, {first} scored ({pt.sum()} pt-BR), {args.seeds} fold seed(s), "
          f"{time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.1f}")
    print("| threshold | threshold (English) | precision | recall | F1 | FPR (look-alikes) | FPR (other safe) | English F1 |\n|---|---|---|---|---|---|---|---|")
    print("| " + " | ".join(f"{v:.3f}" for v in np.mean(rows, axis=0)) + " |")
    _per_category(scored, pt, np.mean(flagged, axis=0))


def _oof_first(x: np.ndarray, y: np.ndarray, cfg: FitConfig, weights: np.ndarray, first: int) -> np.ndarray:
    """Out-of-fold unsafe scores of rows ``[0, first)``; rows from ``first`` on join every training fold."""
    gram = gram_matrix(x)  # (N, N)
    order = np.random.default_rng(cfg.seed).permutation(first)
    extra = np.arange(first, len(x))
    scores = np.zeros(first, dtype=np.float32)
    for fold in np.array_split(order, cfg.folds):
        keep = np.concatenate([np.setdiff1d(order, fold), extra])
        a, b = fit_dual(gram[np.ix_(keep, keep)], y[keep], cfg, weights[keep])
        probs = 1.0 / (1.0 + np.exp(-(gram[np.ix_(fold, keep)] @ a + b)))  # (len(fold), 15)
        scores[fold] = unsafe_score(probs, cfg.category_mix)
    return scores


def _per_category(examples: list, pt: np.ndarray, flagged: np.ndarray) -> None:
    print("\n| category | pt-BR items | out-of-fold recall (flagged) |\n|---|---|---|")
    for code in CODES:
        idx = [i for i, e in enumerate(examples) if pt[i] and code in e.categories]
        print(f"| {code} | {len(idx)} | {flagged[idx].mean():.2f} |")


if __name__ == "__main__":
    main()
