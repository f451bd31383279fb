#!/bin/bash
# dev chain (export a4c7680): shipped + v3w6/v2w3 vetoes on dev; then the v3w3 fit, its veto and its dev row.
set -u
E=/tmp/29a/s16/exp-a4c7680; S=/tmp/29a/s16
cd $E/benchmarks || exit 1
export PYTHONPATH=$E/src
date -u +"start %H:%M:%S"
python3 guard_veto_s16.py --dev $S/runs.jsonl --log $S/dev.jsonl || exit 1
date -u +"dev1 done %H:%M:%S"
python3 guard_veto_s16.py --oof v3w3 --out-dir $S/H || exit 1
python3 guard_veto_s16.py --veto $S/H --runs $S/runs_all.jsonl || exit 1
grep '"name": "v3w3"' $S/runs_all.jsonl > $S/runs_v3w3.jsonl
python3 guard_veto_s16.py --dev $S/runs_v3w3.jsonl --log $S/dev.jsonl || exit 1
date -u +"end %H:%M:%S"
python3 guard_veto_s16.py --pick $S/dev.jsonl
