# dev job (/tmp/29a/s15/dev.sh)
#!/bin/bash
# session 15, helper 29a: every s14 candidate + shipped on heldout_s14 (dev). Export of 74372e8; writes only under /tmp/29a/s15
set -u
O=/tmp/29a/s15; E=$O/exp-74372e8; export PYTHONPATH=$E/src; cd $E
case "$O" in /tmp/29a/*) ;; *) echo "bad out dir"; exit 2;; esac
date -u; echo load $(cut -d' ' -f1 /proc/loadavg); md5sum /tmp/29a/s14/H/*
python3 benchmarks/guard_head_s15.py --dev-s14 --heads /tmp/29a/s14/H --dev $O/dev.jsonl
echo "pick: $(python3 benchmarks/guard_head_s15.py --pick $O/dev.jsonl)"
date -u; echo load $(cut -d' ' -f1 /proc/loadavg)

# the one read (/tmp/29a/s15/read.sh)
#!/bin/bash
# session 15, helper 29a: pick_s15 on the dev log, the ONE heldout_s15 read (shipped + pick), decide_s15, the test
# split only on a pass. Export of fe57c71 (rule 74372e8 + the fresh set). Writes only under /tmp/29a/s15.
set -u
O=/tmp/29a/s15; E=$O/exp-fe57c71; export PYTHONPATH=$E/src; cd $E
case "$O" in /tmp/29a/*) ;; *) echo "bad out dir"; exit 2;; esac
[ -e $O/read.jsonl ] && { echo "read.jsonl exists: the set was read already"; exit 3; }
date -u; echo load $(cut -d' ' -f1 /proc/loadavg); md5sum data/guard/heldout_s15/*
P=$(python3 benchmarks/guard_head_s15.py --pick $O/dev.jsonl); echo "pick: $P"
python3 benchmarks/guard_head_s15.py --read "$P" --heads /tmp/29a/s14/H --log $O/read.jsonl
date -u
if [ "$P" != none ]; then
  DEC=$(python3 benchmarks/guard_head_s15.py --decide $O/read.jsonl); echo "decide: $DEC"
  case "$DEC" in *": passes"*) python3 benchmarks/guard_head_s15.py --test "$P" --heads /tmp/29a/s14/H --log $O/test.jsonl ;; esac
fi
date -u; echo load $(cut -d' ' -f1 /proc/loadavg)
