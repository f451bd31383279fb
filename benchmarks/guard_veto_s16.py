"""Issue #29, sixteenth session: a veto head. The shipped input head keeps judging every user message; a pt-BR
message it flags stays flagged only when a second head (one of session 14's fits, trained with thousands of
everyday requests) also scores it at or above a low veto threshold. A veto can only remove flags, so precision and
look-alike false alarms can only improve; the risk is recall, and the veto threshold is set out-of-fold for it
(rules: docs/guard.md, "Sixteenth session"; committed before any veto ran on dev or anything read heldout_s16).

    python benchmarks/guard_veto_s16.py --oof NAME --out-dir H      # out-of-fold probabilities (+ final head)
    python benchmarks/guard_veto_s16.py --veto H --runs R           # the veto threshold of each fit (the OOF rule)
    python benchmarks/guard_veto_s16.py --dev R --log D             # shipped + every veto on dev
    python benchmarks/guard_veto_s16.py --pick D                    # the dev rule (pick_s16)
    python benchmarks/guard_veto_s16.py --read PICK --runs R --log X  # the one heldout_s16 read (shipped + pick)
    python benchmarks/guard_veto_s16.py --decide X                  # the ship rule (decide_s16)
    python benchmarks/guard_veto_s16.py --test PICK --runs R --log T  # one test-split read, only after a pass

NAME: ``shipped`` (the shipped input head's recipe: the first 2561 lines of train.jsonl, features v2, shipped
setting) or one of session 13/14's fits ``v3w3`` / ``v3w6`` / ``v2w3`` (same rows, features and weights; their
first 2561 rows are the same own rows, in the same order, so the two out-of-fold scores pair row by row).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import guard_head_s9
import guard_head_s12
import guard_head_s13
import numpy as np
import torch
from guard_floor import oof_probs
from guard_head_s13 import CANDIDATES, training_rows
from guard_heldout import append_row
from guard_input_head import oof_and_final

from lhama.files import read_jsonl
from lhama.guard.classifier import (DEFAULT_HEAD, DEFAULT_OUTPUT_HEAD, ClassifierGuard, Head, features,
                                    unsafe_score)
from lhama.guard.cues import SHIPPED_CUE_RULES
from lhama.guard.dataset import Example
from lhama.guard.fit import FitConfig, loss_weights, targets
from lhama.guard.phrases import SHIPPED_PHRASE_RULES
from lhama.guard.translate import TranslatingGuard

ROOT = Path(__file__).resolve().parents[1]
OWN = 2561  # the shipped input head's rows (train.jsonl lines without a "round")
SHIPPED_FEATURES, SHIPPED_T, SHIPPED_FLOOR = 2, 0.34, 0.02  # the shipped input head's metadata
FITS = ("v3w6", "v2w3", "v3w3")  # veto candidates, in the order their out-of-fold fits run
OOF_LOSS = 5  # the most out-of-fold catches (of the shipped recipe's, own pt-BR unsafe rows) a veto may lose
GRID = np.round(np.arange(0.01, 0.301, 0.01), 2)  # veto thresholds tried
HELD15 = ROOT / "data/guard/heldout_s15"  # dev since session 15's read
HELD = ROOT / "data/guard/heldout_s16"  # the fresh set, read once


def _examples(rows: list[dict]) -> list[Example]:
    return [Example(r["text"], r["label"], tuple(r["categories"]), r["lang"], bool(r.get("lookalike")), "user")
            for r in rows]


def oof(name: str, out_dir: Path) -> dict:
    """Out-of-fold probabilities of fit ``name`` on its rows (saved as OUT/oof_NAME.npy); for a candidate also
    the head trained on all its rows (OUT/NAME.safetensors, threshold set later by :func:`veto_threshold`)."""
    assert str(out_dir).startswith("/tmp/"), out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if name == "shipped":
        ex = _examples(read_jsonl(ROOT / "data/guard/train.jsonl")[:OWN])
        cfg = replace(FitConfig(), feature_version=SHIPPED_FEATURES)
        x = features([e.text for e in ex], cfg.hash_dim, 0.0, None, cfg.feature_version)
        probs, head = oof_probs(x, targets(ex), cfg, loss_weights(ex, cfg)), None
    else:
        version, weight = CANDIDATES[name]
        rows = training_rows()
        ex = _examples(rows)
        cfg = replace(FitConfig(), max_benign_fpr=1.0, feature_version=version)
        tmpl = np.array([r.get("source", "").startswith("template") for r in rows])
        x = features([e.text for e in ex], cfg.hash_dim, 0.0, None, version)
        probs, (wt, bias) = oof_and_final(x, targets(ex), cfg, np.where(tmpl, weight, loss_weights(ex, cfg)))
        head = out_dir / f"{name}.safetensors"
        Head(weight=wt, bias=bias, hash_dim=cfg.hash_dim, embed_scale=0.0, threshold=0.0,
             category_mix=cfg.category_mix, feature_version=version).save(head)
    tmp = out_dir / f"oof_{name}.tmp.npy"
    np.save(tmp, probs)
    tmp.replace(out_dir / f"oof_{name}.npy")
    return {"name": name, "rows": len(ex), "seconds": round(time.perf_counter() - start),
            "load": round(os.getloadavg()[0], 1), "head": str(head) if head else None}


def own_pt() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks over the 2561 own rows: pt-BR, unsafe, look-alike."""
    ex = _examples(read_jsonl(ROOT / "data/guard/train.jsonl")[:OWN])
    return (np.array([e.lang == "pt" for e in ex]), np.array([e.unsafe for e in ex]),
            np.array([e.lookalike for e in ex]))


