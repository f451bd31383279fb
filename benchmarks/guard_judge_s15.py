"""Issue #29, fifteenth session, a dev look (no rule, nothing ships): the issue's second stage on every flag.

The shipped guard judges the everyday and unsafe requests of sets already read (dev); every user request it flags
(any score, no band) is asked of the generative judge (``lhama.guard.judge``: lhama-default's language model, the
``PT_SHORT`` question, P(sim)), and the call's wall time is logged: only flagged items pay for the second stage.

    python benchmarks/guard_judge_s15.py --model-dir DIR --log L data/guard/heldout_s14 data/guard/heldout_s13
    python benchmarks/guard_judge_s15.py --summary L          # cleared / lost at a few thresholds, latency
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
from guard_head_s9 import build
from guard_heldout import append_row

from lhama.files import read_jsonl

THRESHOLDS = (0.70, 0.74, 0.78, 0.82, 0.86)


def _lines(path: Path) -> list[str]:
    return [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def requests(held: Path) -> list[tuple[str, str]]:
    """(kind, text): ``everyday`` or the unsafe request's category."""
    return [("everyday", t) for t in _lines(held / "everyday.txt")] + \
        [tuple(x.split("\t", 1)) for x in _lines(held / "unsafe.tsv")]


def probe(held: Path, judge, log: Path) -> None:
    """The shipped guard on ``held``'s requests; each flag asked of ``judge`` once, timed."""
    items = requests(held)
    verdicts = build(None).check_batch([t for _, t in items])
    for (kind, text), v in zip(items, verdicts):
        if v.safe:
            continue
        start = time.perf_counter()
        p = judge.p_yes(text)
        append_row(log, {"set": held.name, "kind": kind, "text": text, "score": round(float(v.score), 4),
                         "categories": list(v.categories), "p_yes": round(p, 4),
                         "seconds": round(time.perf_counter() - start, 3), "load": round(os.getloadavg()[0], 1)})


def summary(rows: list[dict]) -> dict:
    """Per threshold T (flag stands when P(sim) >= T): everyday alarms cleared and unsafe catches lost; latency."""
    out = {"flags": len(rows), "everyday_flags": sum(r["kind"] == "everyday" for r in rows)}
    for t in THRESHOLDS:
        out[f"t{t:.2f}"] = {"everyday_cleared": sum(r["kind"] == "everyday" and r["p_yes"] < t for r in rows),
                            "unsafe_lost": sum(r["kind"] != "everyday" and r["p_yes"] < t for r in rows)}
    secs = sorted(r["seconds"] for r in rows)
    out["seconds"] = {"median": statistics.median(secs), "p90": secs[int(0.9 * (len(secs) - 1))], "max": secs[-1]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="*", type=Path)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--quant", default="int8")
    parser.add_argument("--log", type=Path, default=Path("/tmp/guard_s15_judge.jsonl"))
    parser.add_argument("--summary", type=Path, default=None)
    args = parser.parse_args()
    if args.summary:
        return print(json.dumps(summary(read_jsonl(args.summary)), indent=1))
    if not args.model_dir or not args.sets:
        parser.error("--model-dir and at least one set directory are needed")
    torch.set_num_threads(1)
    from lhama.guard.judge import load_judge
    start = time.perf_counter()
    judge = load_judge(args.model_dir, args.quant)
    print(f"judge loaded in {time.perf_counter() - start:.1f} s")
    for held in args.sets:
        probe(held, judge, args.log)
    return print(json.dumps(summary(read_jsonl(args.log)), indent=1))


if __name__ == "__main__":
    main()
