#!/usr/bin/env bash
# #30 s12 -> next session: ONE exclusive timing run (< 10 min) under docs/distill.md's "timing rule for the prompt
# lookup": plain decoding, the shipped draft ("s9 default": 0.5B int4-g32, k 1, reads 24, Pace()) and the prompt lookup
# chosen on dev ("lookup k3": no model, 3 proposals, matches of the last 4..2 ids), on the shipped target, the 8
# held-out prompts of sessions 7-9 + the 4 held-out long-copy prompts, <= 48 new tokens, 2 interleaved rounds, 2 threads.
#   /work/team/heavy --exclusive -- bash benchmarks/spec_timing_s12_lookup.sh
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src
O=${O:-/tmp/30a/timing_lookup}; mkdir -p "$O"
ROUNDS=${ROUNDS:-2}; LOOKUP_K=${LOOKUP_K:-3}
H=$HOME/.cache/lhama/models; D=$H/qwen2.5-coder-0.5b-instruct; T=$H/lhama-default
Q=$(python3 -c "from lhama.weights.registry import REGISTRY; print(next(s.quant for s in REGISTRY if s.name == 'lhama-default'))")
echo "== start $(date -u +%H:%M:%S) HEAD $(git rev-parse --short HEAD) quant $Q OMP=${OMP_NUM_THREADS:-} LHAMA=${LHAMA_THREADS:-} load: $(cat /proc/loadavg)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo) | native kernel: $(python3 -c 'from lhama.inference import native; print(native.kernel() is not None)' 2>&1 | tail -1)"
echo "uncommitted in src/lhama/inference: $(git status --short src/lhama/inference | tr '\n' ' ')"
echo "target cache: $(stat -c '%n %s %y' "$T/quant-$Q/language_model.safetensors")"
( while true; do echo "-- mon $(date -u +%H:%M:%S) load $(cut -d' ' -f1-4 /proc/loadavg)"; \
    top -bn2 -d1 -w 160 | awk '/^top -/{n++} n==2' | sed -n '8,11p' | cut -c1-150; sleep 10; done ) > "$O/monitor.log" 2>&1 &
MON=$!
timeout 560 python3 benchmarks/distill_spec.py --target "$T" --quant "$Q" --draft-quant int4-g32 \
  --draft "s9 default=$D@1" --pace "s9 default=0,0,4,8" --reads "s9 default=24" --draft "lookup k$LOOKUP_K=lookup@$LOOKUP_K" \
  --rounds "$ROUNDS" --short-below 32 --prompts 8 --longcopy 4 --tokens 48 --out "$O/spec_lookup.json" 2>&1 | grep -v "Loading weights"
echo "== end $(date -u +%H:%M:%S) load: $(cat /proc/loadavg)"
kill $MON
