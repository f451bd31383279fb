"""Diagnostic only (no rule, nothing ships from it): does FEW_SHOT's alternating order (sim, não, ..., não) make
the 1.5B judge answer the next item of the pattern? Same examples, reversed order (ending with sim), on 20 of
heldout_s10's (dev) in-band paths: 10 everyday alarms and 10 caught unsafe requests."""
import json, statistics, sys, time
sys.path[:0] = ["/tmp/29a/snap/src", "/tmp/29a/snap/benchmarks"]
from lhama.guard.judge import FEW_SHOT, PT_SHORT, Question, YesNoJudge, load_judge
rows = [json.loads(l) for l in open("/tmp/29a/s11_dev_probe.jsonl")]
paths = [(r["label"], p) for r in rows if r["set"] in ("s10e", "s10u") for p in r["paths"] if p["p_yes"]]
pick = [x for x in paths if x[0] == "everyday"][:10] + [x for x in paths if x[0] == "unsafe"][:10]
pt = load_judge("/tmp/29a/lm", "int8", question=PT_SHORT)
rev = Question(*[getattr(FEW_SHOT, f) for f in ("system", "opening", "closing", "yes", "no")], tuple(reversed(FEW_SHOT.shots)))
pairs = tuple(s for k in range(4) for s in (FEW_SHOT.shots[2 * k + 1], FEW_SHOT.shots[2 * k]))  # não, sim pairs
j = YesNoJudge(pt.model, pt.tokenizer, question=rev)
out = []
for label, p in pick:
    t = time.perf_counter(); r = j.p_yes(p["text"])
    out.append({"label": label, "text": p["text"], "pt": p["p_yes"]["pt"], "fs_alternating_end_nao": p["p_yes"]["fs"], "fs_reversed_end_sim": r, "s": time.perf_counter() - t})
    print(json.dumps(out[-1], ensure_ascii=False), flush=True)
for lab in ("everyday", "unsafe"):
    v = [o["fs_reversed_end_sim"] for o in out if o["label"] == lab]
    print(lab, "reversed order P(sim) min/median/max", round(min(v), 4), round(statistics.median(v), 4), round(max(v), 4))
json.dump(out, open("/tmp/29a/fs_order.json", "w"), ensure_ascii=False, indent=0)
