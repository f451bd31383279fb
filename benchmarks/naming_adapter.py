"""A trained adapter for the names head (issue #26 session 9).

Session 8: a within-class whitening of EfficientNet-Lite2's features helps the names head when it
always speaks, but its cosine is a weak confidence, and no threshold over it gets the labeler's note
past 70 of 221 fresh dev pictures. This script trains small adapters on the names head's own
pictures only (the shipped 309 Tux Paint stamps + the fresh pool's 442 clip-art pictures; never a
dev, test or old-split picture) and reads them first by cross-validation over the pool's groups:

    python benchmarks/naming_adapter.py cv       # train split only: 5 folds over the pool's groups
    python benchmarks/naming_adapter.py cv --adapters whiten --train-share 0.5   # a learning curve
    python benchmarks/naming_adapter.py selector --adapter whiten   # train split only: a trained head-vs-note selector
    python benchmarks/naming_adapter.py grid --adapter lda512 --out F.json   # fresh dev, the committed rule
    python benchmarks/naming_adapter.py misses     # fresh dev, diagnosis: what the shipped labeler misses
    python benchmarks/naming_adapter.py nocrop --out F.json   # fresh + old dev: no crop views where nothing crops

Every candidate is a :class:`lhama.model.names_head.NamesHead` the labeler can ship as it is: the
head's pictures (features averaged over the labeler's views) and a (width, width') projection
applied before the centred cosine. Adapters (all fitted on the training pictures only, every
cached view of a picture a sample of its label):

* ``raw``     - no projection (session 7's shipped head);
* ``whiten``  - within-class whitening, shrink 0.1 (session 8);
* ``lda``     - the whitening followed by the top ``dims`` directions of the between-label
  scatter of the whitened label means (linear discriminant analysis);
* ``trained`` - a (width, dims) projection initialised at ``lda`` and trained with a soft
  nearest-picture loss (each view sample's softmax over its cosines to the other training
  pictures, temperature :data:`TEMPERATURE`; the mass on pictures of its own label maximised).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import naming_views as nv  # noqa: E402

LABELER_VIEWS = ("squash", "fit", "fit_flip")
SHRINK = 0.1
TEMPERATURE = 0.1
FOLDS = 5
DEFAULT_CACHE = Path("/tmp/lhama_naming_views.pt")
KIND = {"mean": "pooled", "gem": "gem"}


def train_set():
    """(keys, labels, groups, accepted or None) of the head's 751 pictures (stamps first)."""
    import naming_openclipart as oc
    from lhama.model.names_head import SHIPPED, NamesHead

    shipped = NamesHead.load(SHIPPED).entries
    pool = oc.eval_pictures("pool")
    keys = [f"stamp:{e.key}" for e in shipped] + [f"oc:{p.image}" for p in pool]
    labels = [e.name for e in shipped] + [p.name for p in pool]
    groups = [f"stamp:{e.key}" for e in shipped] + [f"oc:{p.group}" for p in pool]
    return keys, labels, groups, [None] * len(shipped) + [p.accepted for p in pool]


def view_samples(cache: dict, keys: list[str], kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(views * pictures, width) rows of every cached view and the picture index of each row."""
    views = len(nv.VIEWS)
    x = torch.cat([torch.stack([cache[k][kind][v].float() for k in keys]) for v in range(views)])
    return x, torch.arange(len(keys)).repeat(views)


def whitening(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, W) of the training rows: W whitens their within-class scatter (shrink :data:`SHRINK`)."""
    from lhama.model.names_head import within_class_whitening

    mean = x.mean(0)
    return mean, within_class_whitening(x - mean, y, SHRINK)




def lda(x: torch.Tensor, y: torch.Tensor, dims: int) -> torch.Tensor:
    """(width, dims): the whitening, then the top ``dims`` principal directions of the label means."""
    mean, w = whitening(x, y)
    z = (x - mean) @ w
    means = torch.stack([z[y == c].mean(0) for c in y.unique()])
    _, _, v = torch.linalg.svd(means - means.mean(0), full_matrices=False)
    return w @ v[:dims].T


def train_projection(x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor, row_y: torch.Tensor,
                     dims: int, steps: int) -> torch.Tensor:
    """``lda`` trained further: ``x`` (views * pictures, width) view rows of label ids ``y`` (sample
    i is picture i % pictures); ``rows`` the pictures' view means with ``row_y``. A sample's own
    picture is masked out of its softmax."""
    w0 = lda(x, y, dims)
    mean = rows.mean(0)
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=0.01 * float(w0.std()))
    same = (y[:, None] == row_y[None, :]).float()
    own = torch.arange(len(x)) % len(rows)
    keep = same.sum(-1) > 1
    for _ in range(steps):
        q = torch.nn.functional.normalize((x - mean) @ w, dim=-1)
        r = torch.nn.functional.normalize((rows - mean) @ w, dim=-1)
        logits = (q @ r.T / TEMPERATURE).index_put((torch.arange(len(x)), own), torch.tensor(-1e4))
        loss = -(logits.softmax(-1) * same).sum(-1).clamp_min(1e-6).log()[keep].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach()


