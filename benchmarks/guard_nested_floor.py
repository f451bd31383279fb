"""Issue #29, fifth session: how optimistic is the out-of-fold recall that the input head's tunings
report? Training split only (never dev or test).

    python benchmarks/guard_nested_floor.py --name t5mts --sources template-pt,template-en,template-pt-s5,mt-pt-train,mt-en-train \
        --template-weight 5 --cache /tmp/oof_t5mts.npy

``guard_input_head.py`` tunes a run's thresholds and category floor on the same out-of-fold
probabilities it then reports recall on. Here the probabilities are the same (one out-of-fold fit,
cached in ``--cache``), but every tuning is redone on four of five outer folds and applied to the
fifth (nested), so the recall and the look-alike FPR on the input head's own pt-BR rows are
measured on rows the tuning never saw. Prints one row per tuning (``tunings`` of
guard_input_head.py) and per fixed floor with the ``+tb`` thresholds: tuned-on-all vs nested.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from guard_floor import oof_probs
from guard_input_head import ROOT, choose_floor, training_rows, tunings

from lhama.guard.classifier import features, unsafe_score
from lhama.guard.dataset import Example
from lhama.guard.fit import FitConfig, loss_weights, targets
from lhama.guard.language import looks_english
from lhama.guard.metrics import binary_scores

FIXED_FLOORS = (0.02, 0.04, 0.06, 0.08)


def load(args: argparse.Namespace) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """(examples, out-of-fold probabilities, template mask, own-rows mask), probabilities cached."""
    rows = training_rows(args.train, set(filter(None, args.sources.split(","))))
    ex = [Example(r["text"], r["label"], tuple(r["categories"]), r["lang"], bool(r.get("lookalike")), r.get("role", "user"))
          for r in rows]
    tmpl = np.array([r.get("source", "").startswith("template") for r in rows])
    own = np.array(["round" not in r for r in rows])
    if args.cache.is_file():
        probs = np.load(args.cache)
    else:
        cfg = replace(FitConfig(), max_benign_fpr=1.0)
        w = np.where(tmpl, args.template_weight, loss_weights(ex, cfg))
        probs = oof_probs(features([e.text for e in ex], cfg.hash_dim, 0.0, None), targets(ex), cfg, w)
        np.save(args.cache, probs)
    return ex, probs, tmpl, own


def decide(probs: np.ndarray, english: np.ndarray, t: float, t_en: float, floor: float) -> np.ndarray:
    score = unsafe_score(probs, FitConfig.category_mix)
    return (score >= np.where(english, t_en, t)) & (probs[:, 1:].max(axis=1) >= floor)


def settings(probs, ex, english, tmpl, own, fit: np.ndarray) -> dict:
    """Every tuning's (threshold, English threshold, floor), tuned on the rows in ``fit`` only."""
    cfg = replace(FitConfig(), max_benign_fpr=1.0)  # look-alike budget only, as guard_input_head.py tunes
    score = unsafe_score(probs[fit], cfg.category_mix)
    sub = [e for e, m in zip(ex, fit) if m]
    own_pt = (own & np.array([e.lang == "pt" for e in ex]))[fit]
    truth = np.array([e.unsafe for e in sub])
    out = {}
    for suffix, t, t_en, bar in tunings(score, sub, cfg, tmpl[fit], own[fit]):
        pred = decide(probs[fit], english[fit], t, t_en, 0.0)
        out[suffix or "plain"] = (t, t_en, choose_floor(probs[fit][own_pt], pred[own_pt], truth[own_pt], bar))
        if suffix == "+tbpt":
            out.update({f"+tbpt floor {f}": (t, t_en, f) for f in FIXED_FLOORS})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--sources", default="")
    parser.add_argument("--template-weight", type=float, default=FitConfig.lookalike_weight)
    parser.add_argument("--train", type=Path, default=ROOT / "data/guard/train.jsonl")
    parser.add_argument("--cache", type=Path, required=True, help=".npy file of the out-of-fold probabilities")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ex, probs, tmpl, own = load(args)
    english = np.array([looks_english(e.text) for e in ex])
    own_pt = own & np.array([e.lang == "pt" for e in ex])
    truth, look = np.array([e.unsafe for e in ex]), np.array([e.lookalike for e in ex])
    tuned_all = settings(probs, ex, english, tmpl, own, np.ones(len(ex), bool))
    nested = {k: np.zeros(len(ex), bool) for k in tuned_all}
    order = np.random.default_rng(1).permutation(len(ex))
    for fold in np.array_split(order, 5):
        held = np.zeros(len(ex), bool)
        held[fold] = True
        for k, (t, t_en, f) in settings(probs, ex, english, tmpl, own, ~held).items():
            nested[k][held] = decide(probs[held], english[held], t, t_en, f)
    print(f"{args.name}: {len(ex)} rows, {int(own_pt.sum())} own pt-BR rows\n")
    print("| tuning | threshold / English / floor (all rows) | own pt-BR recall: tuned on all / nested | "
          "look-alike FPR: tuned on all / nested |\n|---|---|---|---|")
    for k, (t, t_en, f) in tuned_all.items():
        pred = decide(probs, english, t, t_en, f)
        r_all, r_nest = binary_scores(truth[own_pt], pred[own_pt]).recall, binary_scores(truth[own_pt], nested[k][own_pt]).recall
        fpr_all, fpr_nest = pred[own_pt & look].mean(), nested[k][own_pt & look].mean()
        print(f"| {args.name}{'' if k == 'plain' else k} | {t} / {t_en} / {f} | {r_all:.3f} / {r_nest:.3f} | "
              f"{fpr_all:.3f} / {fpr_nest:.3f} |")


if __name__ == "__main__":
    main()
