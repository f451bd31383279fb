"""#30 session 11: a late start whose draft reads the last N tokens before it joins (``Draft.reads_at_join``), chosen on
dev under the rule below (committed before the dev job that measures its flags ran).

    python3 benchmarks/spec_sim_s11_join.py /tmp/30a/dev_s10.json /tmp/30a/dev_s11_join.json \\
        --base READS,START,BELOW,WINDOW,REST,GROW,STREAK [--out docs/results/spec_sim_s11_join.json]

Why: spec_sim_s11.py's late starts kept short answers from losing (x1.000 worst short) but cost long answers more than
its 0.01 allowance, because a draft joining after S tokens prefilled the prompt's last N AND the S answer tokens
(~10 ms a token at 1 thread, 0.5-0.6 s for S = 32). Reading the last N before the join makes a late join cost what an
early one does, so a late start should keep short answers plain and cost long ones only the steps it sits out.

Input: spec_dev_s10.py's file (answers, costs, the base's flags for start 0) and spec_dev_s11.py's join flags (per join
point S: the draft's teacher-forced flags at answer positions >= S, reading the last READS tokens before it joined).
The walk and the two cost models are spec_sim_s10.py's, except that the draft's first prefill is READS + 1 tokens
(the prompt's last READS + 1 if it joins at the first token, as the base) whatever S.

Candidates: the base's reads and k, reading at the join, with start {0, 4, 8, 12, 16, 20, 24, 32} x the 5 rests of
spec_sim_s11.py. The base (the setting that ships after session 10's timing rule: s9 default, or session 10's "new" if
it passed) reads the prompt's end from the first token.

RULE (written before the join flags existed): spec_sim_s11.py's rule as written (eligible: "hard" long geo >= base -
0.01 and "1t" geo >= base - 0.01; pick the highest "hard" worst short prompt, then short geo, fewest knobs, "1t" geo;
chosen only if its "hard" worst short beats the base's by >= 0.02 with a short geo no lower). A choice is timed in a
later session's one exclusive run (this session's is spent) before anything ships; until then it only names the next
timing's candidate.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, replace
from pathlib import Path

from spec_sim_s10 import HARD, SHORT_BELOW, Candidate, Costs, simulate
from spec_sim_s11 import RESTS, STARTS, _line, knobs, parse_base


class _JoinCosts:
    """A prompt's costs with the draft's first prefill READS + 1 tokens however late it joins."""

    def __init__(self, costs: Costs, reads: int, prompt_tokens: int) -> None:
        self.costs, self.first = costs, min(reads, prompt_tokens) + 1

    def draft_prefill(self, n: int) -> float:
        return self.costs.draft_prefill(self.first)

    def __getattr__(self, name: str):
        return getattr(self.costs, name)


def evaluate(dev: dict, join: dict, c: Candidate, costs: Costs, at_join: bool) -> dict:
    ratios, short, kept, proposed = [], [], 0, 0
    for p, j in zip(dev["prompts"], join["prompts"]):
        flags = p["flags"][str(c.reads)]
        if at_join and c.start and str(c.start) in j["flags"]:
            flags = [f if f is not None else 0 for f in j["flags"][str(c.start)]]  # None: before the join, unused
        walk_costs = _JoinCosts(costs, c.reads, p["prompt_tokens"]) if at_join else costs
        plain = costs.target_prefill(p["prompt_tokens"]) + (len(flags) - 1) * costs.t1
        t, k, n = simulate(flags, p["prompt_tokens"], c, walk_costs)
        ratios.append(plain / t)
        short.append(len(flags) < SHORT_BELOW)
        kept, proposed = kept + k, proposed + n
    geo = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")  # noqa: E731
    s = [r for r, is_short in zip(ratios, short) if is_short]
    lo = [r for r, is_short in zip(ratios, short) if not is_short]
    copy = [r for r, p in zip(ratios, dev["prompts"]) if p["id"].startswith("copy-")]
    return {"geo": geo(ratios), "short_geo": geo(s), "long_geo": geo(lo), "worst_short": min(s) if s else float("nan"),
            "copy_geo": geo(copy), "acceptance": kept / proposed if proposed else 0.0, "ratios": ratios}


def check_join_file(dev: dict, join: dict) -> None:
    """The join file answers the dev file's prompts, and its join at the first token is the base's reading."""
    if [p["id"] for p in dev["prompts"]] != [p["id"] for p in join["prompts"]]:
        raise SystemExit("the join file's prompts are not the dev file's")
    for p, j in zip(dev["prompts"], join["prompts"]):
        if j["flags"]["0"][1:] != p["flags"][str(join["reads"])][1:]:
            raise SystemExit(f"{p['id']}: joining at the first token should read as the base reads")


def choose(dev: dict, join: dict, base: Candidate) -> dict:
    models = {"1t": Costs(dev["ms"]), "hard": Costs(dev["ms"], HARD)}
    pool = [replace(base, start=s, below=b, window=w, rest=r) for s in STARTS for b, w, r in RESTS]
    rows = [(c, {m: evaluate(dev, join, c, costs, True) for m, costs in models.items()}) for c in pool]
    b = {m: evaluate(dev, join, base, costs, False) for m, costs in models.items()}
    eligible = [(c, r) for c, r in rows if r["hard"]["long_geo"] >= b["hard"]["long_geo"] - 0.01
                and r["1t"]["geo"] >= b["1t"]["geo"] - 0.01]
    if not eligible:
        return {"rows": rows, "base": b, "eligible": 0, "pick": base, "pick_result": b, "chosen": None}
    worst = max(r["hard"]["worst_short"] for _, r in eligible)
    near = [(c, r) for c, r in eligible if r["hard"]["worst_short"] >= worst - 0.005]
    best_short = max(r["hard"]["short_geo"] for _, r in near)
    near = [(c, r) for c, r in near if r["hard"]["short_geo"] >= best_short - 0.003]
    pick, result = min(near, key=lambda cr: (knobs(cr[0], base), -cr[1]["1t"]["geo"]))
    wins = result["hard"]["worst_short"] >= b["hard"]["worst_short"] + 0.02 and \
        result["hard"]["short_geo"] >= b["hard"]["short_geo"]
    return {"rows": rows, "base": b, "eligible": len(eligible), "pick": pick, "pick_result": result,
            "chosen": pick if wins else None}  # None: the base stays (reading the prompt's end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dev", type=Path)
    parser.add_argument("join", type=Path)
    parser.add_argument("--base", type=parse_base, required=True)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    dev, join = json.loads(args.dev.read_text()), json.loads(args.join.read_text())
    check_join_file(dev, join)
    found = choose(dev, join, args.base)
    print("base (reads the prompt's end):", _line(args.base, found["base"]))
    print(f"eligible {found['eligible']} of {len(found['rows'])} (reading at the join)")
    print("by start, no rests:")
    for c, r in found["rows"]:
        if c.below == 0:
            print(" ", _line(c, r))
    print("top 5 by hard worst short (any):")
    for c, r in sorted(found["rows"], key=lambda cr: -cr[1]["hard"]["worst_short"])[:5]:
        print(" ", _line(c, r))
    print("pick (reading at the join):", _line(found["pick"], found["pick_result"]))
    chosen = found["chosen"]
    print("CHOSEN:", f"{asdict(chosen)} reading at the join" if chosen else f"{asdict(args.base)} (the base)")
    if args.out:
        rows = [{"candidate": asdict(c), "reads_at_join": True, **r} for c, r in found["rows"]]
        text = json.dumps({"base": asdict(args.base), "base_result": found["base"],
                           "chosen_reads_at_join": asdict(chosen) if chosen else None,
                           "pick": asdict(found["pick"]), "rows": rows}, indent=0) + "\n"
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
