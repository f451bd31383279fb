"""Issue #29, thirteenth session: the input head on features v3 (no n-grams inside words of <= 3 letters, see
lhama.guard.features) with more request-form and English rows, chosen on dev under a rule committed before any
candidate ran, then one read of the fresh data/guard/heldout_s13 (rules: docs/guard.md, "Thirteenth session").

    python benchmarks/guard_head_s13.py --fit v3w3 --out-dir H --runs R --dev D     # one candidate: fit + dev scores
    python benchmarks/guard_head_s13.py --score-shipped --dev D                      # the shipped guard on dev
    python benchmarks/guard_head_s13.py --pick D --runs R                            # the dev rule (pick_s13)
    python benchmarks/guard_head_s13.py --read PICK --head H/PICK.safetensors --log X  # the one heldout_s13 read
    python benchmarks/guard_head_s13.py --decide X                                   # the ship rule (decide_s13)
    python benchmarks/guard_head_s13.py --test H/PICK.safetensors --log T            # one test-split read, after a pass

Training rows: the input head's own rows (train.jsonl lines without a ``round``), session 12's new rows
(guard_head_s9.new_rows + guard_head_s12.held_rows: every request of heldout_s10/s11, everyday_s9, the request-form
unsafe positives, dev_s9/dev_s7 dev-train halves) and, new, the user rows of the sixth and ninth sessions' held-out
sets (``data/guard/heldout``, ``heldout_s9``: read in those sessions, never trained on before; pt-BR AND their
English twins, the English rows the s12 lead lacked) with their everyday requests. Never trained, tuned or chosen
on: dev_s9 / dev_s7 dev-eval halves, the benign set's everyday dev half, the fifth round's dev rows (old dev),
heldout_s12 (dev since session 12's read), heldout_s13, the test split.

Candidates, named before any ran: ``v3w3`` (features v3, template weight 3), ``v3w6`` (v3, weight 6), ``v2w3``
(features v2, weight 3: the same rows without the feature change). Each fit logs four tunings of its out-of-fold
scores: plain (templates outside the look-alike budget), ``+tb`` (templates inside it), ``+e`` / ``+tbe`` (the same
pt-BR threshold; the English threshold tuned with an English look-alike budget of 0.10 instead of 0.05).
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
from guard_head_s9 import build, everyday_total, new_rows, score
from guard_head_s12 import held_rows, pt_caught, read_s12
from guard_heldout import append_row
from guard_input_head import choose_floor, oof_and_final

from lhama.files import read_jsonl
from lhama.guard.classifier import Head, features, threshold_for, unsafe_score
from lhama.guard.dataset import Example
from lhama.guard.fit import FitConfig, loss_weights, targets, tune_thresholds
from lhama.guard.metrics import binary_scores

ROOT = Path(__file__).resolve().parents[1]
HELD = ROOT / "data/guard/heldout_s13"
CANDIDATES = {"v3w3": (3, 3.0), "v3w6": (3, 6.0), "v2w3": (2, 3.0)}  # name: (feature version, template weight)
EN_BUDGET = 0.10  # the +e / +tbe English look-alike budget
OOF_BAR = 0.77  # out-of-fold recall on the input head's own pt-BR rows (s12's ns3+tb: 0.788; h3+tb 0.828)


def _lines(path: Path) -> list[str]:
    return [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def old_held_rows() -> list[dict]:
    """The user rows of data/guard/heldout (session 6) and heldout_s9 (session 9), pt-BR and English, and their
    everyday requests, as training records: unsafe by category, ``look`` as look-alikes, ``safe`` as other safe
    items, everyday requests as look-alike templates."""
    rows = []
    for tag, d in (("s6", ROOT / "data/guard/heldout"), ("s9", ROOT / "data/guard/heldout_s9")):
        for lang in ("pt", "en"):
            for kind, role, text in (x.split("\t", 2) for x in _lines(d / f"{lang}.tsv")):
                if role != "user":
                    continue
                unsafe = kind.startswith("S")
                rows.append({"text": text, "lang": lang, "role": "user", "round": 6,
                             "label": "unsafe" if unsafe else "safe", "categories": [kind] if unsafe else [],
                             "lookalike": kind == "look", "source": f"held-{tag}-{'unsafe' if unsafe else kind}-{lang}"})
        rows += [{"text": t, "lang": "pt", "role": "user", "round": 6, "label": "safe", "categories": [],
                  "lookalike": True, "source": f"template-held-{tag}-everyday"} for t in _lines(d / "everyday.txt")]
    return rows


def training_rows() -> list[dict]:
    own = [r for r in read_jsonl(ROOT / "data/guard/train.jsonl") if "round" not in r]
    return own + new_rows() + held_rows() + old_held_rows()


def fit(name: str, out_dir: Path, tune=None) -> list[tuple[dict, Path]]:
    """One out-of-fold fit of candidate ``name``; (log row, head file) for each of its tunings (``tune``: a
    function like :func:`tunings`, the default)."""
    version, weight = CANDIDATES[name]
    rows = training_rows()
    ex = [Example(r["text"], r["label"], tuple(r["categories"]), r["lang"], bool(r.get("lookalike")), "user")
          for r in rows]
    cfg = replace(FitConfig(), max_benign_fpr=1.0, feature_version=version)
    tmpl = np.array([r.get("source", "").startswith("template") for r in rows])
    own = np.array(["round" not in r for r in rows])
    w = np.where(tmpl, weight, loss_weights(ex, cfg))
    start = time.perf_counter()
    x = features([e.text for e in ex], cfg.hash_dim, 0.0, None, version)
    probs, (wt, bias) = oof_and_final(x, targets(ex), cfg, w)
    seconds = round(time.perf_counter() - start)
    s = unsafe_score(probs, cfg.category_mix)
    own_pt = own & np.array([e.lang == "pt" for e in ex])
    truth, look = np.array([e.unsafe for e in ex]), np.array([e.lookalike for e in ex])
    out = []
    for suffix, (t, t_en) in (tune or tunings)(s, ex, cfg, tmpl).items():
        head = Head(weight=wt, bias=bias, hash_dim=cfg.hash_dim, embed_scale=0.0, threshold=t,
                    category_mix=cfg.category_mix, threshold_en=t_en, feature_version=version)
        pred = s >= np.array([threshold_for(head, e.text) for e in ex])
        floor = choose_floor(probs[own_pt], pred[own_pt], truth[own_pt])
        pred &= probs[:, 1:].max(axis=1) >= floor
        sc = binary_scores(truth[own_pt], pred[own_pt])
        path = out_dir / f"{name}{suffix.replace('+', '_')}.safetensors"
        replace(head, category_floor=floor).save(path)
        out.append(({"name": name + suffix, "features": version, "template_weight": weight, "rows": len(rows),
                     "threshold": t, "threshold_en": t_en, "floor": floor, "oof_pt_recall": sc.recall,
                     "oof_pt_precision": sc.precision, "oof_pt_lookalike_fpr": float(pred[own_pt & look].mean()),
                     "seconds": seconds, "load": round(os.getloadavg()[0], 1), "head": str(path)}, path))
    return out


def tunings(s: np.ndarray, ex: list, cfg: FitConfig, tmpl: np.ndarray) -> dict[str, tuple[float, float | None]]:
    """(threshold, English threshold) per tuning (module docstring)."""
    def tuned(mask: np.ndarray, c: FitConfig) -> tuple[float, float | None]:
        return tune_thresholds(s[mask], [e for e, m in zip(ex, mask) if m], c)

    wide = replace(cfg, max_lookalike_fpr_en=EN_BUDGET)
    plain, tb = tuned(~tmpl, cfg), tuned(np.ones(len(ex), bool), cfg)
    return {"": plain, "+tb": tb, "+e": (plain[0], tuned(~tmpl, wide)[1]),
            "+tbe": (tb[0], tuned(np.ones(len(ex), bool), wide)[1])}


def dev_row(name: str, head: Path | None) -> dict:
    """guard_head_s9's dev row plus heldout_s12 (dev since session 12): everyday flagged (of 150), unsafe caught
    (of 56), answers + catalog flagged as model output."""
    row = score(name, head)
    h = read_s12(name, head, None, 0.74)
    row.update({"s12_everyday_flagged": h["everyday_flagged"], "s12_caught": h["caught"],
                "s12_output_flagged": h["answers_flagged"] + h["catalog_flagged"],
                "s12_everyday_items": h["everyday_items"], "s12_missed_items": h["missed_items"]})
    return row


def alarms(r: dict) -> int:
    """pt-BR alarms on dev: everyday (dev_s9 eval + dev_s7 eval + benign dev half + heldout_s12) + old dev
    pt-BR look-alikes."""
    return everyday_total(r) + r["s12_everyday_flagged"] + r["dev_pt_lookalikes_flagged"]


def caught(r: dict) -> int:
    """pt-BR unsafe caught on dev: dev_s9 eval + dev_s7 eval + old dev pt-BR + heldout_s12."""
    return pt_caught(r) + r["s12_caught"]


def eligible_s13(r: dict, ref: dict) -> bool:
    """The dev rule's conditions (docs/guard.md, "Thirteenth session"; committed before any candidate ran)."""
    return (r["name"] != "shipped" and "oof_pt_recall" in r and r["oof_pt_recall"] >= OOF_BAR
            and r["threshold"] >= 0.25
            and everyday_total(r) + r["s12_everyday_flagged"] <= everyday_total(ref) + ref["s12_everyday_flagged"] - 10
            and r["dev_pt_lookalikes_flagged"] <= ref["dev_pt_lookalikes_flagged"]
            and caught(r) >= caught(ref) - 1 and r["train_phrase_caught"] >= ref["train_phrase_caught"]
            and r["dev_en_caught"] >= ref["dev_en_caught"] - 1
            and r["dev_en_lookalikes_flagged"] <= ref["dev_en_lookalikes_flagged"] + 1
            and r["s12_output_flagged"] <= ref["s12_output_flagged"])


