"""Post-read diagnostic (heldout_s14 is dev after the one read): more candidates on heldout_s14. No rule, nothing ships."""
import json, sys
sys.path.insert(0, sys.argv[1] + "/benchmarks")
from pathlib import Path
import guard_head_s14 as g
from guard_heldout import append_row
out = Path("/tmp/29a/s14/postread.jsonl"); assert str(out).startswith("/tmp/29a/")
for name in ("v3w3", "v3w3+r", "v3w6+r", "v3w6", "v2w3+r", "v2w3"):
    head, en = g.pick_heads(name, Path("/tmp/29a/s14/runs.jsonl"))
    row = g.read_s13(name, head, en, g.HELD)
    append_row(out, row)
    print(json.dumps({k: v for k, v in row.items() if k in ("guard", "everyday_flagged", "caught", "answers_flagged", "catalog_flagged", "catalog_as_user_flagged", "pt_f1", "per_category", "load")}))
