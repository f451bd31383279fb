"""Dev-only work for issue #26 session 12: does a bigger memory of named drawings, or a lower
"não reconhecida" floor, name more read pictures? (The fresh set is never touched here.)

    python benchmarks/naming_s12_dev.py features --threads 1 [--stop N]   # heavy, resumable: labeler views
    python benchmarks/naming_s12_dev.py grid                               # seconds: note alone, leave-group-out
    python benchmarks/naming_s12_dev.py head --memory bigger               # the memory as a names head folder

``features`` runs session 11's labeler (lhama-default's: views squash+fit+fit_flip) over every read
naming picture: the 923 of ``openclipart_names.tsv`` and the 187 of ``naming_heldout.tsv``, and
caches each picture's class probabilities and pooled features averaged over the views (the
labeler's own ``_read``). ``grid`` scores notes (:func:`lhama.model.labeler.describe`) against the
accepted names, leave-group-out: a picture is never named from a memory row of its own group
(clip art: its ``group``; a naming_heldout picture: itself).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = ROOT / "benchmarks/data"
CACHE = Path("/tmp/26a/s12/dev_features.pt")
CLIPART = Path("/usr/share/openclipart/png")


def _rows(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


def dev_items(data_dir: Path, stamps_dir: Path) -> list[dict]:
    """Every read naming picture: key, path, accepted names, group, memory name (clip art: its
    head label; naming_heldout: its first accepted name), where it came from."""
    items = []
    for r in csv.DictReader(_rows(DATA / "openclipart_names.tsv"), delimiter="\t"):
        items.append({"key": f"openclipart:{r['image']}", "path": str(CLIPART / f"{r['image']}.png"),
                      "accepted": r["accepted"], "group": f"oc:{r['group']}", "name": r["name"],
                      "set": f"clipart_{r['split']}"})
    for r in csv.DictReader(_rows(DATA / "naming_heldout.tsv"), delimiter="\t"):
        folder = data_dir / "images" if r["source"] == "tuxpaint_ptbr" else stamps_dir
        items.append({"key": f"{r['source']}:{r['image']}", "path": str(folder / r["image"]),
                      "accepted": r["accepted"], "group": f"nh:{r['image']}", "name": r["accepted"].split("|")[0],
                      "set": "naming_heldout"})
    return items


@torch.no_grad()
def features(args: argparse.Namespace) -> None:
    from naming_s12 import labelers

    from lhama.data.media import load_image
    from lhama.errors import DataError

    torch.set_num_threads(args.threads)
    items = dev_items(args.data_dir, args.stamps_dir)[: args.stop]
    cache = torch.load(CACHE) if CACHE.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="naming_s12_dev_") as work:
        labeler = labelers(Path(work))["s11"]
    todo = [i for i in items if i["key"] not in cache]
    print(f"{len(todo)} of {len(items)} to do", flush=True)
    for n, item in enumerate(todo, 1):
        try:
            image = load_image(item["path"])
        except DataError as exc:
            print("skip", exc, flush=True)
            continue
        probs, pooled = labeler._read(labeler._views(image))
        cache[item["key"]] = (probs.mean(0).half(), pooled.mean(0).half())
        if n % 50 == 0 or n == len(todo):
            torch.save(cache, CACHE)
            print(n, flush=True)


def _memory(items: list[dict], cache: dict, extra_sets: tuple[str, ...]):
    """(features, entries, row groups): the shipped names head's rows plus the read pictures of
    ``extra_sets`` (named by their memory name), each row with its leave-out group."""
    from lhama.model.names_head import NamedPicture, NamesHead
    from lhama.model.names_head import SHIPPED

    head = NamesHead.load(SHIPPED / "names_head_clipart")  # session 11's (7's) head
    group_of = {i["key"]: i["group"] for i in items}
    rows, entries, groups = [head.features], list(head.entries), [group_of.get(e.key, f"head:{e.key}") for e in head.entries]
    keys = {e.key for e in head.entries}
    added = [i for i in items if i["set"] in extra_sets and i["key"] in cache and i["key"] not in keys]
    if added:
        rows.append(torch.stack([cache[i["key"]][1].float() for i in added]))
        entries += [NamedPicture(i["name"], "", i["key"]) for i in added]
        groups += [i["group"] for i in added]
    return torch.cat(rows).float(), tuple(entries), groups


def _nearest_fn(features: torch.Tensor, entries: tuple, groups: list[str], vote: int = 1):
    """A function (pooled, group) -> (picture, cosine): the nearest memory row outside ``group``
    (cosine after subtracting the memory's mean, as NamesHead)."""
    mean = features.mean(0)
    unit = torch.nn.functional.normalize(features - mean, dim=-1)
    index: dict[str, list[int]] = {}
    for row, g in enumerate(groups):
        index.setdefault(g, []).append(row)

    def nearest(pooled: torch.Tensor, group: str):
        sim = unit @ torch.nn.functional.normalize(pooled.float() - mean, dim=-1)
        sim[index.get(group, [])] = -2.0
        if vote == 1:
            best = int(sim.argmax())
            return entries[best], float(sim[best])
        top = sim.topk(vote)
        weight: dict[str, float] = {}
        for v, r in zip(top.values.tolist(), top.indices.tolist()):
            weight[entries[r].name] = weight.get(entries[r].name, 0.0) + v
        name = max(weight, key=weight.get)
        best = next(r for v, r in zip(top.values.tolist(), top.indices.tolist()) if entries[r].name == name)
        return entries[best], float(sim[best])

    return nearest


def grid(args: argparse.Namespace) -> None:
    from lhama.eval.metrics import names_thing
    from lhama.model.labeler import LabelerConfig, describe
    from lhama.model.towers.imagenet_kinds import TABLE as KINDS, KindIndex
    from lhama.model.towers.imagenet_names import TABLE, class_names
    from naming_s12 import S11_LABELER

    cache = torch.load(CACHE)
    items = [i for i in dev_items(args.data_dir, args.stamps_dir) if i["key"] in cache]
    names = class_names(TABLE)
    kinds = KindIndex.load(KINDS, len(names))
    base = LabelerConfig(**S11_LABELER)
    memories = {"shipped": ((), 1), "bigger": (("clipart_dev", "clipart_test", "naming_heldout"), 1),
                "bigger_oc": (("clipart_dev", "clipart_test"), 1),
                "bigger_vote5": (("clipart_dev", "clipart_test", "naming_heldout"), 5)}
    sets = sorted({i["set"] for i in items})
    results = []
    for memory, (extra, vote) in memories.items():
        nearest = _nearest_fn(*_memory(items, cache, extra), vote=vote)
        found = [nearest(cache[i["key"]][1], i["group"]) for i in items]
        for confident in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8):
            for yield_ in (1.0, 0.5, 0.3):
                for floor in (0.1, 0.05, 0.0):
                    config = replace(base, names_confident=confident, names_yield=yield_, min_prob=floor)
                    hits = {s: 0 for s in sets}
                    for item, named in zip(items, found):
                        note = describe(cache[item["key"]][0].float(), names, config, kinds, named)
                        hits[item["set"]] += names_thing(note, item["accepted"].split("|"))
                    results.append({"memory": memory, "names_confident": confident, "names_yield": yield_,
                                    "min_prob": floor, "total": sum(hits.values()), **hits})
    results.sort(key=lambda r: -r["total"])
    ref = next(r for r in results if r["memory"] == "shipped" and r["names_confident"] == 0.7
               and r["names_yield"] == 0.5 and r["min_prob"] == 0.1)
    print("pictures", len(items), {s: sum(i["set"] == s for i in items) for s in sets})
    print("reference (session 11's labeler)", ref)
    for r in results[:15]:
        print(r)
    for memory in memories:
        print("best", memory, next(r for r in results if r["memory"] == memory))
    args.out.write_text(json.dumps({"reference": ref, "rows": results}, indent=1) + "\n", encoding="utf-8")