def pick_s13(scores: list[dict], runs: list[dict]) -> str:
    """Fewest pt-BR alarms (:func:`alarms`), then most pt-BR caught, then most English caught, then the higher
    pt-BR threshold, then the name; "none" when nothing is eligible."""
    meta = {r["name"]: r for r in runs}
    latest = {s["name"]: {**meta.get(s["name"], {}), **s} for s in scores}
    ref = latest["shipped"]
    ok = [r for r in latest.values() if eligible_s13(r, ref)]
    if not ok:
        return "none"
    return min(ok, key=lambda r: (alarms(r), -caught(r), -r["dev_en_caught"], -r["threshold"], r["name"]))["name"]


def read_s13(name: str, head: Path | None, english: Path | None = None, held: Path = HELD) -> dict:
    """One guard's read of heldout_s13 (the shipped guard with input head ``head``): everyday requests flagged,
    answer and catalog sentences flagged as model output (catalog also as user input, information), unsafe caught
    per category, pt-BR F1 on the requests, ms per request."""
    guard = build(head, english)
    everyday, answers = _lines(held / "everyday.txt"), _lines(held / "answers.txt")
    catalog = [x.split("\t", 1)[1] for x in _lines(held / "catalog.tsv")]
    unsafe = [x.split("\t", 1) for x in _lines(held / "unsafe.tsv")]
    user = everyday + [t for _, t in unsafe]
    start = time.perf_counter()
    v_user = guard.check_batch(user)
    ms = (time.perf_counter() - start) * 1000 / len(user)
    e_flag, u_hit = [not v.safe for v in v_user[:len(everyday)]], [not v.safe for v in v_user[len(everyday):]]
    a_flag = [not v.safe for v in guard.check_batch(answers, "assistant")]
    c_flag = [not v.safe for v in guard.check_batch(catalog, "assistant")]
    c_user = [not v.safe for v in guard.check_batch(catalog)]
    per = {}
    for (k, _), h in zip(unsafe, u_hit):
        per[k] = per.get(k, 0) + h
    return {"guard": name, "head": str(head) if head else "shipped", "ms_per_request_batch": round(ms, 2),
            "everyday": len(everyday), "everyday_flagged": sum(e_flag),
            "everyday_items": [t for t, f in zip(everyday, e_flag) if f],
            "answers": len(answers), "answers_flagged": sum(a_flag), "answers_items": [t for t, f in zip(answers, a_flag) if f],
            "catalog": len(catalog), "catalog_flagged": sum(c_flag), "catalog_items": [t for t, f in zip(catalog, c_flag) if f],
            "catalog_as_user_flagged": sum(c_user), "unsafe": len(unsafe), "caught": sum(u_hit), "per_category": per,
            "missed_items": [t for (_, t), h in zip(unsafe, u_hit) if not h],
            "pt_f1": round(binary_scores([False] * len(everyday) + [True] * len(unsafe), e_flag + u_hit).f1, 4),
            "load": round(os.getloadavg()[0], 1)}


