#!/usr/bin/env bash
# #30 s11: ONE exclusive timing run (< 10 min) under docs/distill.md's session-11 timing rule: plain decoding, the
# shipped draft ("s9 default": 0.5B int4-g32, k 1, reads 24, Pace()), session 10's dev choice ("new", NEW_*: only if
# spec_sim_s10.py's CHOSEN differs) and session 11's short-answer pace ("short", SHORT_*: only if spec_sim_s11.py's
# CHOSEN differs from its base), on the shipped target, the 8 held-out prompts of sessions 7-9 + LONGCOPY held-out
# long-copy prompts, <= 48 new tokens, ROUNDS interleaved rounds (2: three rows take ~200 s a round), 2 threads.
#   /work/team/heavy --exclusive -- env SHORT_PACE=.. bash benchmarks/spec_timing_s11.sh
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src
O=${O:-/tmp/30a/timing11}; mkdir -p "$O"
PROMPTS=${PROMPTS:-8}; LONGCOPY=${LONGCOPY:-4}; TOKENS=${TOKENS:-48}; ROUNDS=${ROUNDS:-2}
DEFAULT=1,0,0,4,8,0,24
NEW_K=${NEW_K:-1}; NEW_PACE=${NEW_PACE:-0,0,4,8,0}; NEW_READS=${NEW_READS:-24}
SHORT_K=${SHORT_K:-1}; SHORT_PACE=${SHORT_PACE:-0,0,4,8,0}; SHORT_READS=${SHORT_READS:-24}
H=$HOME/.cache/lhama/models; D=${DRAFT_DIR:-$H/qwen2.5-coder-0.5b-instruct}; T=$H/lhama-default
Q=$(python3 -c "from lhama.weights.registry import REGISTRY; print(next(s.quant for s in REGISTRY if s.name == 'lhama-default'))")
echo "== start $(date -u +%H:%M:%S) HEAD $(git rev-parse --short HEAD) quant $Q OMP=${OMP_NUM_THREADS:-} LHAMA=${LHAMA_THREADS:-} load: $(cat /proc/loadavg)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo) | native kernel: $(python3 -c 'from lhama.inference import native; print(native.kernel() is not None)' 2>&1 | tail -1)"
echo "uncommitted in src/lhama/inference: $(git status --short src/lhama/inference | tr '\n' ' ')"
echo "target cache: $(stat -c '%n %s %y' "$T/quant-$Q/language_model.safetensors")"
echo "new: k $NEW_K pace $NEW_PACE reads $NEW_READS | short: k $SHORT_K pace $SHORT_PACE reads $SHORT_READS | rounds $ROUNDS"
ps -eo pid,ni,pcpu,etime,args --sort=-pcpu | head -6 | cut -c1-160
( while true; do echo "-- mon $(date -u +%H:%M:%S) load $(cut -d' ' -f1-4 /proc/loadavg)"; \
    top -bn2 -d1 -w 160 | awk '/^top -/{n++} n==2' | sed -n '8,11p' | cut -c1-150; sleep 10; done ) > "$O/monitor.log" 2>&1 &
MON=$!
DRAFTS=(--draft "s9 default=$D@1" --pace "s9 default=0,0,4,8" --reads "s9 default=24")
if [ "$NEW_K,$NEW_PACE,$NEW_READS" != "$DEFAULT" ]; then
  DRAFTS+=(--draft "new=$D@$NEW_K" --pace "new=$NEW_PACE" --reads "new=$NEW_READS")
fi
if [ "$SHORT_K,$SHORT_PACE,$SHORT_READS" != "$DEFAULT" ]; then
  DRAFTS+=(--draft "short=$D@$SHORT_K" --pace "short=$SHORT_PACE" --reads "short=$SHORT_READS")
fi
timeout 560 python3 benchmarks/distill_spec.py --target "$T" --quant "$Q" --draft-quant int4-g32 "${DRAFTS[@]}" \
  --rounds "$ROUNDS" --short-below 32 --prompts "$PROMPTS" --longcopy "$LONGCOPY" --tokens "$TOKENS" \
  --out "$O/spec_s11.json" 2>&1 | grep -v "Loading weights"
echo "== end $(date -u +%H:%M:%S) load: $(cat /proc/loadavg)"
kill $MON
