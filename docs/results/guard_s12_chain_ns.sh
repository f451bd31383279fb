# diagnostic after the read (no rule, nothing ships): input head on features without n-grams inside words of <= 3 letters
set -e -o pipefail
cd /tmp/29a/snapF; export PYTHONPATH=/tmp/29a/snapF/src
S=template-everyday-s9,template-everyday-s9-en,template-dev-s9,dev-s9-unsafe,template-dev-s7,dev-s7-unsafe,form-unsafe-s9,form-unsafe-s9-en,template-held-s10,held-s10-unsafe,template-held-s11,held-s11-unsafe
date -u
python3 benchmarks/guard_input_head.py --name ns3 --sources $S --template-weight 3 --train data/guard/train.jsonl --out /tmp/29a/HF/ns3.safetensors --log /tmp/29a/runsF.jsonl > /tmp/29a/train_ns3.log
for f in /tmp/29a/HF/ns3.safetensors /tmp/29a/HF/ns3_tb.safetensors; do
  t=$(basename $f .safetensors); t=${t/_/+}
  python3 benchmarks/guard_head_s9.py --score $f --name $t --log /tmp/29a/devF.jsonl > /dev/null
  python3 benchmarks/guard_head_s12.py --read $t --head $f --no-judge --log /tmp/29a/heldF.jsonl 2>&1 | tail -1
done
date -u
