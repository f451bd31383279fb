"""Time AdMIRe ranking per item for each system (no cache), on the first N dev items.

    PYTHONPATH=src LHAMA_HOME=/tmp/lh python benchmarks/eval_admire.py --items 3

Prints a table: system, items, seconds per item; plus the machine load (the CPU is shared).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from lhama.eval.admire import load_subtask_a
from lhama.eval.rankers import MiniLMRanker, ModelRanker, RandomRanker
from lhama.model.build import load_model
from lhama.model.embeddings import SentenceEncoder
from lhama.weights.resolve import resolve

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "admire_en" / "dev" / "subtask_a_dev.tsv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=3)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--data", type=Path, default=DEV)
    args = parser.parse_args()
    items = load_subtask_a(args.data)[: args.items]
    rankers = [("random", lambda: RandomRanker()), ("minilm", lambda: MiniLMRanker(SentenceEncoder())),
               (f"{args.model} text-only", lambda: ModelRanker(load_model(resolve(args.model, args.model)),
                                                                "en", text_only=True))]
    print(f"torch threads: {torch.get_num_threads()}, load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'system':<28} {'load s':>8} {'items':>6} {'s/item':>8}")
    for name, make in rankers:
        started = time.perf_counter()
        ranker = make()
        loaded = time.perf_counter()
        for item in items:
            ranker.rank(item)
        per_item = (time.perf_counter() - loaded) / len(items)
        print(f"{name:<28} {loaded - started:>8.1f} {len(items):>6} {per_item:>8.3f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
