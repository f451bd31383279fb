"""A names head in a within-class-whitened space for the labeler (issue #26 session 8).

Session 7's diagnosis (``naming_views_wccn.py``) found that a within-class whitening learned on the
names head's own pictures moves the forced nearest label on the fresh dev half from 37 to 51
(pooled) / 56 (GeM), but adds little through the labeler's note at raw-cosine thresholds. Now
:class:`lhama.model.names_head.NamesHead` can hold the projection (and GeM pooling), so the head can
ship; this script learns it, chooses thresholds for the whitened cosine on the fresh DEV half, and
exports the chosen head. Reads the cache of ``naming_views.py features`` (views x feature kinds).

    python benchmarks/naming_whiten.py explore        # dev only: forced counts, the union bound
    python benchmarks/naming_whiten.py grid           # dev only: the committed rule's candidates and pick
    python benchmarks/naming_whiten.py export --pooling mean --head-out DIR   # head + scorer caches

The projection: :func:`lhama.model.names_head.within_class_whitening` (shrink :data:`SHRINK`) of
the 751 head pictures (309 Tux Paint stamps + 442 fresh-pool pictures), every one of the five
cached views of a picture a sample of its label; the head's rows and the queries are the features
averaged over the labeler's views (:data:`LABELER_VIEWS`), as the labeler computes them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import naming_views as nv  # noqa: E402

SHRINK = 0.1  # session 7's diagnosis (dev): 0.1 beat 0.3 and 1.0 for pooled and GeM
LABELER_VIEWS = ("squash", "fit", "fit_flip")  # the shipped labeler's views (unchanged: no extra tower pass)
KIND = {"mean": "pooled", "gem": "gem"}  # head pooling -> naming_views.py cache kind
GRID = {"pooling": ("mean", "gem"), "names_confident": (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6),
        "names_yield": (1.0, 0.7, 0.5, 0.3)}  # committed before the grid was run (docs/default-model.md)
DEFAULT_CACHE = Path("/tmp/lhama_naming_views.pt")  # naming_views.py's cache


def whitened_head(cache: dict, pooling: str):
    """The head of the 751 pictures (raw features over :data:`LABELER_VIEWS`) with its whitening."""
    from lhama.model.names_head import SHIPPED, NamedPicture, NamesHead, within_class_whitening

    keys, labels, _ = nv.explore_sets()
    entries = NamesHead.load(SHIPPED).entries
    entries += tuple(NamedPicture(lab, "", f"openclipart:{k[3:]}") for k, lab in zip(keys[len(entries):], labels[len(entries):]))
    ids = {lab: n for n, lab in enumerate(sorted(set(labels)))}
    kind = KIND[pooling]
    x = torch.cat([torch.stack([cache[k][kind][v].float() for k in keys]) for v in range(len(nv.VIEWS))])
    y = torch.tensor([ids[lab] for lab in labels] * len(nv.VIEWS))
    w = within_class_whitening(x - x.mean(0), y, SHRINK)
    return NamesHead(nv._rows(cache, keys, kind, LABELER_VIEWS), entries, w, pooling)


def _dev(cache: dict, pooling: str):
    dev = nv.explore_sets()[2]
    keys = [f"oc:{p.image}" for p in dev]
    return dev, nv._rows(cache, keys, KIND[pooling], LABELER_VIEWS), nv._rows(cache, keys, "logits", LABELER_VIEWS)


def _count(head, dev, feats, probs, setting: dict) -> int:
    from lhama.eval.metrics import names_thing
    from lhama.model.labeler import LabelerConfig, describe
    from lhama.model.towers.imagenet_kinds import KindIndex
    from lhama.model.towers.imagenet_names import class_names

    names, index = class_names(), KindIndex.load()
    config = LabelerConfig(style="kinds", kind_confident=0.3, views=LABELER_VIEWS, **setting)
    return sum(names_thing(describe(q, names, config, index, head.nearest(f) if head else None), p.accepted)
               for q, f, p in zip(probs, feats, dev))


def explore(args: argparse.Namespace) -> None:
    """Dev only: forced nearest-label counts (raw and whitened), the note alone, and how many dev
    pictures the note or the forced whitened label names (an upper bound for any threshold)."""
    from lhama.eval.metrics import names_thing
    from lhama.model.labeler import LabelerConfig, describe
    from lhama.model.names_head import NamesHead
    from lhama.model.towers.imagenet_kinds import KindIndex
    from lhama.model.towers.imagenet_names import class_names

    cache = torch.load(args.cache)
    config, names, index = LabelerConfig(style="kinds", kind_confident=0.3), class_names(), KindIndex.load()
    for pooling in GRID["pooling"]:
        head = whitened_head(cache, pooling)
        raw = NamesHead(head.features, head.entries)
        dev, feats, probs = _dev(cache, pooling)
        forced = [names_thing(head.nearest(f)[0].name, p.accepted) for f, p in zip(feats, dev)]
        print(f"{pooling}: forced raw {sum(names_thing(raw.nearest(f)[0].name, p.accepted) for f, p in zip(feats, dev))}, "
              f"whitened {sum(forced)} of {len(dev)}; note alone {_count(None, dev, feats, probs, {})}", flush=True)
        note = [names_thing(describe(q, names, config, index), p.accepted) for q, p in zip(probs, dev)]
        print(f"  the note or the forced whitened label right (a bound for any threshold): "
              f"{sum(a or b for a, b in zip(note, forced))}; both: {sum(a and b for a, b in zip(note, forced))}")
        sims = torch.tensor([head.nearest(f)[1] for f in feats])
        right = torch.tensor(forced)
        for lo in (0.2, 0.3, 0.4, 0.5, 0.6):
            sel = sims >= lo
            print(f"  whitened cosine >= {lo}: {int(sel.sum())} pictures, forced label right for {int(right[sel].sum())}")


def grid(args: argparse.Namespace) -> None:
    """Dev only, note alone: every :data:`GRID` setting over the shipped labeler's kinds note, and
    the committed rule's pick (most named; ties to mean pooling, the higher names_confident, the
    lower names_yield)."""
    cache, rows = torch.load(args.cache), []
    for pooling in GRID["pooling"]:
        head = whitened_head(cache, pooling)
        dev, feats, probs = _dev(cache, pooling)
        for confident, yield_ in itertools.product(GRID["names_confident"], GRID["names_yield"]):
            setting = {"names_confident": confident, "names_yield": yield_}
            rows.append({"pooling": pooling, **setting, "named": _count(head, dev, feats, probs, setting)})
        print(pooling + "\t" + "\t".join(str(r["named"]) for r in rows if r["pooling"] == pooling), flush=True)
    best = max(rows, key=lambda r: (r["named"], r["pooling"] == "mean", r["names_confident"], -r["names_yield"]))
    print("pick: " + json.dumps(best))
    if args.out:
        args.out.write_text(json.dumps({"shrink": SHRINK, "views": LABELER_VIEWS, "rows": rows, "pick": best}, indent=1) + "\n")


def export(args: argparse.Namespace) -> None:
    """The whitened head (``--head-out``) and the scorers' caches (``naming_openclipart.py``'s by
    image, ``names_head.py``'s as ``item:<image>``) with ``pooled`` = the features the head wants."""
    cache = torch.load(args.cache)
    head = whitened_head(cache, args.pooling)
    args.head_out.mkdir(parents=True, exist_ok=True)
    head.save(args.head_out)
    kind = KIND[args.pooling]
    seen = {k: {"pooled": nv._rows(cache, [k], kind, LABELER_VIEWS)[0], "probs": nv._rows(cache, [k], "logits", LABELER_VIEWS)[0]}
            for k in cache if k.startswith(("oc:", "item:"))}
    torch.save({k[3:]: v for k, v in seen.items() if k.startswith("oc:")}, args.oc_cache)
    torch.save({k: v for k, v in seen.items() if k.startswith("item:")}, args.item_cache)
    print(f"{args.pooling}: head {len(head.entries)} pictures -> {args.head_out}; "
          f"{sum(k.startswith('oc:') for k in seen)} fresh, {sum(k.startswith('item:') for k in seen)} old naming pictures")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("explore", "grid", "export"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=None, help="grid: write the rows and the pick (JSON)")
    parser.add_argument("--pooling", choices=GRID["pooling"], default="mean")
    parser.add_argument("--head-out", type=Path, default=Path("/tmp/lhama_naming_whiten_head"))
    parser.add_argument("--oc-cache", type=Path, default=Path("/tmp/lhama_naming_whiten_oc.pt"))
    parser.add_argument("--item-cache", type=Path, default=Path("/tmp/lhama_naming_whiten_items.pt"))
    args = parser.parse_args()
    {"explore": explore, "grid": grid, "export": export}[args.step](args)


if __name__ == "__main__":
    main()