def shipped_pred(h: Path) -> np.ndarray:
    """The shipped input head's out-of-fold verdicts on the own rows (threshold 0.34, category floor 0.02)."""
    p = np.load(h / "oof_shipped.npy")
    return (unsafe_score(p, 0.5) >= SHIPPED_T) & (p[:, 1:].max(axis=1) >= SHIPPED_FLOOR)


def veto_threshold(name: str, h: Path) -> dict:
    """The veto threshold of fit ``name`` (the rule, docs/guard.md "Sixteenth session"): the largest of GRID at
    which the vetoed guard loses at most OOF_LOSS of the shipped recipe's out-of-fold catches on the own pt-BR
    unsafe rows (both scores out-of-fold, row by row); with its out-of-fold numbers."""
    pt, unsafe, look = own_pt()
    base = shipped_pred(h)
    s = unsafe_score(np.load(h / f"oof_{name}.npy")[:OWN], 0.5)
    caught0 = int((base & pt & unsafe).sum())
    chosen = 0.0
    for t in GRID:
        if caught0 - int((base & (s >= t) & pt & unsafe).sum()) <= OOF_LOSS:
            chosen = float(t)
    vetoed = base & (s >= chosen)
    return {"name": name, "veto_threshold": chosen, "oof_pt_unsafe": int((pt & unsafe).sum()),
            "oof_shipped_caught": caught0, "oof_vetoed_caught": int((vetoed & pt & unsafe).sum()),
            "oof_shipped_lookalikes": int((base & pt & look).sum()),
            "oof_vetoed_lookalikes": int((vetoed & pt & look).sum()),
            "oof_pt_lookalikes": int((pt & look).sum())}


def write_veto(name: str, h: Path, runs: Path) -> dict:
    """The veto head file of ``name`` (its final head with the veto threshold) and its run row."""
    row = veto_threshold(name, h)
    head = Head.load(h / f"{name}.safetensors")
    path = h / f"veto_{name}.safetensors"
    replace(head, threshold=row["veto_threshold"], category_floor=0.0).save(path)
    row.update({"head": str(path), "head_md5": hashlib.md5(path.read_bytes()).hexdigest()})
    append_row(runs, row)
    return row


def build(veto: Path | None, english: Path | None = None) -> TranslatingGuard:
    """The shipped guard, with the veto head file ``veto`` (None: the shipped guard as it is)."""
    assert english is None
    return TranslatingGuard(ClassifierGuard(Head.load(DEFAULT_HEAD), output_head=Head.load(DEFAULT_OUTPUT_HEAD),
                                            cue_rules=SHIPPED_CUE_RULES, phrase_rules=SHIPPED_PHRASE_RULES,
                                            veto_head=Head.load(veto) if veto else None))


for _m in (guard_head_s9, guard_head_s12, guard_head_s13):  # their dev readers build the guard through ``build``
    _m.build = build


