#!/usr/bin/env bash
# #30 session 13: ONE exclusive run (< 10 min), two parts, from an export of a commit (PYTHONPATH = its src):
#   A. the students' speed on this CPU: benchmarks/decode.py, one process per model (its own peak RSS), lhama's engine,
#      int8, bench's fixed prompt, 64 new tokens after an 8-token warm-up, 2 threads: the teacher 1.5B, the 0.5B, the
#      0.5B distilled (round 2), the pruned 1.5B (21 layers), the pruned 1.5B distilled (round 2); then the teacher as
#      lhama-default ships it (its registry quant). The int8 caches are built before (a slot job with TOKENS=8), so no
#      row includes quantisation.
#   B. benchmarks/spec_timing_s13_lookup.py (its docstring holds the rule): plain vs --draft lookup on the everyday
#      test questions, the time left (BUDGET s).
#   /work/team/heavy --exclusive -- bash benchmarks/spec_students_s13.sh
# Model directories (never names): TEACHER, SMALL, SMALL_D, PRUNED, PRUNED_D, SHIPPED; outputs under O.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src
O=${O:-/tmp/30a/excl13}; mkdir -p "$O"
TOKENS=${TOKENS:-64}; THREADS=${LHAMA_THREADS:-2}; BUDGET=${BUDGET:-270}; PARTS=${PARTS:-AB}
M=/tmp/30a/models R=/tmp/30a/runs
TEACHER=${TEACHER:-$M/teacher-1.5b} SMALL=${SMALL:-$M/qwen-0.5b} SMALL_D=${SMALL_D:-$R/d2-0.5b/model}
PRUNED=${PRUNED:-$R/pruned-1.5b} PRUNED_D=${PRUNED_D:-$R/d2-pruned/model} SHIPPED=${SHIPPED:-$HOME/.cache/lhama/models/lhama-default}
Q=$(python3 -c "from lhama.weights.registry import REGISTRY; print(next(s.quant for s in REGISTRY if s.name == 'lhama-default'))")
echo "== start $(date -u +%H:%M:%S) threads $THREADS load: $(cat /proc/loadavg)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo) | native kernel: $(python3 -c 'from lhama.inference import native; print(native.kernel() is not None)' 2>&1 | tail -1)"
( while true; do echo "-- mon $(date -u +%H:%M:%S) load $(cut -d' ' -f1-4 /proc/loadavg)"; \
    top -bn2 -d1 -w 160 | awk '/^top -/{n++} n==2' | sed -n '8,11p' | cut -c1-150; sleep 10; done ) > "$O/monitor.log" 2>&1 &
MON=$!
row() {  # name, dir, quant
  echo "-- $(date -u +%H:%M:%S) $1"
  timeout 120 python3 benchmarks/decode.py --model "$2" --quant "$3" --tokens "$TOKENS" --threads "$THREADS" \
    --no-baseline --no-llama-cpp --out "$O/decode_$1.json" 2>&1 | grep -v "Loading weights"
}
if [[ $PARTS == *A* ]]; then
  row teacher "$TEACHER" int8; row small "$SMALL" int8; row small_d "$SMALL_D" int8
  row pruned "$PRUNED" int8; row pruned_d "$PRUNED_D" int8; row shipped "$SHIPPED" "$Q"
fi
if [[ $PARTS == *B* ]]; then
  echo "-- $(date -u +%H:%M:%S) lookup timing, budget $BUDGET s"
  timeout $((BUDGET + 90)) python3 benchmarks/spec_timing_s13_lookup.py --target "$SHIPPED" --out "$O/lookup13.json" \
    --budget "$BUDGET" 2>&1 | grep -v "Loading weights"
fi
echo "== end $(date -u +%H:%M:%S) load: $(cat /proc/loadavg)"
kill $MON