def build_head(args: argparse.Namespace) -> None:
    """Write the names head of ``--memory`` (all its rows: nothing left out) to ``--head-out``."""
    from lhama.model.names_head import NamesHead

    cache = torch.load(CACHE)
    items = dev_items(args.data_dir, args.stamps_dir)
    extra = {"bigger": ("clipart_dev", "clipart_test", "naming_heldout"), "bigger_oc": ("clipart_dev", "clipart_test")}
    features, entries, _ = _memory(items, cache, extra[args.memory])
    fresh = {f"openclipart:{r['image']}" for r in csv.DictReader(_rows(DATA / "naming_fresh_s12.tsv"), delimiter="\t")}
    assert not fresh & {e.key for e in entries}, "a fresh picture in the memory"
    args.head_out.mkdir(parents=True, exist_ok=True)
    NamesHead(features, entries).save(args.head_out)
    print(f"{len(entries)} rows ({len(entries) - 751} added) -> {args.head_out}")


@torch.no_grad()
def photos(args: argparse.Namespace) -> None:
    """Photos (examples/*.jpg, AdMIRe dev's pictures; no names known): how many notes the shipped
    labeler changes against session 11's, and how many of those now name a names-head picture."""
    import tempfile

    from naming_s12 import labelers

    from lhama.data.media import load_image

    torch.set_num_threads(args.threads)
    paths = sorted((ROOT / "examples").glob("*.jpg")) + sorted(args.photos.rglob("*.jpg")) + sorted(args.photos.rglob("*.png"))
    with tempfile.TemporaryDirectory(prefix="naming_s12_photos_") as work:
        built = labelers(Path(work))
    rows, changed, to_head = [], 0, 0
    for path in paths:
        image = load_image(path)
        old, new = built["s11"].note(image), built["shipped"].note(image)
        probs, pooled = built["shipped"]._read(built["shipped"]._views(image))
        picture, cosine = built["shipped"].names_head.nearest(pooled.mean(0))
        head_now = new == f"[Imagem anexada: {_named_words(picture)}]"
        changed += old != new
        to_head += old != new and head_now
        rows.append({"photo": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path), "s11": old,
                     "shipped": new, "changed": old != new, "now_head": bool(old != new and head_now)})
        if old != new:
            print(rows[-1], flush=True)
    print(f"{len(paths)} photos: {changed} notes changed, {to_head} of them now a names-head name")
    args.out.write_text(json.dumps({"photos": len(paths), "changed": changed, "now_head": to_head, "rows": rows},
                                   indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _named_words(picture) -> str:
    from lhama.model.labeler import _named

    return _named(picture)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("features", "grid", "head", "photos"))
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared/data/admire_en/dev")
    parser.add_argument("--memory", default="bigger")
    parser.add_argument("--head-out", type=Path, default=ROOT / "src/lhama/model/towers/names_head_s12")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared/data/tuxpaint_ptbr")
    parser.add_argument("--stamps-dir", type=Path, default=Path("/usr/share/tuxpaint/stamps"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--stop", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/results/naming_s12_dev_grid.json")
    args = parser.parse_args()
    if args.step == "features":
        features(args)
    elif args.step == "photos":
        photos(args)
    elif args.step == "head":
        build_head(args)
    else:
        grid(args)


if __name__ == "__main__":
    main()