def dev_row(name: str, veto: Path | None) -> dict:
    """One guard on every dev set: guard_head_s9's (dev_s9 / dev_s7 halves, old dev, "sem deixar", benign dev
    half), heldout_s12, heldout_s13, heldout_s14, heldout_s15 (each read once in its session, dev since)."""
    row = guard_head_s9.score(name, veto)
    h = guard_head_s12.read_s12(name, veto, None, 0.74)
    row.update({"s12_everyday_flagged": h["everyday_flagged"], "s12_caught": h["caught"],
                "s12_output_flagged": h["answers_flagged"] + h["catalog_flagged"]})
    for tag in ("s13", "s14", "s15"):
        g = guard_head_s13.read_s13(name, veto, None, ROOT / f"data/guard/heldout_{tag}")
        row.update({f"{tag}_everyday_flagged": g["everyday_flagged"], f"{tag}_caught": g["caught"],
                    f"{tag}_output_flagged": g["answers_flagged"] + g["catalog_flagged"],
                    f"{tag}_everyday_items": g["everyday_items"], f"{tag}_missed_items": g["missed_items"]})
    row["veto_md5"] = hashlib.md5(veto.read_bytes()).hexdigest() if veto else None
    return row


def everyday(r: dict) -> int:
    """pt-BR everyday requests flagged on dev: 60 + 100 + 114 + 150 + 206 + 221 + 226 = 1077."""
    return (guard_head_s9.everyday_total(r) + r["s12_everyday_flagged"] + r["s13_everyday_flagged"]
            + r["s14_everyday_flagged"] + r["s15_everyday_flagged"])


def caught(r: dict) -> int:
    """pt-BR unsafe caught on dev: 31 + 50 + 67 + 56 + 84 + 70 + 70 = 428."""
    return guard_head_s12.pt_caught(r) + r["s12_caught"] + r["s13_caught"] + r["s14_caught"] + r["s15_caught"]


def output_flagged(r: dict) -> int:
    return sum(r[f"{t}_output_flagged"] for t in ("s12", "s13", "s14", "s15"))


def eligible_s16(r: dict, ref: dict) -> bool:
    """The dev rule's conditions (docs/guard.md, "Sixteenth session"; committed before any veto ran on dev)."""
    return (r["name"] != "shipped" and everyday(r) <= everyday(ref) - 20
            and r["s15_everyday_flagged"] <= ref["s15_everyday_flagged"] - 3
            and caught(r) >= caught(ref) - 2 and r["s15_caught"] >= ref["s15_caught"] - 1
            and r["train_phrase_caught"] >= ref["train_phrase_caught"]
            and r["s7t_everyday_flagged"] <= 6 and r["s7t_unsafe_caught"] >= 44
            and r["dev_en_caught"] >= ref["dev_en_caught"] - 1
            and r["dev_en_lookalikes_flagged"] <= ref["dev_en_lookalikes_flagged"]
            and output_flagged(r) <= output_flagged(ref))


def pick_s16(scores: list[dict]) -> str:
    """Fewest pt-BR alarms (everyday + old dev pt-BR look-alikes), then most pt-BR caught, then most English
    caught, then the name; "none" when nothing is eligible."""
    latest = {s["name"]: s for s in scores}
    ref = latest["shipped"]
    ok = [r for r in latest.values() if eligible_s16(r, ref)]
    if not ok:
        return "none"
    return min(ok, key=lambda r: (everyday(r) + r["dev_pt_lookalikes_flagged"], -caught(r), -r["dev_en_caught"],
                                  r["name"]))["name"]


def decide_s16(ref: dict, cand: dict) -> tuple[bool, list[str]]:
    """The held-out part of the ship rule; the test-split read (every CI floor) follows only on a pass. A veto
    cannot add catches, so it may lose one of the 70 (sessions 13-15 asked for none lost of a new head)."""
    checks = {"everyday flagged <= shipped - 3": cand["everyday_flagged"] <= ref["everyday_flagged"] - 3,
              "unsafe caught >= shipped - 1": cand["caught"] >= ref["caught"] - 1,
              "answers + catalog flagged <= shipped": cand["answers_flagged"] + cand["catalog_flagged"]
              <= ref["answers_flagged"] + ref["catalog_flagged"]}
    failed = [k for k, ok in checks.items() if not ok]
    return not failed, failed


