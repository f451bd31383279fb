"""Re-ask the first 12 logged messages with HEAD's committed src (no uncommitted working-tree changes)."""
import json, sys
sys.path.insert(0, "/work/main/benchmarks")
import lhama; print(lhama.__file__)
from guard_judge_self_s11 import QUANT
from lhama.cli.common import located
from lhama.guard.judge import judge_of
from lhama.inference.quant_cache import load_for_inference
from rich.console import Console
judge = judge_of(load_for_inference(located("lhama-default", Console(stderr=True))[0], QUANT))
rows = [json.loads(l) for l in open("/work/main/docs/results/guard_s11_self_int4.jsonl")][:12]
d = [abs(judge.p_yes(r["text"]) - r["p_int4"]) for r in rows]
print("max |p_head - p_logged| on 12:", max(d))
