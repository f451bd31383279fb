#!/bin/bash
# the ONE heldout_s16 read (export of the set commit d8029bd), then decide_s16, then the test split only on a pass
set -u
E=/tmp/29a/s16/exp-d8029bd; S=/tmp/29a/s16
cd $E/benchmarks || exit 1
export PYTHONPATH=$E/src
md5sum $E/data/guard/heldout_s16/*
date -u +"start %H:%M:%S"; uptime
PICK=$(python3 guard_veto_s16.py --pick $S/dev.jsonl); echo "pick: $PICK"
cat $S/runs.jsonl $S/runs_v3w3.jsonl > $S/runs_read.jsonl 2>/dev/null
python3 guard_veto_s16.py --read $PICK --runs $S/runs_read.jsonl --log $S/read.jsonl || exit 1
date -u +"read done %H:%M:%S"
[ "$PICK" = none ] && exit 0
D=$(python3 guard_veto_s16.py --decide $S/read.jsonl); echo "$D"
case "$D" in *": passes"*) python3 guard_veto_s16.py --test $PICK --runs $S/runs_read.jsonl --log $S/test.jsonl;; esac
date -u +"end %H:%M:%S"
