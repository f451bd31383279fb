"""Choosing the input head's category floor out-of-fold (issue #29: everyday prompts flagged).

    python benchmarks/guard_floor.py --first 2561                 # the shipped input head's data
    python benchmarks/guard_floor.py --apply src/lhama/guard/assets/guard_head.safetensors   # write it

Why a floor: on the dev requests (benchmarks/guard_dev.py) the everyday prompts the input head
flags ("Me dá uma ideia de lanche rápido…", "Me diz qual é o maior oceano…") score high on the
general "unsafe" output (0.75–0.92) while no category output exceeds 0.25 — the head has learned
the request form ("Me dá", "Me diz"), not a harm. A message is then flagged only when its unsafe
score reaches the threshold *and* its most likely category reaches the floor.

The first ``--first`` training rows (the input head's data) are scored by heads that never saw
them (5 folds, the shipped FitConfig), and each floor is reported at the head's threshold on the
pt-BR rows. Rule, fixed before this ran: the largest floor whose out-of-fold pt-BR recall stays
within 0.01 of the recall without a floor. The test split is not read.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from lhama.guard.classifier import Head, features, unsafe_score
from lhama.guard.dataset import read_examples
from lhama.guard.fit import FitConfig, fit_dual, gram_matrix, loss_weights, targets
from lhama.guard.metrics import binary_scores

ROOT = Path(__file__).resolve().parents[1]


def oof_probs(x: np.ndarray, y: np.ndarray, cfg: FitConfig, weights: np.ndarray,
              gram: np.ndarray | None = None) -> np.ndarray:
    """(N, 15) probabilities of every row from a head trained on the other folds (``gram``: x's
    Gram matrix when the caller has it already)."""
    gram = gram_matrix(x) if gram is None else gram
    order = np.random.default_rng(cfg.seed).permutation(len(x))
    probs = np.zeros(y.shape, dtype=np.float32)
    for fold in np.array_split(order, cfg.folds):
        keep = np.setdiff1d(order, fold)
        a, b = fit_dual(gram[np.ix_(keep, keep)], y[keep], cfg, weights[keep])
        probs[fold] = 1.0 / (1.0 + np.exp(-(gram[np.ix_(fold, keep)] @ a + b)))
    return probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=ROOT / "data/guard/train.jsonl")
    parser.add_argument("--first", type=int, default=2561, help="rows the input head was trained on")
    parser.add_argument("--threshold", type=float, default=0.34, help="the input head's threshold")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/guard_oof_probs.npy"))
    parser.add_argument("--apply", type=Path, default=None, help="head file to give the chosen floor")
    args = parser.parse_args()
    torch.set_num_threads(1)
    examples = read_examples(args.train)[: args.first]
    cfg = FitConfig()
    start = time.perf_counter()
    if args.cache.is_file():
        probs = np.load(args.cache)
    else:
        x = features([e.text for e in examples], cfg.hash_dim, 0.0, None)
        probs = oof_probs(x, targets(examples), cfg, loss_weights(examples, cfg))
        np.save(args.cache, probs)
    print(f"{len(examples)} rows out of fold in {time.perf_counter() - start:.0f} s")
    pt = np.array([e.lang == "pt" for e in examples])
    truth = np.array([e.unsafe for e in examples])[pt]
    look = np.array([e.lookalike for e in examples])[pt]
    score = unsafe_score(probs, cfg.category_mix)[pt]
    top = probs[pt, 1:].max(axis=1)
    base, chosen = None, 0.0
    print("| floor | precision | recall | F1 | look-alikes flagged |\n|---|---|---|---|---|")
    for floor in np.round(np.arange(0.0, 0.31, 0.02), 2):
        pred = (score >= args.threshold) & (top >= floor)
        s = binary_scores(truth, pred)
        base = s.recall if base is None else base
        if s.recall >= base - 0.01:
            chosen = float(floor)
        print(f"| {floor:.2f} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {pred[look].mean():.3f} |")
    print(f"\nchosen floor (largest within 0.01 of the recall without one): {chosen:.2f}")
    if args.apply:
        head = Head.load(args.apply)
        replace(head, category_floor=chosen).save(args.apply)
        print(f"wrote {args.apply} with category_floor {chosen:.2f} (weights and thresholds unchanged)")


if __name__ == "__main__":
    main()
