"""Dev only (no rule, nothing ships): old dev rows (fifth round) scored the way the test split is scored (input head +
shipped output head, no cue/phrase rules, no translation), per head. Does a dev proxy show the pick's test recall loss?"""
import json, sys
sys.path.insert(0, sys.argv[1] + "/benchmarks")
from pathlib import Path
from guard_dev_s9 import old_dev_and_training
from guard_dev_s7 import train_rows  # noqa: F401  (import side effects none)
from lhama.guard.classifier import DEFAULT_HEAD, DEFAULT_OUTPUT_HEAD, ClassifierGuard, Head
from guard_heldout import append_row
out = Path("/tmp/29a/s14/proxy.jsonl"); assert str(out).startswith("/tmp/29a/")
H = Path("/tmp/29a/s14/H")
for name, f in (("shipped", DEFAULT_HEAD), ("v2w3+e", H / "v2w3_e.safetensors"), ("v3w3", H / "v3w3.safetensors"),
                ("v3w6", H / "v3w6.safetensors"), ("v2w3+tb", H / "v2w3_tb.safetensors")):
    g = ClassifierGuard(Head.load(f), output_head=Head.load(DEFAULT_OUTPUT_HEAD))
    r = {"name": name, **{k: v for k, v in old_dev_and_training(g).items() if k != "train_phrase_missed"}}
    append_row(out, r); print(json.dumps(r))
