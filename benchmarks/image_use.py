"""How much does a model use its image? Two cheap diagnostics on held-out Tux Paint captions,
for one or more model directories (e.g. training runs of different projectors):

* **own vs other image**: mean per-token NLL of each held-out caption given its own image, and
  given another held-out image (a fixed random derangement, seed 0). The gap, and the share of
  captions that are likelier under their own image, say how much the image moves the caption.
* **projected-token collapse**: mean cosine between the projected image tokens (averaged per
  image) of the first 16 images, and their norm. Near 1.0 means the LM receives almost the same
  vector for every image: whatever distinguishes images is a small perturbation of it.
* **where it collapses** (`--stages`): the same cosine after each step of the projector on all
  held-out images — tower features, after the projector's LayerNorm (if any), after linear_1 +
  GELU, and the projected tokens — so a collapse can be traced to the step that makes it.

    python benchmarks/image_use.py runs/default-stage2/model ~/.cache/lhama/models/lhama-default
    python benchmarks/image_use.py ~/.cache/lhama/models/lhama-default --stages   # seconds

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

from lhama.recipes.default.splits import read_file_list
from lhama.eval.caption import CaptionItem, load_captions
from lhama.eval.scoring import ScoreRequest, score_continuations
from lhama.model.build import LoadedModel, load_model
from lhama.model.encoders import encode_images
from lhama.model.projector import MultiModalProjector

PROMPT = "Descreva a imagem brevemente."


def mean_token_cosine(tokens: torch.Tensor) -> float:
    """Mean pairwise cosine between images' mean tokens; tokens: (images, N, dim)."""
    means = torch.nn.functional.normalize(tokens.mean(dim=1), dim=-1)
    n = len(means)
    return (((means @ means.T).sum() - n) / (n * (n - 1))).item()


@torch.no_grad()
def token_collapse(loaded: LoadedModel, pixels: torch.Tensor) -> tuple[float, float]:
    """(mean pairwise cosine of per-image mean projected tokens, mean projected-token norm)."""
    model = loaded.model
    projected = model.multi_modal_projector(encode_images(model.vision_tower, pixels, loaded.config.branches["image"]))
    return mean_token_cosine(projected), projected.norm(dim=-1).mean().item()


@torch.no_grad()
def stage_cosines(loaded: LoadedModel, pixels: torch.Tensor, batch: int = 16) -> dict[str, float]:
    """Mean-token cosine after each step of the projector (see MultiModalProjector.forward)."""
    model, projector = loaded.model, loaded.model.multi_modal_projector
    features = torch.cat([encode_images(model.vision_tower, pixels[i:i + batch], loaded.config.branches["image"])
                          for i in range(0, len(pixels), batch)])
    stages = {"tower features": features}
    if hasattr(projector, "norm"):
        features = stages["after LayerNorm"] = projector.norm(features)
    if projector.kind == "mlp2x_gelu":
        stages["after linear_1 + GELU"] = projector.act(projector.linear_1(features))
    projected = model.multi_modal_projector(stages["tower features"])
    stages["projected tokens"] = projected
    torch.manual_seed(0)  # the same projector freshly initialised: is the collapse learned or built in?
    untrained = MultiModalProjector(projector.linear_1.in_features, projector.linear_1.out_features,
                                    loaded.config.branches["image"].projector)
    stages["projected tokens, untrained projector"] = untrained(stages["tower features"])
    cosines = {f"cosine, {name}": mean_token_cosine(tokens) for name, tokens in stages.items()}
    embed = model.language_model.get_input_embeddings()  # called, not .weight: Gemma scales its embeddings
    ids = torch.randint(0, embed.num_embeddings, (4096,), generator=torch.Generator().manual_seed(0))
    cosines["projected token norm"] = projected.norm(dim=-1).mean().item()
    cosines["text embedding norm"] = embed(ids).norm(dim=-1).mean().item()
    return cosines


def measure(model_dir: Path, items: list[CaptionItem]) -> dict:
    loaded = load_model(model_dir)
    messages = ({"role": "user", "content": f"{loaded.config.placeholders['image']}\n{PROMPT}"},)
    pixels = torch.stack([loaded.read("image", item.image) for item in items])
    rng, n = random.Random(0), len(items)
    others = [(i + rng.randrange(1, n)) % n for i in range(n)]  # never the image itself

    def nll(image_of: list[int]) -> list[float]:  # mean per-token NLL of each caption under pixels[image_of[i]]
        requests = [ScoreRequest(messages, item.reference, {"image": pixels[j:j + 1]}) for item, j in zip(items, image_of)]
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
    parser.add_argument("--stages", action="store_true", help="only the per-step cosines (seconds, no scoring)")
    args = parser.parse_args()
    items = load_captions(args.data, "pt_BR", only=read_file_list(Path(args.split)))
    if args.stages:
        return print_stages(args.models, items, args.out)
    rows = [measure(model_dir, items) for model_dir in args.models]
    table = Table("model", "NLL own image", "NLL other image", "gap", "own likelier", "token cosine", "token norm",
                  title=f"image use on {len(items)} held-out Tux Paint captions")
    for r in rows:
        table.add_row(r["model"], f"{r['nll_own']:.3f}", f"{r['nll_other']:.3f}", f"{r['gap']:+.3f}",
                      f"{r['own_likelier']:.3f}", f"{r['token_cosine']:.3f}", f"{r['token_norm']:.1f}")
    Console().print(table)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


def print_stages(model_dirs: list[Path], items: list[CaptionItem], out: Path | None) -> None:
    rows = []
    for model_dir in model_dirs:
        loaded = load_model(model_dir)
        pixels = torch.stack([loaded.read("image", item.image) for item in items])
        rows.append({"model": str(model_dir), "n": len(items), **stage_cosines(loaded, pixels)})
    table = Table("model", "measure", "value", title=f"mean-token cosine between {len(items)} held-out images, per step")
    for row in rows:
        for name, value in row.items():
            if name not in ("model", "n"):
                table.add_row(row["model"], name, f"{value:.3f}")
    Console().print(table)
    if out:
        out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