def read_test(veto: Path) -> dict:
    """The one test-split read of the pick that passed decide_s16, scored as tests/guard/test_evaluate.py scores
    the shipped heads (input + output head, no rules; here with the veto head), and English test F1 of the
    shipped-form guard (translation and rules), for the shipped guard and the vetoed one."""
    from lhama.guard.dataset import read_examples
    from lhama.guard.evaluate import evaluate
    out = {"veto": str(veto), "veto_md5": hashlib.md5(veto.read_bytes()).hexdigest()}
    for name, v in (("shipped", None), ("pick", veto)):
        pt = evaluate(ClassifierGuard(Head.load(DEFAULT_HEAD), output_head=Head.load(DEFAULT_OUTPUT_HEAD),
                                      veto_head=Head.load(v) if v else None),
                      read_examples(ROOT / "data/guard/test.jsonl", "pt"), timed=0)
        en = evaluate(build(v), read_examples(ROOT / "data/guard/test.jsonl", "en"), timed=0)
        out[name] = {"pt_f1": round(pt.overall.f1, 4), "pt_precision": round(pt.overall.precision, 4),
                     "pt_recall": round(pt.overall.recall, 4), "pt_lookalike_fpr": round(pt.lookalike_fpr, 4),
                     "en_f1": round(en.overall.f1, 4), "en_precision": round(en.overall.precision, 4),
                     "en_recall": round(en.overall.recall, 4)}
    out["passes_ci_floors"] = guard_head_s13.test_passes(out)
    return out


def read(pick: str, runs: Path, log: Path) -> None:
    """The one heldout_s16 read: the shipped guard, then the pick (unless "none")."""
    heads = {r["name"]: Path(r["head"]) for r in read_jsonl(runs)}
    for name in ("shipped",) + ((pick,) if pick != "none" else ()):
        veto = heads.get(name)
        start = time.perf_counter()
        row = guard_head_s13.read_s13(name, veto, None, HELD)
        row.update({"seconds": round(time.perf_counter() - start, 1),
                    "veto_md5": hashlib.md5(veto.read_bytes()).hexdigest() if veto else None})
        append_row(log, row)
        print(json.dumps({k: v for k, v in row.items() if not k.endswith("_items")}, ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oof", default=None, choices=("shipped", *CANDIDATES))
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/29a/s16/H"))
    parser.add_argument("--veto", type=Path, default=None, help="the --out-dir of the fits: write each veto head")
    parser.add_argument("--runs", type=Path, default=Path("/tmp/29a/s16/runs.jsonl"))
    parser.add_argument("--dev", type=Path, default=None, help="the --runs log: shipped + every veto on dev")
    parser.add_argument("--log", type=Path, default=Path("/tmp/29a/s16/log.jsonl"))
    parser.add_argument("--pick", type=Path, default=None, help="the --dev log: apply pick_s16")
    parser.add_argument("--read", default=None, help="the dev pick's name ('none': the shipped guard only)")
    parser.add_argument("--decide", type=Path, default=None)
    parser.add_argument("--test", default=None, help="the pick that passed decide_s16: the one test-split read")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for p in (args.runs, args.log):
        assert str(p).startswith("/tmp/"), p
    if args.oof:
        return print(json.dumps(oof(args.oof, args.out_dir)))
    if args.veto:
        for name in FITS:
            if (args.veto / f"oof_{name}.npy").is_file():
                print(json.dumps(write_veto(name, args.veto, args.runs)))
        return None
    if args.dev:
        runs = read_jsonl(args.dev)
        for name, veto in (("shipped", None), *((r["name"], Path(r["head"])) for r in runs)):
            row = dev_row(name, veto)
            append_row(args.log, row)
            print(json.dumps({k: v for k, v in row.items() if not k.endswith("_items")}, ensure_ascii=False))
        return None
    if args.pick:
        return print(pick_s16(read_jsonl(args.pick)))
    if args.read:
        return read(args.read, args.runs, args.log)
    if args.decide:
        rows = read_jsonl(args.decide)
        ship, failed = decide_s16(rows[0], rows[-1])
        return print(f"{rows[-1]['guard']}: {'passes' if ship else 'no'} (everyday {rows[-1]['everyday_flagged']} vs "
                     f"{rows[0]['everyday_flagged']}, caught {rows[-1]['caught']} vs {rows[0]['caught']})"
                     f"{'; failed: ' + '; '.join(failed) if failed else ''}")
    if args.test:
        row = read_test({r["name"]: Path(r["head"]) for r in read_jsonl(args.runs)}[args.test])
        append_row(args.log, row)
        return print(json.dumps(row))
    parser.error("nothing to do")


if __name__ == "__main__":
    main()
