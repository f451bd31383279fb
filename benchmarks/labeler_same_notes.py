"""Does a changed ``lhama.model.labeler`` say the same as an earlier one? Both modules' ``describe``
and ``named_thing`` on real pictures (``examples/`` and the Tux Paint stamps) through the prepared
lhama-default labeler, under its shipped settings and a grid of others (every rung of the ladder).

    git show ae06283^:src/lhama/model/labeler.py > /tmp/old_labeler.py
    python benchmarks/labeler_same_notes.py /tmp/old_labeler.py --views squash

Prints the comparisons, how many differ (the first few), and how often each rung was reached.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import itertools
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from PIL import Image

from lhama.model import labeler as new
from lhama.weights.prepare import prepare

ROOT = Path(__file__).resolve().parents[1]


def load_old(path: Path):
    spec = importlib.util.spec_from_file_location("old_labeler", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_labeler"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def settings(base: new.LabelerConfig) -> list[new.LabelerConfig]:
    """The shipped settings, its other styles, and a threshold grid for kinds/hedged (with and without the head)."""
    out = [base, *(dataclasses.replace(base, style=s) for s in ("hedged", "top1", "topk")),
           dataclasses.replace(base, style="topk", top_k=7)]
    for c, k, m, s2, nc in itertools.product((0.3, 0.5, 0.8), (0.2, 0.3, 0.6), (0.05, 0.1, 0.2), (0.05, 0.1), (0.0, 0.7, 0.5)):
        out += [dataclasses.replace(base, style=style, confident=c, kind_confident=k, min_prob=min(m, c), second_min=s2,
                                    names_confident=nc) for style in ("kinds", "hedged")]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old", type=Path, help="the earlier labeler.py")
    parser.add_argument("--stamps", type=Path, default=Path("/usr/share/tuxpaint/stamps"))
    parser.add_argument("--limit", type=int, default=0, help="first N pictures only (0: all)")
    parser.add_argument("--views", default="", help="comma-separated views (default: the shipped ones)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    old, lab = load_old(args.old), new.load_labeler(prepare("lhama-default"))
    if args.views:
        lab.config = dataclasses.replace(lab.config, views=tuple(args.views.split(",")))
    pictures = sorted((ROOT / "examples").glob("*.jpg")) + sorted(args.stamps.rglob("*.png"))
    pictures = pictures[: args.limit or None]
    grid, start, differ, steps = settings(lab.config), time.time(), [], Counter()
    with torch.no_grad():
        for path in pictures:
            probs, pooled = lab._read(lab._views(Image.open(path).convert("RGB")))
            probs, nearest = probs.mean(0), lab.names_head.nearest(pooled.mean(0))
            for config in grid:
                inputs = (probs, lab.names, config, lab.kinds, nearest if config.names_confident else None)
                was, now = (old.describe(*inputs), old.named_thing(*inputs)), (new.describe(*inputs), new.named_thing(*inputs))
                steps[new._climb(*inputs).step] += 1
                differ += [] if was == now else [(path.name, config, was, now)]
    for row in differ[:10]:
        print("DIFFERS", *row)
    print(f"views {lab.config.views}: {len(pictures)} pictures x {len(grid)} settings = {len(pictures) * len(grid)} "
          f"comparisons, {len(differ)} differ; rungs {dict(steps)}; {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
