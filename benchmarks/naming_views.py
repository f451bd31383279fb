"""Several views and feature kinds of EfficientNet-Lite2 for clip-art naming (issue #26 session 7).

Session 6 found that the tower's pooled features (one squashed view) do not put different drawings
of one thing near each other (fresh dev: nearest label right 37/221 where a usable label exists for
144). This script asks, on the fresh DEV half and the names head's pictures only, whether other
views of the picture (padded, cropped to its content, mirrored, grey) or other feature kinds (an
earlier stage's pooled map, GeM pooling, the logits) do better, and whether a projection learned
on the pool + the Tux Paint stamps does.

    python benchmarks/naming_views.py features --folder /usr/share/openclipart/png --threads 1   # heavy
    python benchmarks/naming_views.py explore          # dev only: forced nearest-label counts, note alone
    python benchmarks/naming_views.py features --folder ... --part test   # only in the committed run

``features`` caches, per picture and per view (:data:`VIEWS`), float16 rows of each feature kind
(:data:`KINDS`). Pictures: the shipped names head's stamps (``stamp:<key>``), the fresh pool and
dev halves (``oc:<image>``) and the old naming dev split (``item:<image>``); ``--part test`` adds
only the fresh test half (read once, by the committed run).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path("/tmp/lhama_naming_views.pt")
VIEWS = ("squash", "pad", "fit", "fit_flip", "grey_fit")  # 5 (8 views took ~1.6 s a picture here)
KINDS = ("pooled", "gem", "stage7", "stage6", "stage5", "logits")


def view(image: Image.Image, name: str) -> Image.Image:
    """One of :data:`VIEWS`: the labeler's own views (:func:`lhama.model.labeler.view`), ``grey_*`` greyed."""
    from lhama.model.labeler import view as labeler_view

    shown = labeler_view(image, name.removeprefix("grey_"))
    return ImageOps.grayscale(shown).convert("RGB") if name.startswith("grey_") else shown


def _kinds(out) -> dict[str, torch.Tensor]:
    """One forward's (views, dim) rows of each feature kind."""
    maps = [m.transpose(1, 2) for m in out.hidden_states]  # (n, C, h*w)
    head = maps[-1].clamp_min(1e-6)
    return {"pooled": out.pooler_output, "gem": head.pow(3).mean(-1).pow(1 / 3), "stage7": maps[7].mean(-1),
            "stage6": maps[6].mean(-1), "stage5": maps[5].mean(-1), "logits": out.logits}


def picture_paths(folder: Path, data_dir: Path, part: str) -> dict[str, Path]:
    """cache key -> picture file for ``part`` "explore" (stamps, fresh pool+dev, old dev) or "test" (fresh test)."""
    import sys
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import names_head as nh
    import naming_openclipart as oc
    from lhama.eval.naming import item_path, read_naming_items
    from lhama.model.names_head import SHIPPED, NamesHead
    from lhama.recipes.default.clipart_names import picture_path, read_clipart_names

    folders = {"tuxpaint_ptbr": data_dir / "images", "tuxpaint_stamps": nh.STAMPS}
    paths = {f"item:{i.image}": item_path(i, folders) for i in read_naming_items(nh.ITEMS)
             if part != "test" and i.image in nh.split_images("dev")}
    wanted = ("test",) if part == "test" else ("pool", "dev")
    paths |= {f"oc:{p.image}": picture_path(folder, p.image) for p in read_clipart_names(oc.LIST) if p.split in wanted}
    if part != "test":
        rows = {r["key"]: r for r in nh.read_tsv(nh.STAMP_NAMES)}
        paths |= {f"stamp:{e.key}": nh.stamp_path(rows[e.key], data_dir) for e in NamesHead.load(SHIPPED).entries}
    return paths


VIEW_SETS = {"squash": ("squash",), "pad": ("pad",), "fit": ("fit",), "grey_fit": ("grey_fit",),
             "squash+pad": ("squash", "pad"), "fit+flip": ("fit", "fit_flip"), "pad+fit": ("pad", "fit"),
             "pad+fit+flip": ("pad", "fit", "fit_flip"), "fit+flip+grey": ("fit", "fit_flip", "grey_fit"),
             "squash+fit+flip": ("squash", "fit", "fit_flip"), "all5": VIEWS}


