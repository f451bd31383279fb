# post-read diagnostic (heldout_s13 already read by the shipped guard; dev from now on): the v3w3 tunings on it
set -u
E=/tmp/29a/s13/exp2; export PYTHONPATH=$E/src; cd $E
date -u
for t in v3w3 v3w3_tb v3w3_e v3w3_tbe; do
  timeout 200 python3 -c "
import sys, json; sys.path.insert(0, 'benchmarks')
from pathlib import Path
import guard_head_s13 as g
from guard_heldout import append_row
row = g.read_s13('$t'.replace('_', '+'), Path('/tmp/29a/s13/H/$t.safetensors'))
append_row(Path('/tmp/29a/s13/postread.jsonl'), row)
print(json.dumps({k: v for k, v in row.items() if not k.endswith('_items')}))
"
done
date -u