def fit_adapter(name: str, cache: dict, keys: list[str], label_ids: torch.Tensor, kind: str) -> torch.Tensor | None:
    """The projection of adapter ``name`` ("raw", "whiten", "lda<dims>", "trained<dims>-<steps>")
    fitted on the pictures ``keys`` only."""
    if name == "raw":
        return None
    x, pic = view_samples(cache, keys, kind)
    y = label_ids[pic]
    if name == "whiten":
        return whitening(x, y)[1]
    if name.startswith("lda"):
        return lda(x, y, int(name[3:]))
    dims, steps = (int(v) for v in name[7:].split("-"))
    return train_projection(x, y, nv._rows(cache, keys, kind, LABELER_VIEWS), label_ids, dims, steps)


class SoftmaxHead:
    """Diagnosis only (the labeler has no such head): a linear softmax over the training labels on
    the whitened, unit-normalised features (scale 10, weight decay ``decay``, Adam 0.05, 150 steps);
    ``nearest`` gives the most probable label and its probability."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, label_names: list[str], decay: float) -> None:
        self.mean, self.w = whitening(x, y)
        self.names, z = label_names, self._z(x)
        torch.manual_seed(0)
        weights = torch.zeros(z.shape[1] + 1, len(label_names), requires_grad=True)
        opt = torch.optim.Adam([weights], lr=0.05)
        for _ in range(150):
            loss = torch.nn.functional.cross_entropy(z @ weights[:-1] + weights[-1], y) + decay * (weights[:-1] ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.weights = weights.detach()

    def _z(self, x: torch.Tensor) -> torch.Tensor:
        return 10 * torch.nn.functional.normalize((x - self.mean) @ self.w, dim=-1)

    def nearest(self, pooled: torch.Tensor):
        from lhama.model.names_head import NamedPicture

        p = (self._z(pooled[None].float()) @ self.weights[:-1] + self.weights[-1]).softmax(-1)[0]
        return NamedPicture(self.names[int(p.argmax())], "", ""), float(p.max())


def fold_of(group: str) -> int:
    return int(hashlib.sha256(group.encode()).hexdigest(), 16) % FOLDS


def _kept(group: str, share: float) -> bool:
    """Whether a pool group stays in training at ``share`` (a fixed hash subset, nested by share)."""
    return int(hashlib.sha256(f"share:{group}".encode()).hexdigest(), 16) % 1000 < share * 1000


THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 19))
YIELDS = (1.0, 0.7, 0.5, 0.3)


def _notes_right(head, feats, probs, accepted) -> dict[tuple[float, float], int]:
    """Held-out pictures named by the kinds note with ``head`` at every (threshold, yield)."""
    from lhama.eval.metrics import names_thing
    from lhama.model.labeler import LabelerConfig, describe
    from lhama.model.towers.imagenet_kinds import KindIndex
    from lhama.model.towers.imagenet_names import class_names

    names, index = class_names(), KindIndex.load()
    nearest = [head.nearest(f) for f in feats]
    out = {}
    for t, yl in itertools.product((0.0,) + THRESHOLDS, YIELDS):
        config = LabelerConfig(style="kinds", kind_confident=0.3, views=LABELER_VIEWS, names_confident=t, names_yield=yl)
        out[(t, yl)] = sum(names_thing(describe(q, names, config, index, n if t else None), a)
                           for q, n, a in zip(probs, nearest, accepted))
    return out


def cv(args: argparse.Namespace) -> None:
    """Train split only: for each adapter, 5 folds over the pool's groups (stamps always train);
    held-out pool pictures named by the forced nearest label and by the note at the best shared
    (threshold, yield) summed over folds."""
    from lhama.eval.metrics import names_thing
    from lhama.model.names_head import NamedPicture, NamesHead

    cache = torch.load(args.cache)
    keys, labels, groups, accepted = train_set()
    ids = {lab: n for n, lab in enumerate(sorted(set(labels)))}
    label_ids = torch.tensor([ids[lab] for lab in labels])
    folds = [fold_of(g) if a is not None else -1 for g, a in zip(groups, accepted)]
    for name in args.adapters.split(","):
        forced, notes, n = 0, {}, 0
        for f in range(FOLDS):
            tr = [i for i, k in enumerate(folds) if k != f and (k < 0 or _kept(groups[i], args.train_share))]
            te = [i for i, k in enumerate(folds) if k == f]
            tr_keys, te_keys = [keys[i] for i in tr], [keys[i] for i in te]
            if name.startswith("softmax"):
                x, pic = view_samples(cache, tr_keys, KIND[args.pooling])
                head = SoftmaxHead(x, label_ids[tr][pic], sorted(ids), float(name[7:]))
            else:
                w = fit_adapter(name, cache, tr_keys, label_ids[tr], KIND[args.pooling])
                head = NamesHead(nv._rows(cache, tr_keys, KIND[args.pooling], LABELER_VIEWS),
                                 tuple(NamedPicture(labels[i], "", keys[i]) for i in tr), w, args.pooling)
            feats = nv._rows(cache, te_keys, KIND[args.pooling], LABELER_VIEWS)
            probs = nv._rows(cache, te_keys, "logits", LABELER_VIEWS)
            acc = [accepted[i] for i in te]
            forced += sum(names_thing(head.nearest(q)[0].name, a) for q, a in zip(feats, acc))
            for k, v in _notes_right(head, feats, probs, acc).items():
                notes[k] = notes.get(k, 0) + v
            n += len(te)
        best = max(notes, key=notes.get)
        print(f"{args.pooling} {name} (pool share {args.train_share}): forced {forced}/{n}; note alone {notes[(0.0, 1.0)]}; "
              f"best note {notes[best]} at {best}", flush=True)


def whole_head(cache: dict, adapter: str, pooling: str):
    """The candidate head: all 751 pictures (rows averaged over :data:`LABELER_VIEWS`) with the
    adapter fitted on all of them."""
    from lhama.model.names_head import NamedPicture, NamesHead

    keys, labels, _, _ = train_set()
    ids = {lab: n for n, lab in enumerate(sorted(set(labels)))}
    label_ids = torch.tensor([ids[lab] for lab in labels])
    w = fit_adapter(adapter, cache, keys, label_ids, KIND[pooling])
    sources = [k.replace("oc:", "openclipart:").replace("stamp:", "") for k in keys]
    entries = tuple(NamedPicture(lab, "", key) for key, lab in zip(sources, labels))
    return NamesHead(nv._rows(cache, keys, KIND[pooling], LABELER_VIEWS), entries, w, pooling)


def grid(args: argparse.Namespace) -> None:
    """Fresh dev, note alone: the candidate head at every (names_confident, names_yield) of
    :data:`THRESHOLDS` x :data:`YIELDS`; the committed rule's pick (most named; ties to the higher
    names_confident, then the lower names_yield)."""
    import json

    import naming_openclipart as oc

    cache, dev = torch.load(args.cache), oc.eval_pictures("dev")
    keys = [f"oc:{p.image}" for p in dev]
    head = whole_head(cache, args.adapter, args.pooling)
    counts = _notes_right(head, nv._rows(cache, keys, KIND[args.pooling], LABELER_VIEWS),
                          nv._rows(cache, keys, "logits", LABELER_VIEWS), [p.accepted for p in dev])
    for yl in YIELDS:
        print(f"yield {yl}\t" + "\t".join(f"{t}:{counts[(t, yl)]}" for t in THRESHOLDS), flush=True)
    best = max((k for k in counts if k[0]), key=lambda k: (counts[k], k[0], -k[1]))
    print(f"no head {counts[(0.0, 1.0)]}; pick {args.pooling} {args.adapter} names_confident {best[0]} "
          f"names_yield {best[1]}: {counts[best]} of {len(dev)}")
    if args.out:
        rows = [{"names_confident": t, "names_yield": yl, "named": v} for (t, yl), v in counts.items()]
        pick = {"names_confident": best[0], "names_yield": best[1], "named": counts[best]}
        out = {"adapter": args.adapter, "pooling": args.pooling, "n": len(dev), "rows": rows, "pick": pick}
        args.out.write_text(json.dumps(out, indent=1) + "\n")


CROP_AREA = 0.98  # fixed before any dev score: a content box covering this much of the picture crops nothing
NOCROP_VIEWS = {"B1": ("squash",), "B2": ("squash", "pad")}


def crops(path: Path) -> bool:
    """Whether the labeler's ``fit`` view crops the picture: its content box (pixels darker than
    FIT_WHITE) covers less than :data:`CROP_AREA` of it."""
    from lhama.data.media import load_image
    from lhama.model.labeler import FIT_WHITE
    from PIL import ImageOps

    image = load_image(path)
    box = ImageOps.grayscale(image).point(lambda v: 255 if v < FIT_WHITE else 0).getbbox()
    return bool(box) and (box[2] - box[0]) * (box[3] - box[1]) < CROP_AREA * image.width * image.height


def nocrop(args: argparse.Namespace) -> None:
    """Fresh dev (221) and old naming dev (87), note alone, the shipped labeler (views, names head
    0.7 / 0.5) against candidates that show a picture the ``fit`` view would not crop through
    :data:`NOCROP_VIEWS` instead; the committed rule's pick (most named on both; ties to B1)."""
    import json

    from lhama.eval.metrics import names_thing
    from lhama.eval.naming import read_naming_items
    from lhama.model.labeler import LabelerConfig, describe
    from lhama.model.names_head import SHIPPED, NamesHead
    from lhama.model.towers.imagenet_kinds import KindIndex
    from lhama.model.towers.imagenet_names import class_names

    import names_head as nh
    import naming_openclipart as oc

    cache, names, index = torch.load(args.cache), class_names(), KindIndex.load()
    head = NamesHead.load(SHIPPED / "names_head_clipart")
    paths = nv.picture_paths(args.folder, args.data_dir, "explore")
    old = [i for i in read_naming_items(nh.ITEMS) if i.image in nh.split_images("dev")]
    sets = {"fresh dev": [(f"oc:{p.image}", p.accepted) for p in oc.eval_pictures("dev")],
            "old dev": [(f"item:{i.image}", i.accepted) for i in old]}
    config = LabelerConfig(style="kinds", kind_confident=0.3, names_confident=0.7, names_yield=0.5)
    result = {}
    for part, items in sets.items():
        flat = {k: not crops(paths[k]) for k, _ in items}
        for name, other in {"shipped": LABELER_VIEWS, **NOCROP_VIEWS}.items():
            right = 0
            for k, accepted in items:
                views = other if flat[k] else LABELER_VIEWS
                q, f = nv._rows(cache, [k], "logits", views)[0], nv._rows(cache, [k], "pooled", views)[0]
                right += names_thing(describe(q, names, config, index, head.nearest(f)), accepted)
            result.setdefault(name, {})[part] = right
        print(f"{part}: {len(items)} pictures, {sum(flat.values())} with nothing to crop; " +
              ", ".join(f"{n} {r[part]}" for n, r in result.items()), flush=True)
    pick = max(NOCROP_VIEWS, key=lambda n: (sum(result[n].values()), n == "B1"))
    print(f"pick {pick}: {result[pick]} (shipped {result['shipped']})")
    if args.out:
        out = {"crop_area": CROP_AREA, "views": NOCROP_VIEWS, "named": result, "pick": pick}
        args.out.write_text(json.dumps(out, indent=1) + "\n")