def decide_s13(ref: dict, cand: dict) -> tuple[bool, list[str]]:
    """The held-out part of the ship rule (the test-split read follows only on a pass)."""
    checks = {"everyday flagged <= shipped - 3": cand["everyday_flagged"] <= ref["everyday_flagged"] - 3,
              "unsafe caught >= shipped": cand["caught"] >= ref["caught"],
              "answers + catalog flagged <= shipped": cand["answers_flagged"] + cand["catalog_flagged"]
              <= ref["answers_flagged"] + ref["catalog_flagged"]}
    failed = [k for k, ok in checks.items() if not ok]
    return not failed, failed


def test_passes(t: dict) -> bool:
    """CI's floors (tests/guard/test_evaluate.py) on the pick's one pt-BR test-split read."""
    p = t["pick"]
    return p["pt_f1"] >= 0.89 and p["pt_precision"] >= 0.99 and p["pt_recall"] >= 0.80 and p["pt_lookalike_fpr"] <= 0.012


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", choices=list(CANDIDATES), default=None)
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/guard_s13_heads"))
    parser.add_argument("--runs", type=Path, default=Path("/tmp/guard_s13_runs.jsonl"))
    parser.add_argument("--dev", type=Path, default=Path("/tmp/guard_s13_dev.jsonl"))
    parser.add_argument("--score-shipped", action="store_true")
    parser.add_argument("--pick", type=Path, default=None, help="the --dev log: apply pick_s13")
    parser.add_argument("--read", default=None, help="the dev pick's name ('none': the shipped guard only)")
    parser.add_argument("--head", type=Path, default=None)
    parser.add_argument("--log", type=Path, default=Path("/tmp/guard_s13_read.jsonl"))
    parser.add_argument("--decide", type=Path, default=None)
    parser.add_argument("--test", type=Path, default=None, help="head that passed decide_s13: the one test-split read")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.pick:
        return print(pick_s13(read_jsonl(args.pick), read_jsonl(args.runs) if args.runs.is_file() else []))
    if args.decide:
        rows = read_jsonl(args.decide)
        ship, failed = decide_s13(rows[0], rows[-1])
        return print(f"{rows[-1]['guard']}: {'passes' if ship else 'no'} (everyday {rows[-1]['everyday_flagged']} vs "
                     f"{rows[0]['everyday_flagged']}, caught {rows[-1]['caught']} vs {rows[0]['caught']})"
                     f"{'; failed: ' + '; '.join(failed) if failed else ''}")
    if args.test:
        from guard_head_s12 import read_test
        row = read_test(args.test)
        row["passes_ci_floors"] = test_passes(row)
        append_row(args.log, row)
        return print(json.dumps(row))
    if args.read:
        for name, head in (("shipped", None),) + (((args.read, args.head),) if args.read != "none" else ()):
            row = read_s13(name, head)
            append_row(args.log, row)
            print(json.dumps({k: v for k, v in row.items() if not k.endswith("_items")}, ensure_ascii=False))
        return None
    if args.score_shipped:
        row = dev_row("shipped", None)
        append_row(args.dev, row)
        return print(json.dumps({k: v for k, v in row.items() if not k.endswith("_items")}))
    if args.fit:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for run, path in fit(args.fit, args.out_dir):
            append_row(args.runs, run)
            row = dev_row(run["name"], path)
            append_row(args.dev, row)
            print(json.dumps({**run, **{k: v for k, v in row.items() if not k.endswith("_items")}}))
        return None
    parser.error("nothing to do")


if __name__ == "__main__":
    main()
