set -e -o pipefail
cd /tmp/29a/snap
export PYTHONPATH=/tmp/29a/snap/src
S=template-everyday-s9,template-everyday-s9-en,template-dev-s9,dev-s9-unsafe,template-dev-s7,dev-s7-unsafe,form-unsafe-s9,form-unsafe-s9-en,template-held-s10,held-s10-unsafe,template-held-s11,held-s11-unsafe
date -u
[ -n "${FIRST:-}" ] && python3 benchmarks/guard_head_s12.py --int4-pick > /tmp/29a/int4_pick.json
[ -n "${FIRST:-}" ] && python3 benchmarks/guard_head_s9.py --score shipped --log /tmp/29a/dev.jsonl
for spec in "$@"; do
  name=${spec%%:*}; w=${spec##*:}
  date -u; echo "train $name weight $w"
  python3 benchmarks/guard_input_head.py --name $name --sources $S --template-weight $w --train data/guard/train.jsonl --out /tmp/29a/H/$name.safetensors --log /tmp/29a/runs.jsonl > /tmp/29a/train_$name.log
  for f in /tmp/29a/H/${name}.safetensors /tmp/29a/H/${name}_*.safetensors; do
    t=$(basename $f .safetensors); t=${t/_/+}
    python3 benchmarks/guard_head_s9.py --score $f --name $t --log /tmp/29a/dev.jsonl > /dev/null
  done
done
date -u
