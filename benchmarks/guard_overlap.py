"""How close each test item is to its nearest training item (word 3-gram Jaccard).

    python benchmarks/guard_overlap.py

The split was made so no test item reaches 0.5 against any training item (tests/guard/test_dataset.py
keeps it that way); this prints the distribution.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from lhama.guard.dataset import read_examples

DATA = Path(__file__).resolve().parents[1] / "data" / "guard"


def grams(text: str) -> set[tuple[str, ...]]:
    w = re.findall(r"\w+", text.lower())
    return {tuple(w[i : i + 3]) for i in range(max(0, len(w) - 2))} or {tuple(w)}


def main() -> None:
    train, test = read_examples(DATA / "train.jsonl"), read_examples(DATA / "test.jsonl")
    train_grams = [grams(e.text) for e in train]
    nearest = np.array([max(len(g & t) / len(g | t) for t in train_grams) for g in map(grams, (e.text for e in test))])
    exact = len({e.text.lower() for e in test} & {e.text.lower() for e in train})
    print(f"train {len(train)} items, test {len(test)} items, exact duplicates across splits: {exact}")
    print("| nearest-train 3-gram Jaccard | max | mean | median | test items >= 0.3 |")
    print("|---|---|---|---|---|")
    print(f"| | {nearest.max():.2f} | {nearest.mean():.3f} | {np.median(nearest):.2f} | {(nearest >= 0.3).sum()} |")


if __name__ == "__main__":
    main()
