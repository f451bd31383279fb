"""Which labeler note names the most pictures? The note alone, no LM: tuning on the dev split.

For each picture of ``benchmarks/data/naming_heldout.tsv`` in the chosen split
(``naming_split.tsv``: dev for tuning, test for reporting), EfficientNet-Lite2 gives class
probabilities under a few preprocessing views (``squash``: the whole image resized to a square,
what lhama does; ``pad``: padded with white to a square first, so the shape is not distorted;
``pad15``: with a 15% white margin too; ``*_flip``: mirrored). Each note style and setting of
``lhama.model.labeler`` (``hedged``; ``kinds`` with WordNet kinds at several ``kind_confident``)
turns them into a note, and the note counts when it contains an accepted name
(``lhama.eval.metrics.names_thing``, unchanged). The LM's answers are measured afterwards with
``benchmarks/naming_fusion.py`` on the settings chosen here.

    python benchmarks/naming_kinds.py --data-dir ../shared/data/tuxpaint_ptbr --split dev --threads 1
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch
from PIL import Image, ImageOps
from rich.console import Console
from rich.table import Table

from lhama.data.media import image_to_tensor, load_image
from lhama.eval.metrics import names_thing
from lhama.eval.naming import item_path, read_naming_items
from lhama.model.labeler import LabelerConfig, describe
from lhama.model.towers.efficientnet_lite import lite_image_spec, load_tower
from lhama.model.towers.imagenet_kinds import KindIndex
from lhama.model.towers.imagenet_names import class_names
from lhama.weights.prepare import prepare

DATA = Path(__file__).with_name("data")
ITEMS, SPLIT = DATA / "naming_heldout.tsv", DATA / "naming_split.tsv"


def pad(image: Image.Image, margin: float) -> Image.Image:
    """The image centred on a white square, ``margin`` of its longer side added on each side."""
    side = int(max(image.size) * (1 + 2 * margin))
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return square


VIEWS = {"squash": lambda i: i, "pad": lambda i: pad(i, 0), "pad15": lambda i: pad(i, 0.15),
         "squash_flip": ImageOps.mirror, "pad_flip": lambda i: ImageOps.mirror(pad(i, 0)),
         "pad15_flip": lambda i: ImageOps.mirror(pad(i, 0.15))}
COMBOS = {"squash": ("squash",), "pad": ("pad",), "pad15": ("pad15",), "squash+flip": ("squash", "squash_flip"),
          "pad+flip": ("pad", "pad_flip"), "pad15+flip": ("pad15", "pad15_flip"), "squash+pad": ("squash", "pad"),
          "squash+pad15": ("squash", "pad15"), "all": tuple(VIEWS)}


def split_images(part: str) -> set[str]:
    rows = [line.split("\t") for line in SPLIT.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return {row[0] for row in rows[1:] if row[1].strip() == part}


@torch.no_grad()
def view_probs(paths: list[Path], cache: Path | None) -> dict[str, torch.Tensor]:
    """view -> (n, 1000) probabilities, read from ``cache`` when it holds these pictures."""
    key = [str(p) for p in paths]
    if cache and cache.is_file():
        saved = torch.load(cache)
        if saved["paths"] == key:
            return saved["probs"]
    tower = load_tower(prepare("efficientnet-lite2")).eval()
    spec = lite_image_spec(tower.config)
    images = [load_image(p) for p in paths]
    probs = {name: torch.cat([tower.classify(torch.stack([image_to_tensor(view(i), spec) for i in images[s:s + 16]]))
                              for s in range(0, len(images), 16)]) for name, view in VIEWS.items()}
    if cache:
        torch.save({"paths": key, "probs": probs}, cache)
    return probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the Tux Paint folder (captions.tsv + images/)")
    parser.add_argument("--stamps-dir", type=Path, default=Path("/usr/share/tuxpaint/stamps"))
    parser.add_argument("--split", choices=("dev", "test", "all"), default="dev")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lhama_naming_kinds_probs.pt"),
                        help="probabilities of all pictures (not naming_views.py's cache: that file holds other keys)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    items = read_naming_items(ITEMS)
    folders = {"tuxpaint_ptbr": args.data_dir / "images", "tuxpaint_stamps": args.stamps_dir}
    probs = view_probs([item_path(i, folders) for i in items], args.cache)
    keep = [n for n, i in enumerate(items) if args.split == "all" or i.image in split_images(args.split)]
    names, index = class_names(), KindIndex.load()
    configs = {"hedged": LabelerConfig(style="hedged")} | {
        f"kinds {t}": LabelerConfig(style="kinds", kind_confident=t) for t in (0.3, 0.4, 0.5, 0.6, 0.7)}
    rows = {}
    for (combo, views), (label, config) in itertools.product(COMBOS.items(), configs.items()):
        mean = torch.stack([probs[v] for v in views]).mean(0)
        notes = [describe(mean[n], names, config, index) for n in keep]
        rows[(combo, label)] = {"named": sum(names_thing(note, items[n].accepted) for note, n in zip(notes, keep)),
                                "top1": sum(names_thing(names[int(mean[n].argmax())], items[n].accepted) for n in keep),
                                "notes": {items[n].image: note for note, n in zip(notes, keep)}}
    table = Table(title=f"Naming by the note alone ({args.split}: {len(keep)} pictures)")
    for column in ("views", "top-1 name", *configs):
        table.add_column(column)
    for combo in COMBOS:
        table.add_row(combo, str(rows[(combo, "hedged")]["top1"]), *(str(rows[(combo, c)]["named"]) for c in configs))
    Console().print(table)
    if args.out:
        result = {"split": args.split, "n": len(keep), "criterion": "lhama.eval.metrics.names_thing on the note text",
                  "results": {f"{c} | {s}": r for (c, s), r in rows.items()}}
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
