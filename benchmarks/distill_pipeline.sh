#!/usr/bin/env bash
# Issue #30 end to end on the real Qwen2.5-Coder pair (docs/distill.md): teacher answers, a pruned
# 1.5B (-25% layers), distillation of the 0.5B and of the pruned 1.5B, measurements.
# Every step is skipped when its output exists, and the distillations resume from their newest
# checkpoint, so rerunning the script continues where it stopped. On the shared machine run it
# whole under the heavy lock (one wait in the queue, not one per step):
#
#   nohup flock /tmp/lhama-heavy.lock bash benchmarks/distill_pipeline.sh > /tmp/distill_pipeline.log 2>&1 &
#
# Environment: TEACHER, STUDENT (model dirs), RUNS (output root), STEPS (distillation steps),
# PROMPTS (teacher answers to write: every held-out prompt first, then training prompts),
# UNTIL=base (stop after measuring the teacher and the 0.5B).
set -euo pipefail
TEACHER=${TEACHER:-$HOME/.cache/lhama/models/qwen2.5-coder-1.5b-instruct}
STUDENT=${STUDENT:-$HOME/.cache/lhama/models/qwen2.5-coder-0.5b-instruct}
RUNS=${RUNS:-runs/distill}
STEPS=${STEPS:-30}
PROMPTS=${PROMPTS:-120}
DATA=benchmarks/data
RESULTS=$RUNS/results.json
mkdir -p "$RUNS"

step() { echo "== $(date -u +%H:%M:%S) $*"; }
measured() { [ -f "$RESULTS" ] && python -c "import json,sys; sys.exit(0 if any(r['name']=='$1' for r in json.load(open('$RESULTS'))) else 1)"; }
measure() { measured "$1" || /usr/bin/time -f "peak RSS %M KB, %e s" python benchmarks/distill.py measure --model "$2" --name "$1" --results "$RESULTS"; }
accept() { python benchmarks/distill.py accept --target "$TEACHER" --draft "$2" --name "$1" --results "$RESULTS"; }
distill() {  # name, student dir
  local out=$RUNS/$1 resume=""
  [ -f "$out/model/config.json" ] && return 0
  ls "$out"/checkpoints/step-* > /dev/null 2>&1 && resume="--resume"
  /usr/bin/time -f "peak RSS %M KB, %e s" lhama distill --teacher "$TEACHER" --student "$2" --data $DATA/distill_train.jsonl \
    --eval-data $DATA/distill_heldout_answers.jsonl --out "$out" --cache "$RUNS/teacher_cache" \
    --steps "$STEPS" --batch 4 --grad-accum 2 --lora 16 --lr 2e-4 --max-length 256 --save-every 5 $resume
}

step "teacher answers"
python benchmarks/distill.py answer --teacher "$TEACHER" --batch 24 --limit "$PROMPTS"  # resumable; no-op when done
step "measure teacher and 0.5B"
measure "teacher 1.5B" "$TEACHER"
measure "0.5B" "$STUDENT"
accept "0.5B" "$STUDENT"
[ "${UNTIL:-}" = base ] && { python benchmarks/distill.py table --results "$RESULTS"; exit 0; }
step "distill the 0.5B"
distill d-0.5b "$STUDENT"
measure "0.5B distilled" "$RUNS/d-0.5b/model"
accept "0.5B distilled" "$RUNS/d-0.5b/model"
step "prune the teacher: 28 -> 21 layers"
[ -f "$RUNS/pruned-1.5b/config.json" ] || /usr/bin/time -f "peak RSS %M KB, %e s" lhama prune --model "$TEACHER" \
  --out "$RUNS/pruned-1.5b" --layers 7 --calib $DATA/distill_train.jsonl
measure "pruned 1.5B (21 layers)" "$RUNS/pruned-1.5b"
step "distill the pruned 1.5B"
distill d-pruned "$RUNS/pruned-1.5b"
measure "pruned 1.5B distilled" "$RUNS/d-pruned/model"
python benchmarks/distill.py table --results "$RESULTS"
step "done"
