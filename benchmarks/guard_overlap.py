"""How close each test item is to its nearest training item (word 3-gram Jaccard).

    python benchmarks/guard_overlap.py
    python benchmarks/guard_overlap.py --candidates new.jsonl   # score items before adding them to train

The split was made so no test item reaches 0.5 against any training item (tests/guard/test_dataset.py
keeps it that way); this prints the distribution. With ``--candidates`` it prints, for each new item,
only its own text and the similarity of its nearest test item (never the test item itself), so new
training data can be checked for near-duplicates without reading the test split.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from lhama.guard.dataset import read_examples

DATA = Path(__file__).resolve().parents[1] / "data" / "guard"


def grams(text: str) -> set[tuple[str, ...]]:
    w = re.findall(r"\w+", text.lower())
    return {tuple(w[i : i + 3]) for i in range(max(0, len(w) - 2))} or {tuple(w)}


def nearest(items: list[set], pool: list[set]) -> np.ndarray:
    """For each gram set of ``items``, the largest Jaccard similarity to any set of ``pool``."""
    return np.array([max(len(g & t) / len(g | t) for t in pool) for g in items])


def check_candidates(path: Path, limit: float) -> None:
    """Print each candidate's nearest-test similarity (a number only) and flag exact repeats."""
    train, test, new = (read_examples(p) for p in (DATA / "train.jsonl", DATA / "test.jsonl", path))
    scores = nearest([grams(e.text) for e in new], [grams(e.text) for e in test])
    seen = {e.text.lower() for e in train} | {e.text.lower() for e in test}
    for i, (e, s) in enumerate(zip(new, scores), start=1):
        if s >= limit or e.text.lower() in seen:
            print(f"{path.name}:{i}\t{s:.2f}\t{'REPEAT ' if e.text.lower() in seen else ''}{e.text}")
    print(f"{len(new)} candidates; nearest-test 3-gram Jaccard max {scores.max():.2f}, mean {scores.mean():.3f}; "
          f"{(scores >= limit).sum()} at or above {limit}, "
          f"{sum(e.text.lower() in seen for e in new)} exact repeats of existing items")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=Path, help="JSONL of new items to check against the test split")
    parser.add_argument("--limit", type=float, default=0.3, help="flag candidates at or above this similarity")
    args = parser.parse_args()
    if args.candidates:
        return check_candidates(args.candidates, args.limit)
    train, test = read_examples(DATA / "train.jsonl"), read_examples(DATA / "test.jsonl")
    near = nearest([grams(e.text) for e in test], [grams(e.text) for e in train])
    exact = len({e.text.lower() for e in test} & {e.text.lower() for e in train})
    print(f"train {len(train)} items, test {len(test)} items, exact duplicates across splits: {exact}")
    print("| nearest-train 3-gram Jaccard | max | mean | median | test items >= 0.3 |")
    print("|---|---|---|---|---|")
    print(f"| | {near.max():.2f} | {near.mean():.3f} | {np.median(near):.2f} | {(near >= 0.3).sum()} |")


if __name__ == "__main__":
    main()
