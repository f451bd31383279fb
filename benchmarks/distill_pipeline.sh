#!/usr/bin/env bash
# Issue #30 end to end on the real Qwen2.5-Coder pair (docs/distill.md): teacher answers, a pruned
# 1.5B (-25% layers), distillation of the 0.5B and of the pruned 1.5B, measurements. Two rounds:
# (1) on distill_train.jsonl (16 teacher answers to hand-written prompts + 16 human captions, KL
# at T=2), (2) on distill_train_answers.jsonl (32 teacher answers, the sources taken in turn, KL at
# T=1).
# Every step is skipped when its output exists, and the distillations resume from their newest
# checkpoint, so rerunning the script (with the same environment) continues where it stopped. On
# the shared machine run it whole in one heavy slot (1 thread), in the background:
#
#   nohup /work/team/heavy -- bash benchmarks/distill_pipeline.sh > /tmp/distill_pipeline.log 2>&1 &
#
# The defaults are the sizes run for docs/distill.md: one CPU thread on a 2-core machine shared with
# seven others (the teacher managed ~4 tokens/s through its forward pass there), so they are small.
# Environment: TEACHER, STUDENT (model dirs), RUNS (output root), STEPS (distillation steps of the
# 0.5B), STEPS_PRUNED (of the pruned 1.5B), BATCH and ACCUM (examples per pass, passes per step),
# PROMPTS (teacher answers to write: the 37 held-out prompts first, then training prompts), HUMAN
# (human texts in the training file), ANSWERS_EVAL and HUMAN_EVAL (held-out teacher answers and human
# texts scored per model; -1: all, 0: none), CALIB_TEXTS (pruning calibration texts), ACCEPT_PROMPTS
# (held-out prompts of the draft-acceptance runs), SPEED_TOKENS (decode-speed tokens), TRAIN_ANSWERS
# (teacher answers in round 1's mix), STEPS2 and STEPS2_PRUNED (round 2's steps), EVAL=1
# (held-out loss/KL inside the distillations too: costs a teacher pass over all 37 held-out answers
# and two evaluations per run), UNTIL=base (stop after measuring the teacher and the 0.5B),
# UNTIL=small (after round 1's distilled 0.5B), UNTIL=round1.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}  # this checkout's lhama, whatever is installed
TEACHER=${TEACHER:-$HOME/.cache/lhama/models/qwen2.5-coder-1.5b-instruct}
STUDENT=${STUDENT:-$HOME/.cache/lhama/models/qwen2.5-coder-0.5b-instruct}
RUNS=${RUNS:-runs/distill}
STEPS=${STEPS:-8}
STEPS_PRUNED=${STEPS_PRUNED:-8}
BATCH=${BATCH:-4}
ACCUM=${ACCUM:-1}
PROMPTS=${PROMPTS:-69}
TRAIN_ANSWERS=${TRAIN_ANSWERS:-16}
STEPS2=${STEPS2:-12}
STEPS2_PRUNED=${STEPS2_PRUNED:-12}
HUMAN=${HUMAN:-16}
ANSWERS_EVAL=${ANSWERS_EVAL:-12}
HUMAN_EVAL=${HUMAN_EVAL:-0}
CALIB_TEXTS=${CALIB_TEXTS:-8}
ACCEPT_PROMPTS=${ACCEPT_PROMPTS:-2}
SPEED_TOKENS=${SPEED_TOKENS:-16}
DATA=benchmarks/data
RESULTS=$RUNS/results.json
mkdir -p "$RUNS"

step() { echo "== $(date -u +%H:%M:%S) $*"; }
has() { [ -f "$RESULTS" ] && python -c "import json,sys; sys.exit(0 if any(r['name']=='$1' and '$2' in r for r in json.load(open('$RESULTS'))) else 1)"; }
measure() { has "$1" ppl_answers || /usr/bin/time -f "peak RSS %M KB, %e s" python benchmarks/distill.py measure --model "$2" \
  --name "$1" --results "$RESULTS" --answers-limit "$ANSWERS_EVAL" --human-limit "$HUMAN_EVAL" --speed-tokens "$SPEED_TOKENS"; }
