"""The labeler's names head (issue #26 session 3): build it from Tux Paint stamps no naming
picture is in, choose its threshold on the naming dev split, read the test split once.

    python benchmarks/names_head.py features --data-dir ../shared/data/tuxpaint_ptbr --threads 1   # heavy: ~800 pictures
    python benchmarks/names_head.py build --data-dir ../shared/data/tuxpaint_ptbr    # exclusions + the shipped head
    python benchmarks/names_head.py score --split dev                                # the grid (note alone)
    python benchmarks/names_head.py score --split test --only <setting>              # once, the setting docs name

``features`` runs EfficientNet-Lite2 once (the labeler's own preprocessing: one squashed view) over
every named stamp (``src/lhama/model/towers/stamp_names.tsv``) and every naming picture
(``benchmarks/data/naming_heldout.tsv``), and caches pooled features, class probabilities and a
64x64 shape mask (alpha, or not-white for pictures without one).

``build`` removes from the pool every stamp that is, or is near, a naming dev/test picture or a
Tux Paint held-out picture, by four rules fixed before any naming score was computed
(docs/default-model.md, "Names head"): (1) the same picture (its key is a held-out picture's:
``data/tuxpaint/heldout.txt`` or ``naming_heldout.tsv``); (2) the same file stem in another
folder; (3) a colour variant: same folder and shape-mask IoU >= 0.9; (4) pooled-feature cosine
>= 0.90 with a naming dev/test picture. The excluded stamps and their rule go to
``benchmarks/data/names_pool_excluded.tsv``; the rest become the shipped head
(``src/lhama/model/towers/names_head.{tsv,safetensors}``).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path

import torch
from PIL import Image

from lhama.data.media import image_to_tensor, load_image
from lhama.eval.metrics import names_thing
from lhama.eval.naming import item_path, read_naming_items

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).with_name("data")
ITEMS, SPLIT = DATA / "naming_heldout.tsv", DATA / "naming_split.tsv"
EXCLUDED = DATA / "names_pool_excluded.tsv"
STAMP_NAMES = ROOT / "src/lhama/model/towers/stamp_names.tsv"
HELDOUT = ROOT / "data/tuxpaint/heldout.txt"
STAMPS = Path("/usr/share/tuxpaint/stamps")
CACHE = Path("/tmp/lhama_names_head_features.pt")
COSINE_NEAR, MASK_IOU = 0.90, 0.9  # fixed before any score (rules 3 and 4)


def read_tsv(path: Path) -> list[dict[str, str]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def shared_key(file_name: str) -> str:
    """``animals_birds__owl.jpg`` -> ``animals/birds/owl``."""
    folder, stem = file_name.rsplit(".", 1)[0].split("__", 1)
    return folder.replace("_", "/") + "/" + stem


def item_key(image: str, source: str) -> str:
    return shared_key(image) if source == "tuxpaint_ptbr" else image.rsplit(".", 1)[0]


def stamp_path(row: dict[str, str], data_dir: Path) -> Path:
    if row["source"] == "tuxpaint_stamps":
        return STAMPS / f"{row['key']}.png"
    return data_dir / "images" / (row["key"].rsplit("/", 1)[0].replace("/", "_") + "__" + row["key"].rsplit("/", 1)[1] + ".jpg")


def shape_mask(path: Path) -> torch.Tensor:
    """(64, 64) bool: the picture's shape (alpha > 0, or not near-white without alpha)."""
    with Image.open(path) as img:
        img = img.convert("RGBA").resize((64, 64))
        pixels = torch.tensor(list(img.getdata()), dtype=torch.int16).view(64, 64, 4)
    has_alpha = bool((pixels[..., 3] < 255).any())
    return pixels[..., 3] > 0 if has_alpha else (pixels[..., :3] < 240).any(-1)


@torch.no_grad()
def features(args: argparse.Namespace) -> None:
    from lhama.model.towers.efficientnet_lite import lite_image_spec, load_tower
    from lhama.weights.prepare import prepare

    torch.set_num_threads(args.threads)
    folders = {"tuxpaint_ptbr": args.data_dir / "images", "tuxpaint_stamps": STAMPS}
    paths = {f"stamp:{r['key']}": stamp_path(r, args.data_dir) for r in read_tsv(STAMP_NAMES)}
    paths |= {f"item:{i.image}": item_path(i, folders) for i in read_naming_items(ITEMS)}
    tower = load_tower(prepare("efficientnet-lite2")).eval()
    spec = lite_image_spec(tower.config)
    keys, out = sorted(paths), {}
    for start in range(0, len(keys), 16):
        batch = keys[start:start + 16]
        result = tower(torch.stack([image_to_tensor(load_image(paths[k]), spec) for k in batch]), output_hidden_states=False)
        probs = torch.softmax(result.logits.float(), -1)
        for n, key in enumerate(batch):
            out[key] = {"pooled": result.pooler_output[n].clone(), "probs": probs[n].clone(), "mask": shape_mask(paths[key])}
        print(f"{start + len(batch)}/{len(keys)}", flush=True)
    torch.save(out, args.cache)