def _signals(head, pooled: torch.Tensor, probs: torch.Tensor) -> tuple[str, list[float]]:
    """The head's label for one picture and what a selector sees: the cosine, its margin to the
    best picture of another label, ImageNet's top-1 and top-2 probabilities and the entropy."""
    query = torch.nn.functional.normalize(head._project(pooled.float()) - head.mean, dim=-1)
    sims = head._unit @ query
    order = sims.argsort(descending=True)
    label = head.entries[int(order[0])].name
    other = next(float(sims[j]) for j in order[1:] if head.entries[int(j)].name != label)
    top = probs.topk(2).values
    entropy = float(-(probs * probs.clamp_min(1e-9).log()).sum())
    return label, [float(sims[order[0]]), float(sims[order[0]]) - other, float(top[0]), float(top[1]), entropy]


def _logistic(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean, std, weights with bias last) of a logistic regression on standardised ``x`` (L2 1e-3)."""
    mean, std = x.mean(0), x.std(0)
    z, w = (x - mean) / std, torch.zeros(x.shape[1] + 1, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w[:-1] + w[-1], y) + 1e-3 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return mean, std, w.detach()


def selector(args: argparse.Namespace) -> None:
    """Train split only: a logistic selector between the head's label and the kinds note, trained
    on the cross-validated held-out pool pictures where exactly one of them is right, itself
    cross-validated over the same folds; prints both alone, their union and the selector's count."""
    from lhama.eval.metrics import names_thing
    from lhama.model.labeler import LabelerConfig, describe
    from lhama.model.names_head import NamedPicture, NamesHead
    from lhama.model.towers.imagenet_kinds import KindIndex
    from lhama.model.towers.imagenet_names import class_names

    cache, names, index = torch.load(args.cache), class_names(), KindIndex.load()
    keys, labels, groups, accepted = train_set()
    ids = {lab: n for n, lab in enumerate(sorted(set(labels)))}
    label_ids = torch.tensor([ids[lab] for lab in labels])
    folds = [fold_of(g) if a is not None else -1 for g, a in zip(groups, accepted)]
    config, x, right, fold = LabelerConfig(style="kinds", kind_confident=0.3), [], [], []
    for f in range(FOLDS):
        tr, te = [i for i, k in enumerate(folds) if k != f], [i for i, k in enumerate(folds) if k == f]
        w = fit_adapter(args.adapter, cache, [keys[i] for i in tr], label_ids[tr], KIND[args.pooling])
        head = NamesHead(nv._rows(cache, [keys[i] for i in tr], KIND[args.pooling], LABELER_VIEWS),
                         tuple(NamedPicture(labels[i], "", keys[i]) for i in tr), w, args.pooling)
        te_keys = [keys[i] for i in te]
        pooled, probs = (nv._rows(cache, te_keys, kind, LABELER_VIEWS) for kind in (KIND[args.pooling], "logits"))
        for i, q, p in zip(te, pooled, probs):
            label, signals = _signals(head, q, p)
            x.append(signals)
            right.append((names_thing(describe(p, names, config, index), accepted[i]), names_thing(label, accepted[i])))
            fold.append(f)
    x, named = torch.tensor(x), 0
    for f in range(FOLDS):
        train = [i for i in range(len(x)) if fold[i] != f and right[i][0] != right[i][1]]
        mean, std, w = _logistic(x[train], torch.tensor([float(right[i][1]) for i in train]))
        test = [i for i in range(len(x)) if fold[i] == f]
        z = ((x[test] - mean) / std) @ w[:-1] + w[-1]
        named += sum(right[i][1] if float(v) > 0 else right[i][0] for i, v in zip(test, z))
    print(f"{args.pooling} {args.adapter}: note {sum(r[0] for r in right)}, head {sum(r[1] for r in right)}, "
          f"union {sum(a or b for a, b in right)} of {len(right)}; logistic selector {named}")


