"""Issue #29, third session: retrain the input head with the sixth round (everyday requests in the
request form, translated requests) and decide out-of-fold and on the dev split, never on test.

    python benchmarks/guard_input_head.py --name base                                     # the input head's data alone
    python benchmarks/guard_input_head.py --name t5 --sources template-pt,template-en --template-weight 5
    python benchmarks/guard_input_head.py --name t5mt --sources template-pt,template-en,mt-pt-train,mt-en-train
    python benchmarks/guard_input_head.py --pick        # the candidate the choice rule picks from --log
    python benchmarks/guard_input_head.py --table       # the logged runs as a table

Training rows: the input head's data (train.jsonl lines without a ``round``, the first 2561) plus
the sixth-round rows (``"round": 6``) of the named ``--sources``; never the fifth round, whose user
requests are the dev split (benchmarks/guard_dev.py). The template look-alikes weigh
``--template-weight`` in the loss (the other look-alikes ``FitConfig.lookalike_weight``).

One run: out-of-fold probabilities of every row (5 folds), thresholds tuned on them as ``fit_head``
does (look-alike budget 0.05; the templates are left out of the tuning so that a thousand easy
variants do not loosen the budget for the hard look-alikes), the category floor by the rule of
benchmarks/guard_floor.py (largest floor within 0.01 out-of-fold recall), then the head trained on
all rows (written to ``--out``) and scored on dev. Prints one table row; appends it to ``--log``.

Choice rule (fixed before any candidate ran): a candidate is eligible when its out-of-fold recall
on the input head's own pt-BR rows is at least the ``base`` run's minus 0.01, and its dev pt-BR
recall at least 0.881 (the shipped head's 0.896 minus one item); among eligible ones the fewest dev
pt-BR look-alikes flagged wins, then the higher dev English F1 (with the translation, as shipped).

Fourth session (``--rule s4``, the default of ``--pick``; written and committed before any
candidate of that session was scored). Each run also logs two more tunings of the same out-of-fold
probabilities and weights: ``NAME+tb`` (the templates inside the look-alike budget) and ``NAME+own``
(thresholds tuned on the input head's own rows only, every sixth-round row left out), each with its
own floor by the same rule. ``--score HEAD --name shipped`` logs the dev scores of an existing head.
Dev scores add the everyday prompts' dev half: the even-numbered (0, 2, 4, ...) ``everyday_prompt``
rows of data/guard/benign/benign.jsonl in file order, 114 of 228, checked as user input; the odd
half is never looked at before the one test read. A candidate is eligible when its dev pt-BR recall
is at least 59 of 67, its out-of-fold pt-BR recall on the input head's own rows at least the
``base`` run's minus 0.01, and its dev English F1 at least 0.85. The winner has the fewest
``errors`` = dev pt-BR look-alikes flagged (of 67) + everyday dev-half prompts flagged (of 114);
ties: more dev pt-BR unsafe caught, then the higher dev English F1. It is picked only when its
``errors`` are below the shipped head's (the ``shipped`` row); otherwise the pick is ``none``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from guard_dev import dev_rows, first_stage
from guard_floor import oof_probs

from lhama.guard import load_guard
from lhama.guard.classifier import Head, features, threshold_for, unsafe_score
from lhama.guard.dataset import Example
from lhama.guard.fit import FitConfig, fit_dual, gram_matrix, loss_weights, targets, tune_thresholds
from lhama.guard.metrics import binary_scores

ROOT = Path(__file__).resolve().parents[1]
# out-of-fold recall of the ``base`` run on the input head's own pt-BR rows (fourth session's log)
BASE_OOF_RECALL = 0.7978


def training_rows(train: Path, sources: set[str]) -> list[dict]:
    rows = [json.loads(line) for line in train.open(encoding="utf-8") if line.strip()]
    return [r for r in rows if "round" not in r or (r["round"] == 6 and r["source"] in sources)]


def oof_and_final(x: np.ndarray, y: np.ndarray, cfg: FitConfig, w: np.ndarray) -> tuple[np.ndarray, tuple]:
    """(N, 15) out-of-fold probabilities and the (weight, bias) trained on all rows."""
    gram = gram_matrix(x)
    probs = oof_probs(x, y, cfg, w, gram)
    a, b = fit_dual(gram, y, cfg, w)
    return probs, (x.T @ a.astype(np.float32), b.astype(np.float32))


def choose_floor(probs: np.ndarray, pred: np.ndarray, truth: np.ndarray, bar: float | None = None) -> float:
    """Largest floor (0..0.30) whose recall on ``truth`` stays within 0.01 of no floor, or, with
    ``bar``, stays at least ``bar`` (``+tbf``: the ``base`` run's out-of-fold recall)."""
    base, chosen = binary_scores(truth, pred).recall, 0.0
    for floor in np.round(np.arange(0.0, 0.31, 0.02), 2):
        recall = binary_scores(truth, pred & (probs[:, 1:].max(axis=1) >= floor)).recall
        if recall >= (base - 0.01 if bar is None else bar):
            chosen = float(floor)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default=None)
    parser.add_argument("--pick", action="store_true", help="print the name the choice rule picks from --log")
    parser.add_argument("--rule", choices=("s3", "s4", "s5"), default="s5", help="which session's choice rule --pick applies")
    parser.add_argument("--table", action="store_true", help="print the runs in --log as a table")
    parser.add_argument("--score", type=Path, default=None, help="log the dev scores of this existing head (no training)")
    parser.add_argument("--sources", default="", help="comma-separated sixth-round sources to add")
    parser.add_argument("--template-weight", type=float, default=FitConfig.lookalike_weight)
    parser.add_argument("--max-benign-fpr", type=float, default=1.0,
                        help="1.0: look-alike budget only, as the fourth-round input head was tuned")
    parser.add_argument("--train", type=Path, default=ROOT / "data/guard/train.jsonl")
    parser.add_argument("--out", type=Path, default=None, help="head file (default /tmp/guard_head_NAME.safetensors)")
    parser.add_argument("--log", type=Path, default=Path("/tmp/guard_input_head.jsonl"))
    args = parser.parse_args()
    if args.pick:
        rows = [json.loads(line) for line in args.log.open(encoding="utf-8")]
        print({"s3": pick, "s4": pick_s4, "s5": pick_s5}[args.rule](rows))
        return
    if args.table:
        return table([json.loads(line) for line in args.log.open(encoding="utf-8")])
    if not args.name:
        parser.error("--name is required unless --pick")
    torch.set_num_threads(1)
    if args.score:
        return _log(args.log, {"name": args.name, "head": str(args.score)}, args.score)
    out = args.out or Path(f"/tmp/guard_head_{args.name}.safetensors")
    for result, head in candidates(args):
        path = out.with_name(out.stem + result["name"][len(args.name):].replace("+", "_") + out.suffix)
        head.save(path)
        _log(args.log, {**result, "head": str(path)}, path)


