#!/bin/bash
# post-read diagnostic (heldout_s16 is dev after the read): each veto on it, export d8029bd
set -u
E=/tmp/29a/s16/exp-d8029bd; S=/tmp/29a/s16
cd $E/benchmarks || exit 1
export PYTHONPATH=$E/src
for n in v3w6 v2w3 v3w3; do python3 guard_veto_s16.py --read $n --runs $S/runs_read.jsonl --log $S/postread.jsonl || exit 1; done
python3 /tmp/29a/s16/budget_probe.py
python3 /tmp/29a/s16/lowrows.py
