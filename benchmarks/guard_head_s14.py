"""Issue #29, fourteenth session: the v3 input head with an English-side lever, chosen on dev under a rule committed
before any candidate ran, then one read of the fresh data/guard/heldout_s14 (rules: docs/guard.md, "Fourteenth
session").

    python benchmarks/guard_head_s14.py --score-shipped --dev D                      # the shipped guard on dev
    python benchmarks/guard_head_s14.py --fit v3w3 --out-dir H --runs R --dev D     # one candidate: fit + dev scores
    python benchmarks/guard_head_s14.py --pick D --runs R                            # the dev rule (pick_s14)
    python benchmarks/guard_head_s14.py --read PICK --runs R --log X                 # the one heldout_s14 read
    python benchmarks/guard_head_s14.py --decide X                                   # the ship rule (decide_s14)
    python benchmarks/guard_head_s14.py --test PICK --runs R --log T                 # one test-split read, after a pass

Candidates (named before any ran): the three fits of guard_head_s13 (``v3w3``, ``v3w6``, ``v2w3``: same rows, same
features and template weights), each with eight tunings: session 13's four (plain, ``+tb``, ``+e``, ``+tbe``), two
with an English look-alike budget of 0.07 (``+e7``, ``+tbe7``), and two routed ones (``+r``, ``+tbr``: the plain /
``+tb`` head for pt-BR, while user text that looks English is judged by the shipped input head, as today — the
English-side lever that cannot lose English recall on the original text; its translation still goes to the new head).
Dev adds heldout_s13 (dev since its one read) to session 13's dev sets.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from guard_head_s9 import everyday_total, score
from guard_head_s12 import pt_caught, read_s12
from guard_head_s13 import CANDIDATES, OOF_BAR, fit, read_s13, test_passes, tunings
from guard_heldout import append_row

from lhama.files import read_jsonl
from lhama.guard.classifier import DEFAULT_HEAD
from lhama.guard.fit import FitConfig, tune_thresholds

ROOT = Path(__file__).resolve().parents[1]
HELD13 = ROOT / "data/guard/heldout_s13"  # dev since session 13's read
HELD = ROOT / "data/guard/heldout_s14"  # the fresh set, read once
EN_BUDGET_7 = 0.07
ROUTED = {"+r": "", "+tbr": "+tb"}  # routed tuning: the tuning whose head judges pt-BR


def tunings_s14(s: np.ndarray, ex: list, cfg: FitConfig, tmpl: np.ndarray) -> dict[str, tuple[float, float | None]]:
    """Session 13's four tunings plus ``+e7`` / ``+tbe7`` (English look-alike budget 0.07)."""
    out = tunings(s, ex, cfg, tmpl)
    wide = replace(cfg, max_lookalike_fpr_en=EN_BUDGET_7)

    def en(mask: np.ndarray) -> float | None:
        return tune_thresholds(s[mask], [e for e, m in zip(ex, mask) if m], wide)[1]

    out["+e7"] = (out[""][0], en(~tmpl))
    out["+tbe7"] = (out["+tb"][0], en(np.ones(len(ex), bool)))
    return out


def dev_row(name: str, head: Path | None, english: Path | None = None) -> dict:
    """guard_head_s13's dev row (dev_s9 / dev_s7 halves, old dev, "sem deixar", benign dev half, heldout_s12) plus
    heldout_s13: everyday flagged (of 206), unsafe caught (of 84), answers + catalog flagged as output (of 250)."""
    row = score(name, head, english)
    h = read_s12(name, head, None, 0.74, english)
    row.update({"s12_everyday_flagged": h["everyday_flagged"], "s12_caught": h["caught"],
                "s12_output_flagged": h["answers_flagged"] + h["catalog_flagged"]})
    g = read_s13(name, head, english, HELD13)
    row.update({"s13_everyday_flagged": g["everyday_flagged"], "s13_caught": g["caught"],
                "s13_output_flagged": g["answers_flagged"] + g["catalog_flagged"],
                "s13_everyday_items": g["everyday_items"], "english_head": str(english) if english else None})
    return row


def everyday(r: dict) -> int:
    """pt-BR everyday requests flagged on dev: dev_s9 eval + dev_s7 eval + benign dev half + heldout_s12 +
    heldout_s13 (60 + 100 + 114 + 150 + 206 = 630)."""
    return everyday_total(r) + r["s12_everyday_flagged"] + r["s13_everyday_flagged"]


def alarms(r: dict) -> int:
    """pt-BR alarms on dev: :func:`everyday` + old dev pt-BR look-alikes (67)."""
    return everyday(r) + r["dev_pt_lookalikes_flagged"]


def caught(r: dict) -> int:
    """pt-BR unsafe caught on dev: dev_s9 eval + dev_s7 eval + old dev pt-BR + heldout_s12 + heldout_s13
    (31 + 50 + 67 + 56 + 84 = 288)."""
    return pt_caught(r) + r["s12_caught"] + r["s13_caught"]


def output_flagged(r: dict) -> int:
    return r["s12_output_flagged"] + r["s13_output_flagged"]