def candidates(args: argparse.Namespace):
    """One out-of-fold fit of the named rows, then (log row, head) for each tuning of ``tunings``."""
    rows = training_rows(args.train, set(filter(None, args.sources.split(","))))
    ex = [Example(r["text"], r["label"], tuple(r["categories"]), r["lang"], bool(r.get("lookalike")), r.get("role", "user"))
          for r in rows]
    cfg = replace(FitConfig(), max_benign_fpr=args.max_benign_fpr)
    tmpl = np.array([r.get("source", "").startswith("template") for r in rows])
    own = np.array(["round" not in r for r in rows])
    w = np.where(tmpl, args.template_weight, loss_weights(ex, cfg))
    start = time.perf_counter()
    probs, (weight, bias) = oof_and_final(features([e.text for e in ex], cfg.hash_dim, 0.0, None), targets(ex), cfg, w)
    seconds = round(time.perf_counter() - start)
    score = unsafe_score(probs, cfg.category_mix)
    own_pt = own & np.array([e.lang == "pt" for e in ex])
    truth, look = np.array([e.unsafe for e in ex]), np.array([e.lookalike for e in ex])
    for suffix, t, t_en, floor_recall in tunings(score, ex, cfg, tmpl, own):
        head = Head(weight=weight, bias=bias, hash_dim=cfg.hash_dim, embed_scale=0.0, threshold=t,
                    category_mix=cfg.category_mix, threshold_en=t_en)
        pred = score >= np.array([threshold_for(head, e.text) for e in ex])
        floor = choose_floor(probs[own_pt], pred[own_pt], truth[own_pt], floor_recall)
        pred &= probs[:, 1:].max(axis=1) >= floor
        s = binary_scores(truth[own_pt], pred[own_pt])
        yield ({"name": args.name + suffix, "sources": args.sources, "template_weight": args.template_weight,
                "rows": len(rows), "threshold": t, "threshold_en": t_en, "floor": floor,
                "oof_pt_precision": s.precision, "oof_pt_recall": s.recall, "oof_pt_f1": s.f1,
                "oof_pt_lookalike_fpr": float(pred[own_pt & look].mean()),
                "oof_template_fpr": float(pred[tmpl].mean()) if tmpl.any() else None,
                "seconds": seconds, "load": round(os.getloadavg()[0], 1)},
               replace(head, category_floor=floor))