def _rows(cache: dict, keys: list[str], kind: str, views: tuple[str, ...]) -> torch.Tensor:
    """(len(keys), dim) float rows: ``kind`` averaged over ``views`` (softmax first for logits)."""
    idx = [VIEWS.index(v) for v in views]
    rows = torch.stack([cache[k][kind][idx].float() for k in keys])
    return (rows.softmax(-1) if kind == "logits" else rows).mean(1)


def _nearest(head: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """NamesHead's rule: cosine after subtracting the head's mean -> (best index, cosine) per query."""
    mean = head.mean(0)
    sim = torch.nn.functional.normalize(query - mean, dim=-1) @ torch.nn.functional.normalize(head - mean, dim=-1).T
    best = sim.max(1)
    return best.indices, best.values


def explore_sets():
    """(head keys, head labels, dev pictures) of the session-6 head (shipped stamps + fresh pool) and fresh dev."""
    import sys
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import naming_openclipart as oc
    from lhama.model.names_head import SHIPPED, NamesHead

    shipped = NamesHead.load(SHIPPED).entries
    pool = [p for p in oc.eval_pictures("pool")]
    keys = [f"stamp:{e.key}" for e in shipped] + [f"oc:{p.image}" for p in pool]
    return keys, [e.name for e in shipped] + [p.name for p in pool], oc.eval_pictures("dev")


def explore(args: argparse.Namespace) -> None:
    """Dev only: the forced nearest-label count for each feature kind x view set, and the ImageNet
    note alone (kinds 0.3, no names head) for each view set."""
    from lhama.eval.metrics import names_thing
    from lhama.model.labeler import LabelerConfig, describe
    from lhama.model.towers.imagenet_kinds import KindIndex
    from lhama.model.towers.imagenet_names import class_names

    cache = torch.load(args.cache)
    keys, labels, dev = explore_sets()
    dev_keys = [f"oc:{p.image}" for p in dev]
    usable = sum(any(names_thing(lab, p.accepted) for lab in set(labels)) for p in dev)
    print(f"head {len(keys)} pictures, dev {len(dev)}, some head label accepted for {usable}")
    print("kind\t" + "\t".join(VIEW_SETS))
    for kind in KINDS:
        counts = []
        for views in VIEW_SETS.values():
            best, _ = _nearest(_rows(cache, keys, kind, views), _rows(cache, dev_keys, kind, views))
            counts.append(sum(names_thing(labels[b], p.accepted) for b, p in zip(best.tolist(), dev)))
        print(kind + "\t" + "\t".join(map(str, counts)), flush=True)
    names, index = class_names(), KindIndex.load()
    config = LabelerConfig(style="kinds", kind_confident=0.3)
    notes = []
    for views in VIEW_SETS.values():
        probs = _rows(cache, dev_keys, "logits", views)
        notes.append(sum(names_thing(describe(q, names, config, index), p.accepted) for q, p in zip(probs, dev)))
    print("note alone\t" + "\t".join(map(str, notes)))
    for kind in ("pooled", "gem", "stage7"):
        for shrink in (0.1, 0.3, 1.0):
            print(f"wccn {kind} shrink {shrink}: {_projected(cache, keys, labels, dev, kind, shrink)}", flush=True)


LABELER_SETS = ("squash", "pad", "fit", "squash+pad", "pad+fit", "fit+flip", "pad+fit+flip", "squash+fit+flip")


def grid(args: argparse.Namespace) -> None:
    """Dev only, note alone: for each view set the labeler can use (:data:`LABELER_SETS`), the
    reference kinds note (no names head) and session 6's names grid over a head of the shipped
    stamps + fresh pool seen through the same views; prints the committed rule's pick."""
    import sys
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import naming_openclipart as oc
    from lhama.eval.metrics import names_thing
    from lhama.model.labeler import LabelerConfig, describe
    from lhama.model.names_head import SHIPPED, NamedPicture, NamesHead
    from lhama.model.towers.imagenet_kinds import KindIndex
    from lhama.model.towers.imagenet_names import class_names

    cache, (keys, labels, dev) = torch.load(args.cache), explore_sets()
    names, index, shipped = class_names(), KindIndex.load(), NamesHead.load(SHIPPED).entries
    entries = shipped + tuple(NamedPicture(lab, "", "openclipart") for lab in labels[len(shipped):])
    settings = [{"names_confident": 0.0}] + [dict(zip(oc.GRID, v)) for v in itertools.product(*oc.GRID.values())]
    best = None
    for name in LABELER_SETS:
        views = VIEW_SETS[name]
        head = NamesHead(_rows(cache, keys, "pooled", views), entries)
        pooled, probs = (_rows(cache, [f"oc:{p.image}" for p in dev], k, views) for k in ("pooled", "logits"))
        counts = []
        for setting in settings:
            config = LabelerConfig(style="kinds", kind_confident=0.3, **setting)
            counts.append(sum(names_thing(describe(q, names, config, index, head.nearest(f) if config.names_confident else None),
                                          p.accepted) for q, f, p in zip(probs, pooled, dev)))
            rank = (counts[-1], -len(views), setting["names_confident"], -setting.get("names_yield", 1.0))
            best = max(best or (rank, name, setting), (rank, name, setting))
        print(f"{name}\t" + "\t".join(map(str, counts)), flush=True)
    print(f"pick: {best[1]} {json.dumps(best[2])} ({best[0][0]} of {len(dev)})")


def verdict(args: argparse.Namespace) -> None:
    """The committed rule's dev part: exit 1 unless the candidate names at least ceil(5% of the dev
    pictures) more fresh dev pictures with the LM than the reference, and at least 35 of the old
    naming dev split's 87 by its note alone."""
    import math
    import sys

    ref, cand = (json.loads(Path(f).read_text(encoding="utf-8"))["summary"]["kinds"] for f in args.dev.split(","))
    old = json.loads(args.olddev.read_text(encoding="utf-8"))["rows"][0]
    need = cand["n"] and math.ceil(0.05 * cand["n"])
    passed = cand["named"] - ref["named"] >= need and old["named"] >= 35
    print(f"dev with the LM: reference {ref['named']}/{ref['n']}, candidate {cand['named']}/{cand['n']} (need +{need}); "
          f"old naming dev, note alone: {old['named']}/{old['n']} (need 35) -> {'PASS' if passed else 'FAIL'}", flush=True)
    sys.exit(0 if passed else 1)


def wccn(x: torch.Tensor, y: torch.Tensor, shrink: float) -> torch.Tensor:
    """Within-class whitening of the (samples, dim) rows ``x`` with class ids ``y``: the library's
    :func:`lhama.model.names_head.within_class_whitening` (this diagnosis came first)."""
    from lhama.model.names_head import within_class_whitening

    return within_class_whitening(x, y, shrink)


def _projected(cache: dict, keys: list[str], labels: list[str], dev, kind: str, shrink: float) -> int:
    """Forced nearest-label count on dev after within-class whitening learned on the head's pictures,
    every view of a picture a sample of its label; head rows and queries are the all-view means."""
    from lhama.eval.metrics import names_thing

    ids = {lab: n for n, lab in enumerate(sorted(set(labels)))}
    x = torch.cat([torch.stack([cache[k][kind][v].float() for k in keys]) for v in range(len(VIEWS))])
    y = torch.tensor([ids[lab] for lab in labels] * len(VIEWS))
    mean = x.mean(0)
    w = wccn(x - mean, y, shrink)
    head = (_rows(cache, keys, kind, VIEWS) - mean) @ w
    query = (_rows(cache, [f"oc:{p.image}" for p in dev], kind, VIEWS) - mean) @ w
    best, _ = _nearest(head, query)
    return sum(names_thing(labels[b], p.accepted) for b, p in zip(best.tolist(), dev))


def export(args: argparse.Namespace) -> None:
    """The cached pictures seen through ``--views`` (pooled features and probabilities averaged) in
    the formats of ``naming_openclipart.py`` (``--oc-cache``, fresh pictures by image) and
    ``names_head.py`` (``--item-cache``, old naming pictures as ``item:<image>``), and, with
    ``--head-out``, the session-6 candidate head (shipped stamps + fresh pool) seen the same way."""
    from lhama.model.names_head import SHIPPED, NamedPicture, NamesHead

    cache, views = torch.load(args.cache), VIEWS if args.views == "all" else tuple(args.views.split(","))
    seen = {k: {"pooled": _rows(cache, [k], "pooled", views)[0], "probs": _rows(cache, [k], "logits", views)[0]}
            for k in cache if k.startswith(("oc:", "item:", "stamp:"))}  # the file also holds naming_kinds.py's old cache
    torch.save({k[3:]: v for k, v in seen.items() if k.startswith("oc:")}, args.oc_cache)
    torch.save({k: v for k, v in seen.items() if k.startswith("item:")}, args.item_cache)
    if args.head_out:
        keys, labels, _ = explore_sets()
        entries = NamesHead.load(SHIPPED).entries
        entries += tuple(NamedPicture(lab, "", f"openclipart:{k[3:]}") for k, lab in zip(keys[len(entries):], labels[len(entries):]))
        args.head_out.mkdir(parents=True, exist_ok=True)
        NamesHead(torch.stack([seen[k]["pooled"] for k in keys]), entries).save(args.head_out)
    print(f"views {views}: {sum(k.startswith('oc:') for k in seen)} fresh, {sum(k.startswith('item:') for k in seen)} old naming pictures")


@torch.no_grad()
def features(args: argparse.Namespace) -> None:
    from lhama.data.media import image_to_tensor, load_image
    from lhama.model.towers.efficientnet_lite import lite_image_spec, load_tower
    from lhama.weights.prepare import prepare

    torch.set_num_threads(args.threads)
    tower = load_tower(prepare("efficientnet-lite2")).eval()
    spec = lite_image_spec(tower.config)
    paths = picture_paths(args.folder, args.data_dir, args.part)
    cache = torch.load(args.cache) if args.cache.is_file() else {}
    todo = [k for k in sorted(paths) if k not in cache]
    for n, key in enumerate(todo):
        image = load_image(paths[key])
        shown = [v for v in VIEWS if v in args.views.split(",")] if args.views != "all" else list(VIEWS)
        out = _kinds(tower(torch.stack([image_to_tensor(view(image, v), spec) for v in shown]), output_hidden_states=True))
        cache[key] = {k: torch.full((len(VIEWS), v.shape[1]), float("nan")).index_copy(
            0, torch.tensor([VIEWS.index(s) for s in shown]), v.float()).half() for k, v in out.items()}  # views not shown: NaN
        if n % 100 == 99 or n == len(todo) - 1:
            print(f"{n + 1}/{len(todo)}", flush=True)
            torch.save(cache, args.cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("features", "explore", "export", "grid", "verdict"))
    parser.add_argument("--folder", type=Path, default=Path("/usr/share/openclipart/png"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/tuxpaint_ptbr"))
    parser.add_argument("--part", choices=("explore", "test"), default="explore")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--views", default="all", help="features: the views to compute (others NaN); export: to average")
    parser.add_argument("--oc-cache", type=Path, default=Path("/tmp/lhama_naming_views_oc.pt"))
    parser.add_argument("--item-cache", type=Path, default=Path("/tmp/lhama_naming_views_items.pt"))
    parser.add_argument("--head-out", type=Path, default=None)
    parser.add_argument("--dev", default=None, help="verdict: the reference's and the candidate's naming_fusion.py dev files, comma-separated")
    parser.add_argument("--olddev", type=Path, default=None, help="verdict: the candidate's names_head.py score --out file (old dev)")
    args = parser.parse_args()
    {"features": features, "explore": explore, "export": export, "grid": grid, "verdict": verdict}[args.step](args)


if __name__ == "__main__":
    main()