def eligible_s14(r: dict, ref: dict) -> bool:
    """The dev rule's conditions (docs/guard.md, "Fourteenth session"; committed before any candidate ran)."""
    return (r["name"] != "shipped" and "oof_pt_recall" in r and r["oof_pt_recall"] >= OOF_BAR
            and r["threshold"] >= 0.25
            and everyday(r) <= everyday(ref) - 15
            and r["dev_pt_lookalikes_flagged"] <= ref["dev_pt_lookalikes_flagged"]
            and caught(r) >= caught(ref) - 1 and r["train_phrase_caught"] >= ref["train_phrase_caught"]
            and r["dev_en_caught"] >= ref["dev_en_caught"] - 1
            and r["dev_en_lookalikes_flagged"] <= ref["dev_en_lookalikes_flagged"] + 1
            and output_flagged(r) <= output_flagged(ref))


def pick_s14(scores: list[dict], runs: list[dict]) -> str:
    """Fewest pt-BR alarms (:func:`alarms`), then most pt-BR caught, then most English caught, then the higher
    pt-BR threshold, then not routed (one head file fewer), then the name; "none" when nothing is eligible."""
    meta = {r["name"]: r for r in runs}
    latest = {s["name"]: {**meta.get(s["name"], {}), **s} for s in scores}
    ref = latest["shipped"]
    ok = [r for r in latest.values() if eligible_s14(r, ref)]
    if not ok:
        return "none"
    return min(ok, key=lambda r: (alarms(r), -caught(r), -r["dev_en_caught"], -r["threshold"],
                                  bool(r.get("routed")), r["name"]))["name"]


def decide_s14(ref: dict, cand: dict) -> tuple[bool, list[str]]:
    """The held-out part of the ship rule (the test-split read follows only on a pass)."""
    checks = {"everyday flagged <= shipped - 3": cand["everyday_flagged"] <= ref["everyday_flagged"] - 3,
              "unsafe caught >= shipped": cand["caught"] >= ref["caught"],
              "answers + catalog flagged <= shipped": cand["answers_flagged"] + cand["catalog_flagged"]
              <= ref["answers_flagged"] + ref["catalog_flagged"]}
    failed = [k for k, ok in checks.items() if not ok]
    return not failed, failed


def pick_heads(name: str, runs: Path) -> tuple[Path, Path | None]:
    """(input head file, English head file or None) of the candidate ``name`` from the --runs log."""
    row = {r["name"]: r for r in read_jsonl(runs)}[name]
    return Path(row["head"]), (DEFAULT_HEAD if row.get("routed") else None)


def run_fit(name: str, out_dir: Path, runs: Path, dev: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    results = fit(name, out_dir, tunings_s14)
    by_suffix = {row["name"][len(name):]: row for row, _ in results}
    for suffix, base in ROUTED.items():
        results.append(({**by_suffix[base], "name": name + suffix, "routed": True}, Path(by_suffix[base]["head"])))
    for run, path in results:
        append_row(runs, run)
        row = dev_row(run["name"], path, DEFAULT_HEAD if run.get("routed") else None)
        append_row(dev, row)
        print(json.dumps({**run, **{k: v for k, v in row.items() if not k.endswith("_items")}}, ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", choices=list(CANDIDATES), default=None)
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/guard_s14_heads"))
    parser.add_argument("--runs", type=Path, default=Path("/tmp/guard_s14_runs.jsonl"))
    parser.add_argument("--dev", type=Path, default=Path("/tmp/guard_s14_dev.jsonl"))
    parser.add_argument("--score-shipped", action="store_true")
    parser.add_argument("--pick", type=Path, default=None, help="the --dev log: apply pick_s14")
    parser.add_argument("--read", default=None, help="the dev pick's name ('none': the shipped guard only)")
    parser.add_argument("--log", type=Path, default=Path("/tmp/guard_s14_read.jsonl"))
    parser.add_argument("--decide", type=Path, default=None)
    parser.add_argument("--test", default=None, help="the pick that passed decide_s14: the one test-split read")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.pick:
        return print(pick_s14(read_jsonl(args.pick), read_jsonl(args.runs) if args.runs.is_file() else []))
    if args.decide:
        rows = read_jsonl(args.decide)
        ship, failed = decide_s14(rows[0], rows[-1])
        return print(f"{rows[-1]['guard']}: {'passes' if ship else 'no'} (everyday {rows[-1]['everyday_flagged']} vs "
                     f"{rows[0]['everyday_flagged']}, caught {rows[-1]['caught']} vs {rows[0]['caught']})"
                     f"{'; failed: ' + '; '.join(failed) if failed else ''}")
    if args.test:
        from guard_head_s12 import read_test
        head, english = pick_heads(args.test, args.runs)
        row = read_test(head, english)
        row["passes_ci_floors"] = test_passes(row)
        append_row(args.log, row)
        return print(json.dumps(row))
    if args.read:
        picks = (("shipped", None, None),)
        if args.read != "none":
            picks += ((args.read, *pick_heads(args.read, args.runs)),)
        for name, head, english in picks:
            start = time.perf_counter()
            row = read_s13(name, head, english, HELD)
            row["seconds"] = round(time.perf_counter() - start, 1)
            append_row(args.log, row)
            print(json.dumps({k: v for k, v in row.items() if not k.endswith("_items")}, ensure_ascii=False))
        return None
    if args.score_shipped:
        row = dev_row("shipped", None)
        append_row(args.dev, row)
        return print(json.dumps({k: v for k, v in row.items() if not k.endswith("_items")}, ensure_ascii=False))
    if args.fit:
        return run_fit(args.fit, args.out_dir, args.runs, args.dev)
    parser.error("nothing to do")


if __name__ == "__main__":
    main()
