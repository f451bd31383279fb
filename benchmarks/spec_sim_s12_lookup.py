"""#30 session 12: prompt lookup as the draft, simulated on dev (no model runs; seconds).

    python3 benchmarks/spec_sim_s12_lookup.py docs/results/spec_dev_s10.json [--out docs/results/spec_sim_s12_lookup.json]

Input: benchmarks/spec_dev_s10.py's file (30 dev prompts: the shipped target's greedy answers <= 48 tokens and the
1-thread costs). The prompts' ids are rebuilt with the target's tokenizer (the same chat template and system prompt).
Per prompt and candidate the walk is speculative_ids' loop with a ``Lookup`` draft: the first token from the target's
prefill; then at each step the lookup's proposal (at most k, at most the budget left) is checked in one (1 + c)-row
step and keeps its leading tokens equal to the answer's, plus the model's own; a step with no match is the plain
1-row step. Teacher-forced proposals are exact here: a kept token leaves the context the answer's. Plain = target
prefill + (answer - 1) x T1; ratio = plain / with the draft (> 1: faster). Cost models as spec_sim_s10.py: "1t" the
measured 1-thread medians; "hard" a check's rows beyond one step x 1.35 (a lookup has no other cost).
Candidates: k {1, 2, 3} x matches of the last {4..1, 4..2, 5..3} ids. The 0.5B draft's rows for comparison are
spec_sim_s10.py's (session 9 default: "1t" geo 1.035, "hard" 0.958).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spec_sim_s10 import Costs  # noqa: E402

from lhama.inference.lookup import Lookup  # noqa: E402

BUDGET = 48
SHORT_BELOW = 32
CANDIDATES = [(k, Lookup(longest, shortest)) for k in (1, 2, 3) for longest, shortest in ((4, 1), (4, 2), (5, 3))]


def walk(prompt: list[int], answer: list[int], k: int, lookup: Lookup, costs: Costs) -> tuple[float, int, int]:
    """(ms with the lookup draft, kept, proposed) for one answer, as speculative_ids would decode it."""
    t, produced, kept_all, proposed = costs.target_prefill(len(prompt)), 1, 0, 0
    while produced < len(answer):
        count = min(k, BUDGET - produced - 1)
        proposal = lookup.propose(prompt + answer[:produced], count) if count else []
        if not proposal:
            t, produced = t + costs.t1, produced + 1
            continue
        kept = next((i for i, p in enumerate(proposal) if produced + i >= len(answer) or p != answer[produced + i]),
                    len(proposal))
        t += costs.check(len(proposal) + 1)
        proposed, kept_all, produced = proposed + len(proposal), kept_all + kept, produced + kept + 1
    return t, kept_all, proposed


def evaluate(dev: dict, prompts: dict[str, list[int]], k: int, lookup: Lookup, costs: Costs) -> dict:
    parts = {"all": [], "short": [], "long": [], "copy": []}
    kept = made = 0
    for p in dev["prompts"]:
        ids, answer = prompts[p["id"]], p["answer"]
        plain = costs.target_prefill(len(ids)) + (len(answer) - 1) * costs.t1
        t, kk, mm = walk(ids, answer, k, lookup, costs)
        kept, made = kept + kk, made + mm
        parts["all"].append(plain / t)
        parts["copy" if p["id"].startswith("copy-") else "short" if len(answer) < SHORT_BELOW else "long"].append(plain / t)
    geo = lambda xs: round(math.exp(sum(map(math.log, xs)) / len(xs)), 3) if xs else None  # noqa: E731
    return {**{f"geo_{n}": geo(v) for n, v in parts.items()}, "worst": round(min(parts["all"]), 3),
            "acceptance": round(kept / made, 3) if made else None, "kept": kept, "proposed": made}


def prompt_ids(dev: dict) -> dict[str, list[int]]:
    """The dev prompts' ids as spec_dev_s10.py built them (checked against its recorded lengths)."""
    from distill_spec import SYSTEM
    from spec_dev_s10 import dev_prompts
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(Path("~/.cache/lhama/models/lhama-default").expanduser()))
    out = {}
    for pid, prompt in dev_prompts():
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        out[pid] = tok(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)).input_ids
    lengths = {p["id"]: p["prompt_tokens"] for p in dev["prompts"]}
    assert all(len(out[i]) == n for i, n in lengths.items()), "the dev prompts' ids differ from spec_dev_s10.py's"
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dev", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    dev = json.loads(args.dev.read_text())
    prompts = prompt_ids(dev)
    found = {}
    for model, hard in (("1t", 1.0), ("hard", 1.35)):
        costs = Costs(dev["ms"], hard)
        for k, lookup in CANDIDATES:
            name = f"k{k} match {lookup.longest}-{lookup.shortest}"
            found.setdefault(name, {})[model] = row = evaluate(dev, prompts, k, lookup, costs)
            print(f"{model:<5}{name:<16}" + " ".join(f"{key} {value}" for key, value in row.items()))
    if args.out:
        args.out.write_text(json.dumps(found, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
