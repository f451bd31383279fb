"""Fresh naming pictures and names-head pool from Debian's openclipart-png (issue #26 session 6).

    apt-get install -y openclipart-png     # public domain; /usr/share/openclipart/png
    python benchmarks/naming_openclipart.py split --folder /usr/share/openclipart/png --list HAND.tsv   # once, before any model
    python benchmarks/naming_openclipart.py features --folder /usr/share/openclipart/png --threads 1     # heavy: ~930 pictures
    python benchmarks/naming_openclipart.py guard      # leakage rule (below) -> benchmarks/data/openclipart_excluded.tsv
    python benchmarks/naming_openclipart.py head --out DIR                  # shipped Tux Paint head + the fresh pool
    python benchmarks/naming_openclipart.py score --split dev [--head DIR]   # note alone: the reference and the grid
    python benchmarks/naming_openclipart.py choose --grid DEV_GRID.json                # the rule's pick
    python benchmarks/naming_openclipart.py score --split test --head DIR --only '{"names_confident": ..}'  # once
    bash benchmarks/naming_openclipart_run.sh /usr/share/openclipart/png    # all of it, with the LM (one heavy slot)
    python benchmarks/naming_openclipart.py diagnose --head DIR    # dev only: each way of reading the pool, always speaking

``split`` reads a hand-written list (image, english, name, accepted), drops byte-identical copies
(the first listed stays), joins near-duplicate drawings by pixels and writes
``benchmarks/data/openclipart_names.tsv`` with each picture's group and split
(:mod:`lhama.recipes.default.clipart_names`). ``features`` caches EfficientNet-Lite2's pooled
features and class probabilities (the labeler's own preprocessing). ``guard`` applies the rule fixed
before any feature was computed (docs/default-model.md): a dev/test picture whose pooled-feature
cosine is >= 0.90 with a pool picture or a shipped names-head picture (Tux Paint) is left out of the
evaluation; a pool picture with cosine >= 0.90 with a picture of ``naming_heldout.tsv`` is left out
of the pool.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
from pathlib import Path

import torch

from lhama.eval.metrics import names_thing
from lhama.files import atomic_write_text
from lhama.recipes.default.clipart_names import (COLUMNS, drawing_signature, groups, picture_path, pool_head,
                                                 prototype_head,
                                                 read_clipart_names, same_drawing, split_of)

DATA = Path(__file__).with_name("data")
LIST, EXCLUDED = DATA / "openclipart_names.tsv", DATA / "openclipart_excluded.tsv"
CACHE = Path("/tmp/lhama_openclipart_features.pt")
OLD_CACHE = Path("/tmp/lhama_names_head_features.pt")  # benchmarks/names_head.py features (naming_heldout items)
COSINE_NEAR = 0.90  # fixed before any feature was computed
GRID = {"names_confident": (0.3, 0.4, 0.5, 0.6, 0.7), "names_yield": (1.0, 0.5)}  # fixed before any score
HEADER = """# Fresh named pictures for issue #26 session 6: Debian openclipart-png 1:0.18+dfsg-19 (public domain),
# `image` = path under /usr/share/openclipart/png without ".png" (referenced, not copied).
# english: what the picture shows; name: the names head's pt-BR label (with its article); accepted:
#   |-separated pt-BR names that count as naming it (specific first, then basic-level names), written by hand.
# group/split: made by `benchmarks/naming_openclipart.py split` before any model saw a picture
#   (lhama.recipes.default.clipart_names: same first file-name word or same drawing by pixels = one group;
#   sha256(group) -> pool / pool / dev / test). pool: may train the names head; dev: choose; test: read once.
"""


def split(args: argparse.Namespace) -> None:
    rows = [r.split("\t") for r in args.list.read_text(encoding="utf-8").splitlines() if r and not r.startswith("#")]
    rows = [r[:4] for r in rows if r[:4] != COLUMNS[:4]]
    seen, kept = set(), []
    for row in rows:
        digest = hashlib.sha256(picture_path(args.folder, row[0]).read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept.append(row)
    signatures = [drawing_signature(picture_path(args.folder, r[0])) for r in kept]
    pairs = same_drawing(torch.stack([s[0] for s in signatures]), torch.stack([s[1] for s in signatures]))
    named = groups([r[0] for r in kept], pairs)
    lines = ["\t".join(COLUMNS)] + ["\t".join(r + [g, split_of(g)]) for r, g in zip(kept, named)]
    atomic_write_text(args.out, HEADER + "\n".join(lines) + "\n")
    counts = {s: sum(split_of(g) == s for g in named) for s in ("pool", "dev", "test")}
    print(f"{len(rows)} listed, {len(rows) - len(kept)} byte copies dropped, {len(set(named))} groups; {counts}")


@torch.no_grad()
def features(args: argparse.Namespace) -> None:
    from lhama.data.media import image_to_tensor, load_image
    from lhama.model.towers.efficientnet_lite import lite_image_spec, load_tower
    from lhama.weights.prepare import prepare

    torch.set_num_threads(args.threads)
    images = [p.image for p in read_clipart_names(LIST)]
    tower = load_tower(prepare("efficientnet-lite2")).eval()
    spec = lite_image_spec(tower.config)
    out = {}
    for start in range(0, len(images), 16):
        batch = images[start:start + 16]
        pixels = torch.stack([image_to_tensor(load_image(picture_path(args.folder, i)), spec) for i in batch])
        result = tower(pixels, output_hidden_states=False)
        for n, image in enumerate(batch):
            out[image] = {"pooled": result.pooler_output[n].clone(), "probs": torch.softmax(result.logits[n].float(), -1)}
        print(f"{start + len(batch)}/{len(images)}", flush=True)
    torch.save(out, args.cache)


def _unit(rows: list[torch.Tensor]) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.stack(rows).float(), dim=-1)


def guard(args: argparse.Namespace) -> None:
    from lhama.model.names_head import SHIPPED, NamesHead

    cache, pictures = torch.load(args.cache), read_clipart_names(LIST)
    pool = [p for p in pictures if p.split == "pool"]
    old_items = [v["pooled"] for k, v in torch.load(OLD_CACHE).items() if k.startswith("item:")]
    pool_unit, old_unit = _unit([cache[p.image]["pooled"] for p in pool]), _unit(old_items)
    shipped_unit = torch.nn.functional.normalize(NamesHead.load(SHIPPED).features, dim=-1)
    lines = ["# Fresh pictures left out by the leakage rule (benchmarks/naming_openclipart.py guard).", "image\tsplit\treason"]
    for p in pictures:
        own = _unit([cache[p.image]["pooled"]])[0]
        if p.split == "pool":
            near = float((old_unit @ own).max())
            if near >= COSINE_NEAR:
                lines.append(f"{p.image}\tpool\tcosine {near:.3f} with a naming_heldout.tsv picture")
            continue
        to_pool, to_shipped = float((pool_unit @ own).max()), float((shipped_unit @ own).max())
        if max(to_pool, to_shipped) >= COSINE_NEAR:
            lines.append(f"{p.image}\t{p.split}\tcosine {to_pool:.3f} with the fresh pool, {to_shipped:.3f} with the shipped head")
    atomic_write_text(EXCLUDED, "\n".join(lines) + "\n")
    print(f"excluded {len(lines) - 2}: see {EXCLUDED}")


def excluded() -> set[str]:
    rows = [r for r in EXCLUDED.read_text(encoding="utf-8").splitlines() if r and not r.startswith("#")]
    return {r.split("\t")[0] for r in rows[1:]}


def head(args: argparse.Namespace) -> None:
    from lhama.model.names_head import SHIPPED, NamesHead

    cache, shipped, out = torch.load(args.cache), NamesHead.load(SHIPPED), excluded()
    pool = [p for p in read_clipart_names(LIST) if p.split == "pool" and p.image not in out]
    args.out.mkdir(parents=True, exist_ok=True)
    built = pool_head(shipped, pool, {k: v["pooled"] for k, v in cache.items()})
    (prototype_head(built) if args.prototypes else built).save(args.out)
    print(f"head: {len(shipped.entries)} shipped + {len(pool)} fresh pool pictures{' as prototypes' if args.prototypes else ''} -> {args.out}")


def eval_pictures(part: str):
    out = excluded()
    return [p for p in read_clipart_names(LIST) if p.split == part and p.image not in out]


def score(args: argparse.Namespace) -> None:
    from lhama.model.labeler import LabelerConfig, describe
    from lhama.model.names_head import NamesHead
    from lhama.model.towers.imagenet_kinds import KindIndex
    from lhama.model.towers.imagenet_names import class_names

    cache, items = torch.load(args.cache), eval_pictures(args.split)
    names, kinds = class_names(), KindIndex.load()
    names_head = NamesHead.load(args.head) if args.head else None
    settings = [{"names_confident": 0.0}] + ([dict(zip(GRID, v)) for v in itertools.product(*GRID.values())] if names_head else [])
    settings = [json.loads(args.only)] if args.only else settings
    rows = []
    for setting in settings:
        config = LabelerConfig(style="kinds", kind_confident=0.3, **setting)
        notes = {f"{p.image}.png": describe(cache[p.image]["probs"], names, config, kinds,
                                            names_head.nearest(cache[p.image]["pooled"]) if config.names_confident else None)
                 for p in items}
        named = sum(names_thing(notes[f"{p.image}.png"], p.accepted) for p in items)
        rows.append({"setting": setting, "named": named, "n": len(items), "notes": notes})
        print(f"{json.dumps(setting)}\t{named}/{len(items)}", flush=True)
    if args.out:
        atomic_write_text(args.out, json.dumps({"split": args.split, "head": str(args.head), "rows": rows},
                                               indent=1, ensure_ascii=False) + "\n")


def choose(args: argparse.Namespace) -> None:
    """Print the dev-best setting of a ``score --head`` grid (the committed rule): the most pictures
    named; ties to the higher names_confident, then to names_yield 0.5."""
    rows = [r for r in json.loads(args.grid.read_text(encoding="utf-8"))["rows"] if r["setting"].get("names_confident")]
    best = max(rows, key=lambda r: (r["named"], r["setting"]["names_confident"], -r["setting"]["names_yield"]))
    print(json.dumps(best["setting"]))


def _right(labels: list[str], pictures) -> int:
    return sum(names_thing(label, p.accepted) for label, p in zip(labels, pictures))


def _probe(x: torch.Tensor, y: torch.Tensor, classes: int) -> torch.Tensor:
    """A linear probe (cross-entropy, weight decay 1e-4, Adam 0.05, 400 steps) -> weights."""
    torch.manual_seed(0)
    w = torch.zeros(x.shape[1] + 1, classes, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    xb = torch.cat([x, torch.ones(len(x), 1)], 1)
    for _ in range(400):
        loss = torch.nn.functional.cross_entropy(xb @ w, y) + 1e-4 * (w[:-1] ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach()


def diagnose(args: argparse.Namespace) -> None:
    """Dev only: how often each way of using the pool's features names a dev picture when it
    always speaks (no threshold), and how many dev pictures some head label would name."""
    from lhama.model.names_head import NamesHead

    cache, dev, head = torch.load(args.cache), eval_pictures("dev"), NamesHead.load(args.head)
    pooled = [cache[p.image]["pooled"] for p in dev]
    labels = sorted({e.name for e in head.entries})
    print(f"dev {len(dev)}; some head label accepted: {sum(any(names_thing(l, p.accepted) for l in labels) for p in dev)}")
    print(f"nearest picture: {_right([head.nearest(f)[0].name for f in pooled], dev)}")
    print(f"nearest prototype: {_right([prototype_head(head).nearest(f)[0].name for f in pooled], dev)}")
    unit = torch.nn.functional.normalize(head.features - head.mean, dim=-1)
    votes = []
    for f in pooled:
        top, tally = (unit @ torch.nn.functional.normalize(f.float() - head.mean, dim=-1)).topk(5), {}
        for s, i in zip(top.values.tolist(), top.indices.tolist()):
            tally[head.entries[i].name] = tally.get(head.entries[i].name, 0.0) + s
        votes.append(max(tally, key=tally.get))
    print(f"5-nearest vote: {_right(votes, dev)}")
    pool = [p for p in read_clipart_names(LIST) if p.split == "pool" and p.image not in excluded()]
    classes = sorted({p.accepted[0] for p in pool})
    x = torch.stack([cache[p.image]["pooled"].float() for p in pool])
    mean, y = x.mean(0), torch.tensor([classes.index(p.accepted[0]) for p in pool])
    w = _probe(10 * torch.nn.functional.normalize(x - mean, dim=-1), y, len(classes))
    d = 10 * torch.nn.functional.normalize(torch.stack(pooled).float() - mean, dim=-1)
    guess = (torch.cat([d, torch.ones(len(d), 1)], 1) @ w).argmax(1).tolist()
    print(f"linear probe on the fresh pool ({len(classes)} labels): {_right([classes[g] for g in guess], dev)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("split", "features", "guard", "head", "score", "choose", "diagnose"))
    parser.add_argument("--folder", type=Path, default=None, help="openclipart-png's png folder (split, features)")
    parser.add_argument("--list", type=Path, default=None, help="split: the hand-written list")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--head", type=Path, default=None, help="score: a names-head folder (none: the shipped kinds note only)")
    parser.add_argument("--only", default=None, help='one setting as JSON, e.g. \'{"names_confident": 0.5, "names_yield": 0.5}\'')
    parser.add_argument("--prototypes", action="store_true", help="head: one row per label (candidate 2)")
    parser.add_argument("--grid", type=Path, default=None, help="choose: a score --head --out file of the dev grid")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.step in ("split", "features") and args.folder is None:
        parser.error(f"{args.step} needs --folder (openclipart-png's png folder)")
    if args.step == "split":
        args.out = args.out or LIST
    {"split": split, "features": features, "guard": guard, "head": head, "score": score, "choose": choose, "diagnose": diagnose}[args.step](args)


if __name__ == "__main__":
    main()
