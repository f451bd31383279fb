# the one heldout_s12 read (+ the test-split read only if decide_s12 says SHIP), from a snapshot of HEAD
set -e -o pipefail
S=/tmp/29a/snapR; cd $S; export PYTHONPATH=$S/src
PICK=$(python3 benchmarks/guard_head_s12.py --pick docs/results/guard_s12_dev.jsonl --runs docs/results/guard_s12_runs.jsonl)
echo "pick: $PICK"; date -u
if [ "$PICK" = none ]; then
  python3 benchmarks/guard_head_s12.py --read none --log /tmp/29a/guard_s12_heldout.jsonl
else
  H=/tmp/29a/H/$(echo $PICK | tr + _).safetensors; md5sum $H
  python3 benchmarks/guard_head_s12.py --read $PICK --head $H --log /tmp/29a/guard_s12_heldout.jsonl
  D=$(python3 benchmarks/guard_head_s12.py --decide /tmp/29a/guard_s12_heldout.jsonl); echo "$D"; date -u
  case "$D" in *": SHIP"*) python3 benchmarks/guard_head_s12.py --test $H --log /tmp/29a/guard_s12_test.jsonl ;; esac
fi
date -u
