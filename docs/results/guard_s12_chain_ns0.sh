# diagnostic after the read (no rule, nothing ships): the same short-word-free features, the input head's own rows only
set -e -o pipefail
cd /tmp/29a/snapF; export PYTHONPATH=/tmp/29a/snapF/src
date -u
python3 benchmarks/guard_input_head.py --name ns0 --train data/guard/train.jsonl --out /tmp/29a/HF/ns0.safetensors --log /tmp/29a/runsF.jsonl > /tmp/29a/train_ns0.log
f=/tmp/29a/HF/ns0.safetensors
python3 benchmarks/guard_head_s9.py --score $f --name ns0 --log /tmp/29a/devF.jsonl > /dev/null
python3 benchmarks/guard_head_s12.py --read ns0 --head $f --no-judge --log /tmp/29a/heldF.jsonl 2>&1 | tail -1
date -u
