#!/bin/bash
# session 14, helper 29a: dev job 1 (export of 23fd984), writes only under /tmp/29a/s14
set -u
O=/tmp/29a/s14; E=$O/exp-23fd984; export PYTHONPATH=$E/src; cd $E
case "$O" in /tmp/29a/*) ;; *) echo "bad out dir"; exit 2;; esac
date -u; echo load $(cut -d' ' -f1 /proc/loadavg)
python3 benchmarks/guard_head_s14.py --score-shipped --dev $O/dev_j1.jsonl; date -u
python3 benchmarks/guard_head_s14.py --fit v3w3 --out-dir $O/H --runs $O/runs_j1.jsonl --dev $O/dev_j1.jsonl
date -u; echo load $(cut -d' ' -f1 /proc/loadavg)
#!/bin/bash
# session 14, helper 29a: dev job 2 (export of 23fd984), writes only under /tmp/29a/s14
set -u
O=/tmp/29a/s14; E=$O/exp-23fd984; export PYTHONPATH=$E/src; cd $E
case "$O" in /tmp/29a/*) ;; *) echo "bad out dir"; exit 2;; esac
date -u; echo load $(cut -d' ' -f1 /proc/loadavg)

python3 benchmarks/guard_head_s14.py --fit v3w6 --out-dir $O/H --runs $O/runs_j2.jsonl --dev $O/dev_j2.jsonl
date -u; echo load $(cut -d' ' -f1 /proc/loadavg)
#!/bin/bash
# session 14, helper 29a: dev job 3 (export of 23fd984), writes only under /tmp/29a/s14
set -u
O=/tmp/29a/s14; E=$O/exp-23fd984; export PYTHONPATH=$E/src; cd $E
case "$O" in /tmp/29a/*) ;; *) echo "bad out dir"; exit 2;; esac
date -u; echo load $(cut -d' ' -f1 /proc/loadavg)

python3 benchmarks/guard_head_s14.py --fit v2w3 --out-dir $O/H --runs $O/runs_j3.jsonl --dev $O/dev_j3.jsonl
date -u; echo load $(cut -d' ' -f1 /proc/loadavg)
#!/bin/bash
# session 14, helper 29a: pick_s14 on the dev logs, the ONE heldout_s14 read (shipped + pick), decide_s14, test split
# only on a pass. Export of 1b31944 (rule 23fd984 + the fresh set). Writes only under /tmp/29a/s14.
set -u
O=/tmp/29a/s14; E=$O/exp-1b31944; export PYTHONPATH=$E/src; cd $E
case "$O" in /tmp/29a/*) ;; *) echo "bad out dir"; exit 2;; esac
[ -e $O/read.jsonl ] && { echo "read.jsonl exists: the set was read already"; exit 3; }
cat $O/dev_j1.jsonl $O/dev_j2.jsonl $O/dev_j3.jsonl > $O/dev.jsonl; cat $O/runs_j1.jsonl $O/runs_j2.jsonl $O/runs_j3.jsonl > $O/runs.jsonl
date -u; echo load $(cut -d' ' -f1 /proc/loadavg); md5sum data/guard/heldout_s14/*
P=$(python3 benchmarks/guard_head_s14.py --pick $O/dev.jsonl --runs $O/runs.jsonl); echo "pick: $P"
python3 benchmarks/guard_head_s14.py --read "$P" --runs $O/runs.jsonl --log $O/read.jsonl
date -u
if [ "$P" != none ]; then
  DEC=$(python3 benchmarks/guard_head_s14.py --decide $O/read.jsonl); echo "decide: $DEC"
  case "$DEC" in *": passes"*) python3 benchmarks/guard_head_s14.py --test "$P" --runs $O/runs.jsonl --log $O/test.jsonl ;; esac
fi
date -u; echo load $(cut -d' ' -f1 /proc/loadavg)
