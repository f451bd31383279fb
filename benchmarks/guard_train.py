"""Train the classifier guard's head on data/guard/train.jsonl and write it into the package.

    python benchmarks/guard_train.py                       # writes src/lhama/guard/assets/guard_head.safetensors
    python benchmarks/guard_train.py --embed-scale 1.0 --out /tmp/head.safetensors   # with MiniLM features

The test split is never read here: the threshold is tuned on out-of-fold predictions of train.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lhama.guard.classifier import DEFAULT_HEAD
from lhama.guard.dataset import read_examples
from lhama.model.embeddings import SentenceEncoder
from lhama.guard.fit import FitConfig, fit_head

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=ROOT / "data" / "guard" / "train.jsonl")
    parser.add_argument("--out", type=Path, default=DEFAULT_HEAD)
    parser.add_argument("--embed-scale", type=float, default=FitConfig.embed_scale)
    parser.add_argument("--weight-decay", type=float, default=FitConfig.weight_decay)
    parser.add_argument("--max-lookalike-fpr", type=float, default=FitConfig.max_lookalike_fpr)
    parser.add_argument("--lookalike-weight", type=float, default=FitConfig.lookalike_weight)
    parser.add_argument("--category-mix", type=float, default=FitConfig.category_mix)
    parser.add_argument("--role", default=None, help="train only on the items of this role (user: the input head)")
    parser.add_argument("--max-benign-fpr", type=float, default=FitConfig.max_benign_fpr)
    parser.add_argument("--benign-weight", type=float, default=FitConfig.benign_weight)
    args = parser.parse_args()
    cfg = FitConfig(embed_scale=args.embed_scale, weight_decay=args.weight_decay,
                    max_lookalike_fpr=args.max_lookalike_fpr, lookalike_weight=args.lookalike_weight,
                    category_mix=args.category_mix, max_benign_fpr=args.max_benign_fpr,
                    benign_weight=args.benign_weight)
    examples = [e for e in read_examples(args.train) if args.role is None or e.role == args.role]
    start = time.perf_counter()
    head = fit_head(examples, cfg, SentenceEncoder() if cfg.embed_scale else None)
    head.save(args.out)
    print(f"trained on {len(examples)} examples in {time.perf_counter() - start:.0f} s; "
          f"threshold {head.threshold:.2f}; wrote {args.out}")


if __name__ == "__main__":
    main()
