cd /tmp/29a/snap && export PYTHONPATH=/tmp/29a/snap/src:/tmp/29a/snap/benchmarks
date -u +%T; python3 -c "import lhama.guard.judge as j; print(j.__file__)"
python3 benchmarks/guard_judge_s11.py --probe --log /tmp/29a/s11_dev_probe.jsonl
date -u +%T; uptime
python3 benchmarks/guard_judge_s11.py --grid /tmp/29a/s11_dev_probe.jsonl > /tmp/29a/s11_grid.txt
python3 benchmarks/guard_judge_s11.py --pick /tmp/29a/s11_dev_probe.jsonl | tee /tmp/29a/s11_pick.txt
PICK=$(tail -1 /tmp/29a/s11_pick.txt)
case "$PICK" in pt-b-*|fs-b-*) ;; *) echo "no pick name: $PICK"; exit 3;; esac
echo "READ heldout_s11 once with pick $PICK"; date -u +%T; uptime
python3 benchmarks/guard_judge_s11.py --read "$PICK" --log /tmp/29a/s11_heldout.jsonl
date -u +%T; uptime
python3 benchmarks/guard_judge_s11.py --decide /tmp/29a/s11_heldout.jsonl