def exclusions(rows: list[dict[str, str]], cache: dict) -> dict[str, str]:
    """stamp key -> the rule that excludes it (module docstring)."""
    items = read_naming_items(ITEMS)
    near = {item_key(i.image, i.source): i.image for i in items}
    heldout = [line.strip() for line in HELDOUT.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    same = set(near) | {shared_key(name) for name in heldout}
    stems = {k.rsplit("/", 1)[-1].lower(): k for k in near}
    test_feats = torch.nn.functional.normalize(torch.stack([cache[f"item:{i.image}"]["pooled"] for i in items]), dim=-1)
    out = {}
    for row in rows:
        key, entry = row["key"], cache[f"stamp:{row['key']}"]
        folder, stem = key.rsplit("/", 1)
        cosine = torch.nn.functional.normalize(entry["pooled"], dim=-1) @ test_feats.T
        variants = [k for k in near if k.rsplit("/", 1)[0] == folder and _iou(entry["mask"], cache[f"item:{near[k]}"]["mask"]) >= MASK_IOU]
        if key in same:
            out[key] = "1 same picture"
        elif stem.lower() in stems:
            out[key] = f"2 same stem as {stems[stem.lower()]}"
        elif variants:
            out[key] = f"3 colour variant of {variants[0]}"
        elif float(cosine.max()) >= COSINE_NEAR:
            out[key] = f"4 cosine {float(cosine.max()):.3f} with {items[int(cosine.argmax())].image}"
    return out


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = (a | b).sum().item()
    return (a & b).sum().item() / union if union else 0.0


def build(args: argparse.Namespace) -> None:
    from lhama.model.names_head import NamedPicture, NamesHead, SHIPPED

    cache = torch.load(args.cache)
    rows = read_tsv(STAMP_NAMES)
    excluded = exclusions(rows, cache)
    lines = ["# Stamps left out of the names head's pool (benchmarks/names_head.py build): rule and reason.",
             "key\tname\trule"] + [f"{r['key']}\t{r['name']}\t{excluded[r['key']]}" for r in rows if r["key"] in excluded]
    EXCLUDED.write_text("\n".join(lines) + "\n", encoding="utf-8")
    kept = [r for r in rows if r["key"] not in excluded]
    head = NamesHead(torch.stack([cache[f"stamp:{r['key']}"]["pooled"] for r in kept]),
                     tuple(NamedPicture(r["name"], r["kind"], r["key"]) for r in kept))
    head.save(SHIPPED)
    rules = {}
    for reason in excluded.values():
        rules[reason[0]] = rules.get(reason[0], 0) + 1
    print(f"pool {len(rows)}: kept {len(kept)}, excluded {len(excluded)} by rule {dict(sorted(rules.items()))}")


def split_images(part: str) -> set[str]:
    return {r["image"] for r in read_tsv(SPLIT) if part == "all" or r["split"].strip() == part}


GRID = {"names_confident": (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8), "names_yield": (1.0, 0.5)}  # fixed before any score


def score(args: argparse.Namespace) -> None:
    from lhama.model.labeler import LabelerConfig, describe
    from lhama.model.names_head import NamesHead, SHIPPED
    from lhama.model.towers.imagenet_kinds import KindIndex
    from lhama.model.towers.imagenet_names import class_names

    cache, head = torch.load(args.cache), NamesHead.load(args.head or SHIPPED)
    items = [i for i in read_naming_items(ITEMS) if i.image in split_images(args.split)]
    names, kinds = class_names(), KindIndex.load()
    settings = [dict(zip(GRID, v)) for v in itertools.product(*GRID.values())]
    if args.only:
        settings = [json.loads(args.only)]
    rows = []
    for setting in settings:
        config = LabelerConfig(style="kinds", kind_confident=0.3, **setting)
        notes = {i.image: describe(cache[f"item:{i.image}"]["probs"], names, config, kinds,
                                   head.nearest(cache[f"item:{i.image}"]["pooled"]) if config.names_confident else None)
                 for i in items}
        named = sum(names_thing(notes[i.image], i.accepted) for i in items)
        rows.append({"setting": setting, "named": named, "n": len(items), "notes": notes})
        print(f"{json.dumps(setting)}\t{named}/{len(items)}", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"split": args.split, "head_size": len(head.entries), "rows": rows},
                                       indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("features", "build", "score"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/tuxpaint_ptbr"))
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--only", default=None, help='one setting as JSON, e.g. \'{"names_confident": 0.8, "names_yield": 1.0}\'')
    parser.add_argument("--head", type=Path, default=None, help="score: a names-head folder (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    {"features": features, "build": build, "score": score}[args.step](args)


if __name__ == "__main__":
    main()
