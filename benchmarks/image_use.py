"""How much does a model use its image? Two cheap diagnostics on held-out Tux Paint captions,
for one or more model directories (e.g. training runs of different projectors):

* **own vs other image**: mean per-token NLL of each held-out caption given its own image, and
  given another held-out image (a fixed random derangement, seed 0). The gap, and the share of
  captions that are likelier under their own image, say how much the image moves the caption.
* **projected-token collapse**: mean cosine between the projected image tokens (averaged per
  image) of the first 16 images, and their norm. Near 1.0 means the LM receives almost the same
  vector for every image: whatever distinguishes images is a small perturbation of it.

    python benchmarks/image_use.py runs/default-stage2/model ~/.cache/lhama/models/lhama-default

Prompt: "Descreva a imagem brevemente." (the stage-1 prompt). A few minutes per model on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from lhama.data.splits import read_file_list
from lhama.eval.answer import load_pixels
from lhama.eval.caption import CaptionItem, load_captions
from lhama.eval.scoring import ScoreRequest, score_continuations
from lhama.model.build import LoadedModel, load_model
from lhama.model.encoders import encode_images

PROMPT = "Descreva a imagem brevemente."


@torch.no_grad()
def token_collapse(loaded: LoadedModel, pixels: torch.Tensor) -> tuple[float, float]:
    """(mean pairwise cosine of per-image mean projected tokens, mean projected-token norm)."""
    model = loaded.model
    projected = model.multi_modal_projector(encode_images(model.vision_tower, pixels, loaded.config.image))
    means = torch.nn.functional.normalize(projected.mean(dim=1), dim=-1)
    n = len(means)
    off_diagonal = ((means @ means.T).sum() - n) / (n * (n - 1))
    return off_diagonal.item(), projected.norm(dim=-1).mean().item()


def measure(model_dir: Path, items: list[CaptionItem]) -> dict:
    loaded = load_model(model_dir)
    messages = ({"role": "user", "content": f"{loaded.config.image.placeholder}\n{PROMPT}"},)
    pixels = torch.stack([load_pixels(loaded, item.image) for item in items])
    rng, n = random.Random(0), len(items)
    others = [(i + rng.randrange(1, n)) % n for i in range(n)]  # never the image itself

    def nll(image_of: list[int]) -> list[float]:  # mean per-token NLL of each caption under pixels[image_of[i]]
        requests = [ScoreRequest(messages, item.reference, (pixels[j],)) for item, j in zip(items, image_of)]
        return [-score.mean for score in score_continuations(loaded, requests)]

    own, other = nll(list(range(n))), nll(others)
    cosine, norm = token_collapse(loaded, pixels[:16])
    return {"model": str(model_dir), "nll_own": sum(own) / n, "nll_other": sum(other) / n,
            "gap": (sum(other) - sum(own)) / n, "own_likelier": sum(a < b for a, b in zip(own, other)) / n,
            "token_cosine": cosine, "token_norm": norm, "n": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="lhama model directories")
    parser.add_argument("--data", default="../shared/data/tuxpaint_ptbr")
    parser.add_argument("--split", default="data/tuxpaint/heldout.txt")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    items = load_captions(args.data, "pt_BR", only=read_file_list(Path(args.split)))
    rows = [measure(model_dir, items) for model_dir in args.models]
    table = Table("model", "NLL own image", "NLL other image", "gap", "own likelier", "token cosine", "token norm",
                  title=f"image use on {len(items)} held-out Tux Paint captions")
    for r in rows:
        table.add_row(r["model"], f"{r['nll_own']:.3f}", f"{r['nll_other']:.3f}", f"{r['gap']:+.3f}",
                      f"{r['own_likelier']:.3f}", f"{r['token_cosine']:.3f}", f"{r['token_norm']:.1f}")
    Console().print(table)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