accept() { has "$1" accept_rate || /usr/bin/time -f "peak RSS %M KB, %e s" python benchmarks/distill.py accept --target "$TEACHER" \
  --draft "$2" --name "$1" --results "$RESULTS" --prompts "$ACCEPT_PROMPTS"; }
distill() {  # name, student dir, steps, data file, cache dir, more options
  local out=$RUNS/$1 resume="" eval=""
  [ -f "$out/model/config.json" ] && return 0
  ls "$out"/checkpoints/step-* > /dev/null 2>&1 && resume="--resume"
  [ "${EVAL:-0}" = 1 ] && eval="--eval-data $DATA/distill_heldout_answers.jsonl"
  /usr/bin/time -f "peak RSS %M KB, %e s" lhama distill --teacher "$TEACHER" --student "$2" --data "$4" \
    $eval --out "$out" --cache "$5" --steps "$3" --batch "$BATCH" --grad-accum "$ACCUM" --lora 16 --lr 2e-4 \
    --max-length 256 --save-every 2 $resume "${@:6}"
}

step "teacher answers"
python benchmarks/distill.py answer --teacher "$TEACHER" --batch 24 --limit "$PROMPTS" --spread --human "$HUMAN" \
  --train-answers "$TRAIN_ANSWERS"  # resumable; no-op when done (the first 53 answers were written in file order)
step "measure teacher and 0.5B"
measure "teacher 1.5B" "$TEACHER"
measure "0.5B" "$STUDENT"
[ "${UNTIL:-}" = base ] && { python benchmarks/distill.py table --results "$RESULTS"; exit 0; }
step "distill the 0.5B"
MIX=$DATA/distill_train.jsonl ANSWERS=$DATA/distill_train_answers.jsonl
distill d-0.5b "$STUDENT" "$STEPS" "$MIX" "$RUNS/teacher_cache"
measure "0.5B distilled" "$RUNS/d-0.5b/model"
[ "${UNTIL:-}" = small ] && { python benchmarks/distill.py table --results "$RESULTS"; exit 0; }
step "prune the teacher: 28 -> 21 layers"
[ -f "$RUNS/pruned-1.5b/config.json" ] || /usr/bin/time -f "peak RSS %M KB, %e s" lhama prune --model "$TEACHER" \
  --out "$RUNS/pruned-1.5b" --layers 7 --calib $DATA/distill_train.jsonl --calib-texts "$CALIB_TEXTS"
measure "pruned 1.5B (21 layers)" "$RUNS/pruned-1.5b"
step "distill the pruned 1.5B"
distill d-pruned "$RUNS/pruned-1.5b" "$STEPS_PRUNED" "$MIX" "$RUNS/teacher_cache"
measure "pruned 1.5B distilled" "$RUNS/d-pruned/model"
step "draft acceptance against the teacher (lhama's speculative decoding)"
accept "0.5B" "$STUDENT"
accept "0.5B distilled" "$RUNS/d-0.5b/model"
[ "${UNTIL:-}" = round1 ] && { python benchmarks/distill.py table --results "$RESULTS"; exit 0; }
step "round 2: the teacher's answers only, KL at T=1"
distill d2-0.5b "$STUDENT" "$STEPS2" "$ANSWERS" "$RUNS/teacher_cache_answers" --temperature 1
measure "0.5B distilled, round 2" "$RUNS/d2-0.5b/model"
distill d2-pruned "$RUNS/pruned-1.5b" "$STEPS2_PRUNED" "$ANSWERS" "$RUNS/teacher_cache_answers" --temperature 1
measure "pruned 1.5B distilled, round 2" "$RUNS/d2-pruned/model"
accept "0.5B distilled, round 2" "$RUNS/d2-0.5b/model"
python benchmarks/distill.py table --results "$RESULTS"
step "done"
