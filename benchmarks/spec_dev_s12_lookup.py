"""#30 session 12: prompt lookup as the draft, decoded for real on dev (one slot, 1 thread; never the timing prompts).

    /work/team/heavy -- python3 benchmarks/spec_dev_s12_lookup.py --out /tmp/30a/lookup_dev.json [--first 0 --count 15]

The 30 dev prompts of spec_dev_s10.py (24 training-split distillation prompts + the 6 dev long-copy prompts, under the
distillation's system prompt), the shipped target (lhama-default at the registry's quant), greedy, <= 48 new tokens;
per prompt plain decoding and each prompt-lookup draft (``lookup_draft``: k 1, 2, 3 proposals, matches of the last
4 down to 2 ids), in an order rotated from prompt to prompt. Every run must give plain decoding's tokens. Per run:
wall time (prefill included), time to first token, proposals kept/made. Resumable: prompts already in --out are
skipped (the runs of one prompt are written together). ``summary`` gives, per draft, x plain over the prompts done
(total time, and the geometric mean per prompt, split short < 32 tokens / long / copy) and the acceptance.

RULE (committed before this job ran; dev only, it chooses the next session's timing candidate, nothing ships):
the lookup row with the highest total-time x plain over the 30 dev prompts is the candidate if that ratio is
>= 1.02 and every run gave plain decoding's tokens; otherwise no candidate, said so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from distill_spec import SYSTEM, timed_run  # noqa: E402
from spec_dev_s10 import dev_prompts  # noqa: E402

from lhama.inference.generate import eos_token_ids  # noqa: E402
from lhama.inference.quant_cache import load_for_inference  # noqa: E402
from lhama.inference.speculative import lookup_draft  # noqa: E402
from lhama.weights.registry import REGISTRY  # noqa: E402

DRAFTS = {"lookup k1": 1, "lookup k2": 2, "lookup k3": 3}
SHORT_BELOW = 32


def summary(rows: list[dict]) -> dict:
    """Per draft: x plain by total time and as geometric means per prompt (all / short / long / copy), acceptance."""
    geo = lambda xs: round(math.exp(sum(map(math.log, xs)) / len(xs)), 3) if xs else None  # noqa: E731
    out = {}
    for name in DRAFTS:
        ratios = {"all": [], "short": [], "long": [], "copy": []}
        for row in rows:
            x = row["plain"]["wall_s"] / row[name]["wall_s"]
            ratios["all"].append(x)
            part = "copy" if row["id"].startswith("copy-") else "short" if len(row["plain"]["ids"]) < SHORT_BELOW else "long"
            ratios[part].append(x)
        kept, made = sum(r[name]["accepted"] for r in rows), sum(r[name]["proposed"] for r in rows)
        out[name] = {"x_plain_total": round(sum(r["plain"]["wall_s"] for r in rows) / sum(r[name]["wall_s"] for r in rows), 3),
                     **{f"geo_{k}": geo(v) for k, v in ratios.items()}, "worst": round(min(ratios["all"]), 3),
                     "acceptance": round(kept / made, 3) if made else None, "kept": kept, "proposed": made,
                     "identical": all(r[name]["ids"] == r["plain"]["ids"] for r in rows)}
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--first", type=int, default=0, help="the first dev prompt (index) to run")
    parser.add_argument("--count", type=int, default=30, help="at most this many dev prompts from --first")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("LHAMA_THREADS", "1")))
    done = json.loads(args.out.read_text()) if args.out.exists() else {"rows": []}
    seen = {r["id"] for r in done["rows"]}
    quant = next(s.quant for s in REGISTRY if s.name == "lhama-default")
    target = load_for_inference(Path(os.path.expanduser("~/.cache/lhama/models")) / "lhama-default", quant)
    tok, eos = target.tokenizer, eos_token_ids(target.model, target.tokenizer)
    configs = {"plain": None, **{name: lookup_draft(k) for name, k in DRAFTS.items()}}
    done.update(target_quant=quant, threads=torch.get_num_threads(), tokens=args.tokens, lookup=repr(configs["lookup k1"].lookup))
    prompts = dev_prompts()[args.first: args.first + args.count]
    for index, (pid, prompt) in enumerate(prompts):
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        ids = tok(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)).input_ids
        if index == 0:
            for draft in configs.values():  # warm-up
                timed_run(target, ids, 4, eos, draft)
        if pid in seen:
            continue
        names = list(configs)
        shift = (args.first + index) % len(names)
        row = {"id": pid, "prompt_tokens": len(ids)}
        for name in names[shift:] + names[:shift]:
            row[name] = timed_run(target, list(ids), args.tokens, eos, configs[name])
        done["rows"].append(row)
        done["summary"] = summary(done["rows"])
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(done) + "\n")
        tmp.replace(args.out)
        print(pid, len(row["plain"]["ids"]), " ".join(f"{n} x{row['plain']['wall_s'] / row[n]['wall_s']:.2f} "
              f"{row[n]['accepted']}/{row[n]['proposed']}" for n in DRAFTS), flush=True)
    print(json.dumps(done.get("summary"), indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