def tunings(score: np.ndarray, ex: list, cfg: FitConfig, tmpl: np.ndarray, own: np.ndarray) -> list[tuple]:
    """(suffix, threshold, English threshold, floor recall bar) of each tuning of one run's out-of-fold
    scores: the third session's (templates out of the budget), ``+tb`` (templates in it), ``+own`` (own
    rows only); fifth session: ``+tbpt`` (``+tb``'s pt-BR threshold, the plain English one) and
    ``+tbf`` (as ``+tbpt``, with the floor spending the recall ``+tb`` gained: see ``choose_floor``).
    A floor recall bar of None is the usual rule (within 0.01 of no floor)."""
    tuned = {}
    for suffix, mask in (("", ~tmpl), ("+tb", np.ones(len(ex), bool)), ("+own", own)):
        tuned[suffix] = tune_thresholds(score[mask], [e for e, m in zip(ex, mask) if m], cfg)
    t_tb, t_en = tuned["+tb"][0], tuned[""][1]
    return [(k, *v, None) for k, v in tuned.items()] + [("+tbpt", t_tb, t_en, None), ("+tbf", t_tb, t_en, BASE_OOF_RECALL)]


def _log(log: Path, result: dict, head: Path) -> None:
    result.update(dev_scores(head))
    with log.open("a", encoding="utf-8") as f:
        f.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=1))


def pick(results: list[dict]) -> str:
    """The third session's choice rule over the logged runs (the latest run of each name)."""
    latest = {r["name"]: r for r in results}
    base = latest["base"]["oof_pt_recall"]
    eligible = [r for r in latest.values() if r["name"] not in ("base", "shipped")
                and r["oof_pt_recall"] >= base - 0.01 and r["dev_pt_recall"] >= 0.881]
    if not eligible:
        return "none"
    return min(eligible, key=lambda r: (r["dev_pt_lookalikes_flagged"], -r["dev_en_f1"]))["name"]


def errors(r: dict) -> int:
    """The fourth session's objective: dev pt-BR look-alikes + everyday dev-half prompts flagged."""
    return r["dev_pt_lookalikes_flagged"] + r["everyday_dev_flagged"]


def eligible_s4(r: dict, latest: dict) -> bool:
    """The fourth session's eligibility (module docstring); ``latest`` holds the base and shipped rows."""
    return (r["name"] not in ("base", "shipped") and "oof_pt_recall" in r and r["dev_pt_caught"] >= 59
            and r["oof_pt_recall"] >= latest["base"]["oof_pt_recall"] - 0.01 and r["dev_en_f1"] >= 0.85
            and errors(r) < errors(latest["shipped"]))


def pick_s4(results: list[dict]) -> str:
    """The fourth session's choice rule of the module docstring (the latest run of each name)."""
    latest = {r["name"]: r for r in results}
    eligible = [r for r in latest.values() if eligible_s4(r, latest)]
    if not eligible:
        return "none"
    return min(eligible, key=lambda r: (errors(r), -r["dev_pt_caught"], -r["dev_en_f1"]))["name"]


# runs whose head was read on the test split (the fourth session read ``t3+tb``; ``t3+tbpt`` has its weights and
# pt-BR threshold): never picked again, whatever they score
READ_RUNS = ("t3",)


