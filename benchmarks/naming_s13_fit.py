"""The drawing recogniser's fit, cross-validation and comparison (issue #26, session 13; see
benchmarks/naming_s13.py for the data, docs/default-model.md "Naming, session 13" for the rules).

    python benchmarks/naming_s13.py cv                      # train side only: picks a setting
    python benchmarks/naming_s13.py compare --setting NAME  # held-out side + photo check, once
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import naming_s13 as data

SETTINGS = {f"l2={l2:g},none={none:g}": (l2, none) for l2 in (1e-3, 1e-2) for none in (0.0, 0.5)}
RANK, STEPS, LR, KEEP = 32, 200, 3e-3, 1.0
FOLDS = 4


def _parts():
    """(names, kinds, head, W0, b0): the shipped labeler's parts for scoring notes."""
    from lhama.model.names_head import NamesHead
    from lhama.model.towers.imagenet_kinds import TABLE as KINDS_TABLE
    from lhama.model.towers.imagenet_kinds import KindIndex
    from lhama.model.towers.imagenet_names import class_names
    from lhama.weights.cascade import NAMES_HEAD

    names = class_names()
    tower = data._tower()
    return names, KindIndex.load(KINDS_TABLE, len(names)), NamesHead.load(NAMES_HEAD), tower.classifier


def targets(accepted: str, names: tuple[str, ...]) -> list[int]:
    """The ImageNet classes whose pt-BR name would count as naming a picture with these accepted names."""
    from lhama.eval.metrics import names_thing

    wanted = accepted.split("|")
    return [c for c, name in enumerate(names) if names_thing(name, wanted)]


