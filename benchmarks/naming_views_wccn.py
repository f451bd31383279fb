"""Diagnosis, fresh dev half only (issue #26 session 7): a names head in a within-class-whitened space.

Within-class whitening (``naming_views.wccn``, shrink 0.1) is learned on the 751 head pictures
(shipped stamps + fresh pool), every view of a picture a sample of its label; the head and the dev
pictures are then compared in that space, forced (always the nearest label) and through the
labeler's note (kinds 0.3 over squash+fit+fit_flip probabilities, session 6's names grid). Needs
``naming_views.py features``. Not a shipped path: the labeler has no projection.

    PYTHONPATH=src python benchmarks/naming_views_wccn.py
"""
import sys, itertools, torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import naming_views as nv, naming_openclipart as oc
from lhama.eval.metrics import names_thing
from lhama.model.labeler import LabelerConfig, describe
from lhama.model.names_head import SHIPPED, NamedPicture, NamesHead
from lhama.model.towers.imagenet_kinds import KindIndex
from lhama.model.towers.imagenet_names import class_names
cache = torch.load(nv.CACHE); keys, labels, dev = nv.explore_sets()
names, index = class_names(), KindIndex.load()
entries = NamesHead.load(SHIPPED).entries; entries = entries + tuple(NamedPicture(l, "", "oc") for l in labels[len(entries):])
dk = [f"oc:{p.image}" for p in dev]
ids = {l: n for n, l in enumerate(sorted(set(labels)))}
settings = [dict(zip(oc.GRID, v)) for v in itertools.product(*oc.GRID.values())]
for kind in ("pooled", "gem"):
  for train_views in (nv.VIEWS, ("squash", "fit", "fit_flip")):
    tv = [nv.VIEWS.index(v) for v in train_views]
    x = torch.cat([torch.stack([cache[k][kind][v].float() for k in keys]) for v in tv])
    y = torch.tensor([ids[l] for l in labels] * len(tv)); m = x.mean(0)
    w = nv.wccn(x - m, y, 0.1)
    for qv in (("squash", "fit", "fit_flip"), ("fit", "fit_flip")):
        head = NamesHead((nv._rows(cache, keys, kind, qv) - m) @ w, entries)
        feats = (nv._rows(cache, dk, kind, qv) - m) @ w
        probs = nv._rows(cache, dk, "logits", ("squash", "fit", "fit_flip"))
        forced = sum(names_thing(head.nearest(f)[0].name, p.accepted) for f, p in zip(feats, dev))
        counts = [sum(names_thing(describe(q, names, LabelerConfig(style="kinds", kind_confident=0.3, **s), index, head.nearest(f)), p.accepted) for q, f, p in zip(probs, feats, dev)) for s in settings]
        print(kind, len(train_views), "train views; head/query", "+".join(qv), "forced", forced, "grid", counts, flush=True)