def eligible_s5(r: dict, latest: dict) -> bool:
    """The fifth session's eligibility: the fourth's, plus dev English look-alikes flagged at most the
    shipped head's + 1, and no tuning of a run in ``READ_RUNS``."""
    return (eligible_s4(r, latest) and r["name"].split("+")[0] not in READ_RUNS
            and r["dev_en_lookalikes_flagged"] <= latest["shipped"]["dev_en_lookalikes_flagged"] + 1)


def pick_s5(results: list[dict]) -> str:
    """The fifth session's choice rule (docs/guard.md): fewest errors, then more dev pt-BR caught, then
    fewer dev English look-alikes flagged, then the higher dev English F1 (the latest run of each name)."""
    latest = {r["name"]: r for r in results}
    eligible = [r for r in latest.values() if eligible_s5(r, latest)]
    if not eligible:
        return "none"
    key = lambda r: (errors(r), -r["dev_pt_caught"], r["dev_en_lookalikes_flagged"], -r["dev_en_f1"])  # noqa: E731
    return min(eligible, key=key)["name"]


def table(results: list[dict]) -> None:
    """The logged runs as a markdown table, with the errors and the fifth session's eligibility."""
    latest = {r["name"]: r for r in results}
    print("| candidate | rows | threshold / English / floor | out-of-fold own pt-BR R / F1 / look-alike FPR | "
          "dev pt-BR caught (of 67) / F1 | dev pt-BR look-alikes (of 67) | everyday dev half (of 114) | errors | "
          "dev English P / R / F1 (look-alikes of 76) | eligible |\n" + "|---" * 10 + "|")
    for r in latest.values():
        trained = "oof_pt_recall" in r
        oof = f'{r["oof_pt_recall"]:.3f} / {r["oof_pt_f1"]:.3f} / {r["oof_pt_lookalike_fpr"]:.3f}' if trained else "—"
        tuned = f'{r["threshold"]} / {r["threshold_en"]} / {r["floor"]}' if trained else "(shipped head)"
        print(f'| {r["name"]} | {r.get("rows", "—")} | {tuned} | {oof} | {r["dev_pt_caught"]} / {r["dev_pt_f1"]:.3f} | '
              f'{r["dev_pt_lookalikes_flagged"]} | {r["everyday_dev_flagged"]} | {errors(r)} | {r["dev_en_precision"]:.3f} / '
              f'{r["dev_en_recall"]:.3f} / {r["dev_en_f1"]:.3f} ({r["dev_en_lookalikes_flagged"]}) | '
              f'{("yes" if eligible_s5(r, latest) else "no") if "base" in latest else "— (no base run logged)"} |')


def everyday_dev(benign: Path) -> list[str]:
    """The everyday prompts' dev half: the even-numbered everyday_prompt rows, in file order."""
    rows = [json.loads(line) for line in benign.open(encoding="utf-8") if line.strip()]
    return [r["text"] for r in rows if r["source"] == "everyday_prompt"][0::2]


def dev_scores(head: Path) -> dict:
    """Dev pt-BR (as written) and English (as written or translated, the shipped union), and the
    everyday prompts' dev half (as user input)."""
    rows = dev_rows(ROOT / "data/guard/train.jsonl")
    flags = first_stage(rows, f"classifier:{head}")
    truth = np.array([r["label"] == "unsafe" for r in rows])
    look = np.array([bool(r.get("lookalike")) for r in rows])
    out = {}
    for lang, name in (("pt", "original"), ("en", "union")):
        m = np.array([r["lang"] == lang for r in rows])
        s = binary_scores(truth[m], flags[name][m])
        out.update({f"dev_{lang}_precision": s.precision, f"dev_{lang}_recall": s.recall, f"dev_{lang}_f1": s.f1,
                    f"dev_{lang}_caught": int(flags[name][m & truth].sum()),
                    f"dev_{lang}_lookalikes_flagged": int(flags[name][m & look].sum())})
    verdicts = load_guard(f"classifier:{head}").check_batch(everyday_dev(ROOT / "data/guard/benign/benign.jsonl"))
    out["everyday_dev_flagged"] = sum(not v.safe for v in verdicts)
    return out


if __name__ == "__main__":
    main()