def fit(feats: list[torch.Tensor], tgts: list[list[int]], keep: torch.Tensor, classifier, l2: float,
        none: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The correction (A, B, db; dW = A B) of the ImageNet head: ``feats`` one (views, 1280) tensor per drawing,
    ``tgts`` its target classes, ``keep`` (n, 1280) photo views whose probabilities stay."""
    torch.manual_seed(seed)
    W0, b0 = classifier.weight.detach().float(), classifier.bias.detach().float()
    x = torch.cat(feats).float()
    per = torch.tensor([len(f) for f in feats])
    mask = torch.zeros(len(feats), len(b0), dtype=torch.bool)
    for i, t in enumerate(tgts):
        mask[i, t] = True
    mask = mask.repeat_interleave(per, 0)
    has = mask.any(1)
    z0, k0 = x @ W0.T + b0, keep.float() @ W0.T + b0
    p_keep = torch.log_softmax(k0, -1)
    A = (torch.randn(x.shape[1], RANK) * 0.01).requires_grad_()
    B = torch.zeros(RANK, len(b0), requires_grad=True)
    db = torch.zeros(len(b0), requires_grad=True)
    opt = torch.optim.Adam([A, B, db], lr=LR)
    for _ in range(STEPS):
        opt.zero_grad()
        logp = torch.log_softmax(z0 + (x @ A) @ B + db, -1)
        hit = torch.logsumexp(logp.masked_fill(~mask, -1e9), -1)
        loss = -hit[has].mean() if has.any() else torch.zeros(())
        if none and (~has).any():
            top = logp[~has].max(-1).values.exp().clamp(max=1 - 1e-6)
            loss = loss + none * -(1 - top).log().mean()
        logq = torch.log_softmax(k0 + (keep.float() @ A) @ B + db, -1)
        loss = loss + KEEP * (p_keep.exp() * (p_keep - logq)).sum(-1).mean()
        loss = loss + l2 * ((A @ B).pow(2).sum() + db.pow(2).sum())
        loss.backward()
        opt.step()
    return A.detach(), B.detach(), db.detach()


def probs(feat: torch.Tensor, classifier, correction=None) -> torch.Tensor:
    """A picture's note probabilities: softmax per view of the labeler's views, averaged."""
    x = feat[: len(data.NOTE_VIEWS)].float()
    z = x @ classifier.weight.detach().float().T + classifier.bias.detach().float()
    if correction is not None:
        z = z + (x @ correction[0]) @ correction[1] + correction[2]
    return torch.softmax(z, -1).mean(0)


def score(rows: list[dict], cache: dict, parts, memory: set[str], correction=None) -> list[bool]:
    """Whether each row's note (lhama-default's settings, names head reduced to ``memory``) names it."""
    from lhama.eval.metrics import names_thing
    from lhama.model.labeler import describe
    from lhama.model.names_head import NamesHead
    from lhama.weights.cascade import V2_LABELER

    names, kinds, head, classifier = parts
    keep = [i for i, e in enumerate(head.entries) if e.key in memory]
    small = NamesHead(head.features[keep], tuple(head.entries[i] for i in keep))
    out = []
    for r in rows:
        feat = cache[r["key"]]
        pooled = feat[: len(data.NOTE_VIEWS)].float().mean(0)
        note = describe(probs(feat, classifier, correction), names, V2_LABELER, kinds, small.nearest(pooled))
        out.append(names_thing(note, r["accepted"].split("|")))
    return out


def _load():
    cache = torch.load(data.CACHE)
    for extra in (data.CACHE_PHOTOS, data.CACHE_TAIL):
        if extra.is_file():
            cache.update(torch.load(extra))
    rows = data.split_rows()
    missing = [r["key"] for r in rows if r["key"] not in cache]
    pics = data.photos()
    missing += [str(p) for p in pics["keep"] + pics["check"] if f"photo:{p}" not in cache]
    if missing:
        raise SystemExit(f"{len(missing)} pictures have no cached features yet (run features): {missing[:3]}")
    keep = torch.cat([cache[f"photo:{p}"] for p in pics["keep"]])
    return cache, rows, keep, pics


def _fold(comp: str) -> int:
    import hashlib

    return int(hashlib.sha1(comp.encode()).hexdigest(), 16) % FOLDS


def cv(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    cache, rows, keep, _ = _load()
    parts = _parts()
    train = [r for r in rows if r["side"] == "train"]
    tgts = {r["key"]: targets(r["accepted"], parts[0]) for r in train}
    print(f"{len(train)} train drawings, {sum(bool(t) for t in tgts.values())} with a target class", flush=True)
    result = {}
    for name, (l2, none) in SETTINGS.items():
        started, named, base = time.perf_counter(), 0, 0
        for k in range(FOLDS):
            fit_rows = [r for r in train if _fold(r["component"]) != k]
            test_rows = [r for r in train if _fold(r["component"]) == k]
            corr = fit([cache[r["key"]] for r in fit_rows], [tgts[r["key"]] for r in fit_rows], keep, parts[3], l2, none)
            memory = {r["key"] for r in fit_rows}
            named += sum(score(test_rows, cache, parts, memory, corr))
            base += sum(score(test_rows, cache, parts, memory)) if name == next(iter(SETTINGS)) else 0
        if name == next(iter(SETTINGS)):
            result["shipped head"] = base
        result[name] = named
        print(f"{name}: {named} of {len(train)} named ({time.perf_counter() - started:.0f} s); shipped head {result.get('shipped head')}", flush=True)
    pick = max(SETTINGS, key=lambda n: (result[n], SETTINGS[n][0], -SETTINGS[n][1]))
    out = {"cv_named": result, "of": len(train), "pick": pick}
    print(json.dumps(out))
    (args.out or Path("docs/results/naming_s13_cv.json")).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


def compare(args: argparse.Namespace) -> None:
    from lhama.model.labeler import describe
    from lhama.weights.cascade import V2_LABELER

    torch.set_num_threads(args.threads)
    cache, rows, keep, pics = _load()
    parts = _parts()
    names, kinds, head, classifier = parts
    l2, none = SETTINGS[args.setting]
    train = [r for r in rows if r["side"] == "train"]
    held = [r for r in rows if r["side"] == "heldout"]
    corr = fit([cache[r["key"]] for r in train], [targets(r["accepted"], names) for r in train], keep, classifier, l2, none)
    memory = {r["key"] for r in train}
    base, cand = score(held, cache, parts, memory), score(held, cache, parts, memory, corr)
    photo_rows = []
    for p in pics["check"]:
        feat = cache[f"photo:{p}"]
        named = head.nearest(feat.float().mean(0))
        old = describe(probs(feat, classifier), names, V2_LABELER, kinds, named)
        new = describe(probs(feat, classifier, corr), names, V2_LABELER, kinds, named)
        photo_rows.append({"photo": str(p), "shipped": old, "recogniser": new, "changed": old != new})
    owl = next(r for r in photo_rows if r["photo"].endswith("coruja.jpg"))
    changed = sum(r["changed"] for r in photo_rows)
    ships = sum(cand) >= sum(base) + 19 and changed <= 3 and "coruja" in owl["recogniser"]
    out = {"setting": args.setting, "heldout": len(held), "shipped_named": sum(base), "recogniser_named": sum(cand),
           "gained": sum(c and not b for b, c in zip(base, cand)), "lost": sum(b and not c for b, c in zip(base, cand)),
           "photos": len(photo_rows), "photo_notes_changed": changed, "owl": owl["recogniser"], "ships": ships,
           "rows": [{"key": r["key"], "shipped": b, "recogniser": c} for r, b, c in zip(held, base, cand)],
           "photo_rows": photo_rows}
    print(json.dumps({k: v for k, v in out.items() if not k.endswith("rows")}, ensure_ascii=False))
    (args.out or Path("docs/results/naming_s13_compare.json")).write_text(
        json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
