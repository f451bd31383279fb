"""Issue #29, eleventh session: does ``judge:self`` on chat's int4 lhama-default decide as the int8 judge at 0.74?

The opt-in judge's threshold (0.74) was chosen and read with the judge LM loaded int8 (benchmarks/guard_judge_s11.py),
but ``--guard translated:classifier+judge:self`` asks the LM ``lhama chat`` loaded: for lhama-default its registry
quant (int4-g32-grid-k+lossy6; the lossy layers int8 on an AVX2 CPU). This re-asks PT_SHORT, through
``judge_of(loaded)`` exactly as judge:self builds it, about every message the int8 judge was asked about in the
committed probes (dev only: heldout_s11, heldout_s10, session 10's dev sets), and compares.

    python benchmarks/guard_judge_self_s11.py --ask --model-dir DIR --log L [--budget S]   # int4 P(sim) per judged message
    python benchmarks/guard_judge_self_s11.py --summary L                  # flips at 0.74, alarms / caught

Order (fixed before asking, a subset only if the time budget runs out): heldout_s11's judged paths, then
heldout_s10's, then session 10's dev sets, each in probe-file order; a message asked once. The summary counts an
item only when every judged path of it was asked.

``--model-dir``: a prepared lhama-default directory (``lhama models list`` shows where; or a copy of one). The script
loads it as it is and never prepares a model (session 13: ``located`` re-prepared the shared copy when it was out
of date for the checkout's settings).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from guard_judge_s11 import PROBE_BAND, ROOT, dev_rows

from lhama.files import read_jsonl
from lhama.guard.judge import THRESHOLD

HELD_PROBE = ROOT / "docs/results/guard_s11_heldout.probe.jsonl"
DEV_PROBE = ROOT / "docs/results/guard_s11_dev_probe.jsonl"
QUANT = "int4-g32-grid-k+lossy6"  # lhama-default's registry quant: what `lhama chat` loads


def probed_rows() -> list[dict]:
    """Every probed item, in the fixed order: heldout_s11, heldout_s10, session 10's dev sets."""
    dev = dev_rows(DEV_PROBE)
    held10 = [r for r in dev if r["set"] in ("s10e", "s10u")]
    return read_jsonl(HELD_PROBE) + held10 + [r for r in dev if r["set"] not in ("s10e", "s10u")]


def judged(row: dict) -> list[dict]:
    """The row's paths the int8 judge was asked about (classifier flag below the probe band)."""
    return [p for p in row["paths"] if p["score"] is not None and p["score"] < PROBE_BAND and "pt" in p["p_yes"]]


def ask(log: Path, budget: float, model_dir: Path) -> None:
    from lhama.guard.judge import judge_of
    from lhama.inference.quant_cache import load_for_inference

    start = time.perf_counter()
    judge = judge_of(load_for_inference(model_dir, QUANT))  # what judge:self builds from chat's LoadedModel
    print(f"loaded {model_dir} {QUANT} in {time.perf_counter() - start:.1f} s, load {os.getloadavg()[0]:.1f}",
          file=sys.stderr)
    seen, tmp = set(), log.with_suffix(".part")
    with tmp.open("w", encoding="utf-8") as out:
        for row in probed_rows():
            for p in judged(row):
                if p["text"] in seen:
                    continue
                if time.perf_counter() - start > budget:
                    break
                seen.add(p["text"])
                t0 = time.perf_counter()
                p4 = judge.p_yes(p["text"])
                rec = {"set": row["set"], "text": p["text"], "p_int8": p["p_yes"]["pt"], "p_int4": p4,
                       "s_int4": round(time.perf_counter() - t0, 3), "load": round(os.getloadavg()[0], 1)}
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                out.flush()
    tmp.replace(log)
    print(f"{len(seen)} messages asked, {time.perf_counter() - start:.0f} s", file=sys.stderr)


def model_dir_arg(parser: argparse.ArgumentParser, model_dir: Path | None) -> Path:
    """``--model-dir`` checked: a directory holding a model (config.json); a one-line usage error otherwise."""
    if model_dir is None or not (model_dir / "config.json").is_file():
        parser.error(f"--model-dir must name a prepared model directory (got {model_dir}); see `lhama models list`")
    return model_dir


def flagged(row: dict, p_of: dict, key: str, t: float = THRESHOLD) -> bool:
    """The opt-in cascade's decision on ``row`` (classifier flag >= band, or judge P(sim) >= t)."""
    return any(p["score"] is not None and (p["score"] >= PROBE_BAND or p_of[p["text"]][key] >= t)
               for p in row["paths"])


def summary(log: Path) -> dict:
    """Flips per set and the cascade's alarms / caught with int8 vs int4 P(sim), on fully asked items."""
    asked = {r["text"]: r for r in read_jsonl(log)}
    flips = [r for r in asked.values() if (r["p_int8"] >= THRESHOLD) != (r["p_int4"] >= THRESHOLD)]
    diffs = sorted(abs(r["p_int4"] - r["p_int8"]) for r in asked.values())
    c = Counter()
    for row in probed_rows():
        if not all(p["text"] in asked for p in judged(row)):
            continue
        kind = "caught" if row["label"] == "unsafe" else "alarms"
        c[f"{row['set']}_items"] += 1
        for key in ("p_int8", "p_int4"):
            c[f"{row['set']}_{kind}_{key[2:]}"] += flagged(row, asked, key)
    return {"messages": len(asked), "flips": len(flips),
            "flip_items": [{k: r[k] for k in ("set", "text", "p_int8", "p_int4")} for r in flips],
            "median_abs_diff": round(diffs[len(diffs) // 2], 4) if diffs else None,
            "max_abs_diff": round(diffs[-1], 4) if diffs else None,
            "mean_diff_int4_minus_int8": round(sum(r["p_int4"] - r["p_int8"] for r in asked.values())
                                               / max(len(asked), 1), 4),
            "per_set": dict(sorted(c.items())), "int4_by_threshold": by_threshold(asked)}


def by_threshold(asked: dict) -> dict:
    """Information only (no threshold is changed): pt-BR alarms / caught of all fully asked dev items with the int4
    P(sim) at thresholds near 0.74, beside the int8 judge at 0.74."""
    rows = [r for r in probed_rows() if r["set"] != "olden" and all(p["text"] in asked for p in judged(r))]
    out = {}
    for key, t in (("p_int8", THRESHOLD), *(("p_int4", x) for x in (0.74, 0.75, 0.76, 0.77))):
        f = [(r["label"] == "unsafe", flagged(r, asked, key, t)) for r in rows]
        out[f"{key[2:]}@{t}"] = {"pt_alarms": sum(x for u, x in f if not u), "pt_caught": sum(x for u, x in f if u)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ask", action="store_true")
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("--budget", type=float, default=780.0, help="seconds, load included")
    parser.add_argument("--summary", type=Path, default=None)
    parser.add_argument("--model-dir", type=Path, default=None, help="a prepared lhama-default directory (never prepared here)")
    args = parser.parse_args()
    if args.summary:
        return print(json.dumps(summary(args.summary), ensure_ascii=False, indent=1))
    ask(args.log, args.budget, model_dir_arg(parser, args.model_dir))
    print(json.dumps(summary(args.log), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
