"""Post-read diagnostic (heldout_s15 is dev after the one read): every session-14 candidate on heldout_s15. No rule, nothing ships."""
import json, sys
sys.path.insert(0, sys.argv[1] + "/benchmarks")
from pathlib import Path
import guard_head_s15 as g
from guard_head_s13 import read_s13
from guard_heldout import append_row
out = Path("/tmp/29a/s15/postread.jsonl"); assert str(out).startswith("/tmp/29a/")
for name in g.candidates():
    head, en = g.heads_of(name, Path("/tmp/29a/s14/H"))
    row = read_s13(name, head, en, g.HELD)
    append_row(out, row)
    print(json.dumps({k: v for k, v in row.items() if k in ("guard", "everyday_flagged", "caught", "answers_flagged", "catalog_flagged", "catalog_as_user_flagged", "pt_f1", "load")}))