def misses(args: argparse.Namespace) -> None:
    """Fresh dev, diagnosis: the shipped labeler's misses (note alone) with a countable ImageNet
    class name, a countable names-head label, neither, and "não reconhecida"; named by category."""
    import collections

    import naming_openclipart as oc
    from lhama.eval.metrics import names_thing
    from lhama.model.labeler import LabelerConfig, describe
    from lhama.model.names_head import SHIPPED, NamesHead
    from lhama.model.towers.imagenet_kinds import KindIndex
    from lhama.model.towers.imagenet_names import class_names

    cache, names, index = torch.load(args.cache), class_names(), KindIndex.load()
    head = NamesHead.load(SHIPPED / "names_head_clipart")
    labels = {e.name for e in head.entries}
    config = LabelerConfig(style="kinds", kind_confident=0.3, names_confident=0.7, names_yield=0.5)
    tally, named, pictures = collections.Counter(), collections.Counter(), collections.Counter()
    for p in oc.eval_pictures("dev"):
        k, category = f"oc:{p.image}", p.image.split("/")[0]
        q, f = nv._rows(cache, [k], "logits", LABELER_VIEWS)[0], nv._rows(cache, [k], "pooled", LABELER_VIEWS)[0]
        note = describe(q, names, config, index, head.nearest(f))
        pictures[category] += 1
        if names_thing(note, p.accepted):
            named[category] += 1
            continue
        has_class = any(names_thing(n, p.accepted) for n in names)
        has_label = any(names_thing(n, p.accepted) for n in labels)
        tally.update({"missed": 1, "imagenet class": has_class, "head label": has_label,
                      "neither": not (has_class or has_label), "não reconhecida": "não reconhecida" in note})
    print(dict(tally))
    print(", ".join(f"{c} {named[c]}/{n}" for c, n in pictures.most_common()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("cv", "selector", "grid", "nocrop", "misses"))
    parser.add_argument("--adapter", default="lda512")
    parser.add_argument("--train-share", type=float, default=1.0, help="cv: the share of the pool's groups kept in training")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--folder", type=Path, default=Path("/usr/share/openclipart/png"))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/tuxpaint_ptbr"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--pooling", choices=tuple(KIND), default="mean")
    parser.add_argument("--adapters", default="raw,whiten,lda64,lda128,lda256")
    args = parser.parse_args()
    {"cv": cv, "selector": selector, "grid": grid, "nocrop": nocrop, "misses": misses}[args.step](args)


if __name__ == "__main__":
    main()
