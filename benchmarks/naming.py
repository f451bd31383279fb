"""Can the frozen tower name a held-out stamp, and does a projector keep what it knows? Held-out
Tux Paint images against the training captions of the default mix, no language model involved:

* **nearest neighbour** (the tower alone): each held-out image takes the caption of the training
  image whose pooled features (the model's feature map, averaged over positions, centred on the
  training mean) are most similar (cosine; k=5: any of the 5 nearest);
* **projector -> nearest caption**: each held-out image takes the training caption whose mean word
  embedding is closest to the image's mean projected token — what a pre-aligned projector
  (``stage: prealign``) points the LM at;
* **held-out retrieval**: the image's own caption among all held-out captions (chance 1/124);
* **mean-token cosine** between held-out images' mean projected tokens (near 1: one output for all).

A caption "names" the image when it shares a content word with the reference
(``lhama.eval.metrics.content_word_match``).

    python benchmarks/naming.py runs/default-stage0/model ~/.cache/lhama/models/lhama-default

About 2 minutes per model on 2 cores (the tower over ~2,100 images).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from lhama.data.dataset import DatasetConfig, load_samples
from lhama.eval.metrics import content_word_match
from lhama.model.build import load_model
from lhama.train.prealign import cache_pairs, caption_samples, retrieval_top1

PROMPT = "Descreva a imagem brevemente."


def nearest_captions(queries: torch.Tensor, keys: torch.Tensor, texts: tuple[str, ...], k: int) -> list[list[str]]:
    """For each query row, the texts of its k most cosine-similar key rows."""
    sims = F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T
    return [[texts[j] for j in row] for row in sims.topk(k, dim=1).indices.tolist()]


def any_named(candidates: list[list[str]], references: tuple[str, ...]) -> float:
    """Share of images for which at least one candidate caption names the reference's thing."""
    return sum(any(content_word_match([c], [r]) for c in cands) for cands, r in zip(candidates, references)) / len(references)


@torch.no_grad()
def measure(model_dir: Path, train_file: Path, heldout_file: Path) -> dict[str, float | int]:
    loaded = load_model(model_dir)
    image = loaded.model.branch("image")
    pairs = [caption_samples(load_samples(DatasetConfig(path=str(f))).samples, "image", image.config.placeholder, PROMPT)
             for f in (train_file, heldout_file)]
    train, held = (cache_pairs(loaded, image, p) for p in pairs)
    pooled_train, pooled_held = train.features.float().mean(1), held.features.float().mean(1)
    centre = pooled_train.mean(0)
    projector = loaded.model.multi_modal_projector
    projected = torch.cat([projector(held.features[i:i + 64].float()).mean(1) for i in range(0, len(held.texts), 64)])
    unit = F.normalize(projected, dim=-1)
    n = len(unit)
    return {
        "training captions": len(train.texts),
        "held-out images": n,
        "nearest neighbour, k=1": any_named(nearest_captions(pooled_held - centre, pooled_train - centre, train.texts, 1), held.texts),
        "nearest neighbour, k=5": any_named(nearest_captions(pooled_held - centre, pooled_train - centre, train.texts, 5), held.texts),
        "projector -> nearest caption": any_named(nearest_captions(projected, train.captions, train.texts, 1), held.texts),
        "held-out retrieval top-1": retrieval_top1(projector, held),
        "mean-token cosine": (((unit @ unit.T).sum() - n) / (n * (n - 1))).item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--train", type=Path, default=Path("runs/default-mix/stage1.jsonl"))
    parser.add_argument("--heldout", type=Path, default=Path("runs/default-mix/heldout.jsonl"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = {str(m): measure(m, args.train, args.heldout) for m in args.models}
    table = Table("measure", *[m.parent.name if m.name == "model" else m.name for m in args.models])
    for key in next(iter(results.values())):
        table.add_row(key, *[f"{r[key]:.3f}" if isinstance(r[key], float) else str(r[key]) for r in results.values()])
    Console().print(table)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
