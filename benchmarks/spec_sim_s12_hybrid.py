"""#30 session 12: a hybrid draft simulated on dev (no model runs): the prompt lookup (k 3, matches 4..2) when it
matches, else the 0.5B draft (k 1, its teacher-forced flags, reading the prompt's last 24 tokens or all of it), against
each alone. The same walk and cost models as spec_sim_s10.py / spec_sim_s12_lookup.py; after lookup steps the 0.5B
catches up on the ids its cache lacks (Costs.draft_rows).

    PYTHONPATH=src python3 benchmarks/spec_sim_s12_hybrid.py docs/results/spec_dev_s10.json
"""
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spec_sim_s10 import Costs  # noqa: E402
from spec_sim_s12_lookup import prompt_ids  # noqa: E402

from lhama.inference.lookup import Lookup  # noqa: E402

dev = json.loads(Path(sys.argv[1]).read_text())
ids = prompt_ids(dev)
B = 48
def walk(prompt, answer, flags, costs, k_look, read, use_model=True):
    t, produced, held = costs.target_prefill(len(prompt)), 1, None
    lk = Lookup(4, 2)
    while produced < len(answer):
        c = min(k_look, B - produced - 1)
        p = lk.propose(prompt + answer[:produced], c) if c else []
        if p:
            kept = next((i for i, x in enumerate(p) if produced + i >= len(answer) or x != answer[produced + i]), len(p))
            t += costs.check(len(p) + 1); produced += kept + 1; continue
        if use_model and B - produced - 1 >= 1:
            r = min(read, len(prompt)) if read else len(prompt)
            t += costs.draft_prefill(r + produced) if held is None else costs.draft_rows(produced - held)
            t += costs.check(2); kept = flags[produced] if produced < len(answer) else 0
            held = produced; produced += kept + 1
        else:
            t += costs.t1; produced += 1
    return t
for model, hard in (('1t', 1.0), ('hard', 1.35)):
    costs = Costs(dev['ms'], hard)
    for name, k, read, um in (('lookup k3 only', 3, 24, False), ('lookup k3 else 0.5B reads 24', 3, 24, True),
                              ('lookup k3 else 0.5B reads all', 3, 0, True), ('0.5B reads 24 only', 0, 24, True)):
        parts = {'all': [], 'short': [], 'long': [], 'copy': []}
        for p in dev['prompts']:
            a = p['answer']; fl = p['flags'][str(read)]
            plain = costs.target_prefill(p['prompt_tokens']) + (len(a) - 1) * costs.t1
            x = plain / walk(ids[p['id']], a, fl, costs, k, read, um)
            parts['all'].append(x); parts['copy' if p['id'].startswith('copy') else 'short' if len(a) < 32 else 'long'].append(x)
        g = lambda v: math.exp(sum(map(math.log, v)) / len(v))
        print(f"{model:<5}{name:<32}" + ' '.join(f"{n} {g(v):.3f}" for n, v in parts.items()) + f" worst {min(parts['all']):.3f}")
