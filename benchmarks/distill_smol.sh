#!/usr/bin/env bash
# Pruning + distillation on SmolLM2-135M-Instruct (docs/distill.md): the teacher is the model
# itself, the student its pruned copy (30 -> 22 layers, -27%), distilled on pt-BR human text
# (a third of benchmarks/data/distill_human_train.jsonl), held out: distill_heldout_human.jsonl.
# A control trains the same pruned copy for the same steps on the label loss alone (kd-weight 0).
#
#   nohup flock /tmp/lhama-heavy.lock bash benchmarks/distill_smol.sh > /tmp/distill_smol.log 2>&1 &
set -euo pipefail
TEACHER=${TEACHER:-$HOME/.cache/lhama/models/smollm2-135m-instruct}
RUNS=${RUNS:-runs/distill-smol}
STEPS=${STEPS:-30}
DATA=benchmarks/data
RESULTS=$RUNS/results.json
TIME="/usr/bin/time -f peak_RSS_%MKB_%es"
mkdir -p "$RUNS"
step() { echo "== $(date -u +%H:%M:%S) $*"; }
measured() { [ -f "$RESULTS" ] && python -c "import json,sys; sys.exit(0 if any(r['name']=='$1' for r in json.load(open('$RESULTS'))) else 1)"; }
measure() {  # name, model dir: perplexities, speed, RSS, then its acceptance rate as a draft for the teacher
  measured "$1" && return 0
  $TIME python benchmarks/distill.py measure --model "$2" --name "$1" --results "$RESULTS"
  $TIME python benchmarks/distill.py accept --target "$TEACHER" --draft "$2" --name "$1" --results "$RESULTS"
}
distill() {  # name, kd weight
  local out=$RUNS/$1 resume=""
  [ -f "$out/model/config.json" ] && return 0
  ls "$out"/checkpoints/step-* > /dev/null 2>&1 && resume="--resume"
  $TIME lhama distill --teacher "$TEACHER" --student "$RUNS/pruned" --data "$RUNS/train.jsonl" \
    --eval-data $DATA/distill_heldout_human.jsonl --out "$out" --cache "$RUNS/teacher_cache" --kd-weight "$2" \
    --steps "$STEPS" --batch 4 --grad-accum 2 --lr 1e-4 --max-length 128 --save-every 10 $resume
}
[ -f "$RUNS/train.jsonl" ] || awk 'NR % 3 == 1' $DATA/distill_human_train.jsonl > "$RUNS/train.jsonl"
step "prune 30 -> 22 layers"
[ -f "$RUNS/pruned/config.json" ] || $TIME lhama prune --model "$TEACHER" --out "$RUNS/pruned" --layers 8 --calib "$RUNS/train.jsonl"
step "measure"
measured "SmolLM2-135M (teacher)" || $TIME python benchmarks/distill.py measure --model "$TEACHER" --name "SmolLM2-135M (teacher)" --results "$RESULTS"
measure "SmolLM2 pruned to 22 layers" "$RUNS/pruned"
step "distill the pruned copy"
distill d-kd 0.5
measure "SmolLM2 pruned + distilled (kd 0.5)" "$RUNS/d-kd/model"
step "control: label loss only"
distill d-ce 0.0
measure "SmolLM2 pruned + label loss only" "$RUNS/d-ce/model"
python benchmarks/distill.py table --results "$RESULTS"
step "done"
