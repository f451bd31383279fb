# session 13, one slot job: shipped on dev, fit v3w3 (4 tunings) + dev, pick_s13, the one heldout_s13 read,
# decide_s13, and the test-split read only on a pass. Export of 4e239bb (code d31d87b + heldout_s13).
set -u
E=/tmp/29a/s13/exp2; export PYTHONPATH=$E/src; cd $E
O=/tmp/29a/s13; R=$O/runs.jsonl; D=$O/dev.jsonl; H=$O/H; X=$O/read.jsonl; T=$O/test.jsonl
date -u; echo load $(cut -d' ' -f1 /proc/loadavg)
python3 benchmarks/guard_head_s13.py --score-shipped --dev $D
date -u
python3 benchmarks/guard_head_s13.py --fit v3w3 --out-dir $H --runs $R --dev $D
date -u
P=$(python3 benchmarks/guard_head_s13.py --pick $D --runs $R); echo "pick: $P"
if [ "$P" = none ]; then python3 benchmarks/guard_head_s13.py --read none --log $X
else
  HF=$H/${P/+/_}.safetensors
  python3 benchmarks/guard_head_s13.py --read $P --head $HF --log $X
  date -u
  DEC=$(python3 benchmarks/guard_head_s13.py --decide $X); echo "decide: $DEC"
  case "$DEC" in *": passes"*) python3 benchmarks/guard_head_s13.py --test $HF --log $T ;; esac
fi
date -u
# the touched guard tests, in the same slot (shared tree, no model loaded)
cd /work/main && timeout 200 python3 -m pytest -q -p no:cacheprovider tests/guard/test_no_prepare_s13.py tests/guard/test_head_s12.py tests/guard/test_judge_self_s11.py tests/guard/test_heldout_s13.py tests/guard/test_heldout_s12.py tests/guard/test_features_s13.py 2>&1 | tail -5
date -u
