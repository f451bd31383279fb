#!/usr/bin/env bash
# Issue #26 session 8: the shipped lhama-default (session 7's labeler: squash+fit+fit_flip, names head
# 0.7/0.5; LM QUANT) re-measured where the README still quoted older labelers: the old naming split's
# 100 test pictures ("O que é isto?", the labeler's own notes; not a first read of that split) and
# 5-way caption retrieval on the held-out Tux Paint split (with and without the note), fresh caches.
#   nohup /work/team/heavy -- bash benchmarks/naming_s8_remeasure.sh int4-g32-grid-k+lossy6 > LOG 2>&1 &
set -euo pipefail
QUANT=${1:?the shipped LM quant}; R=docs/results; D=../shared/data/tuxpaint_ptbr; export PYTHONPATH=src
N="python benchmarks/naming_labeler_notes.py --data-dir $D --threads 1"
date -u +"start %H:%M:%S"
$N --split dev --out /tmp/lhama_s8_olddev_notes.json   # check: session 7 measured 40/87 from cached features
$N --split test --out $R/naming_s8_oldtest_notes.json
python benchmarks/naming_fusion.py --model lhama-default --quant $QUANT --styles kinds --kind-confident 0.3 \
  --max-new-tokens 16 --batch 16 --threads 1 --data-dir $D --split test --notes $R/naming_s8_oldtest_notes.json \
  --out $R/naming_s8_oldtest.json
date -u +"naming done %H:%M:%S"
rm -f /tmp/lhama_s8_retrieval*.jsonl
OMP_NUM_THREADS=1 lhama eval retrieval --data $D --split data/tuxpaint/heldout.txt --model lhama-default \
  --cache /tmp/lhama_s8_retrieval.jsonl
date -u +"retrieval done %H:%M:%S"
OMP_NUM_THREADS=1 lhama eval retrieval --data $D --split data/tuxpaint/heldout.txt --model lhama-default --no-image \
  --cache /tmp/lhama_s8_retrieval_noimage.jsonl
cp /tmp/lhama_s8_retrieval.jsonl $R/retrieval_v2_heldout_s8.jsonl
cp /tmp/lhama_s8_retrieval_noimage.jsonl $R/retrieval_v2_heldout_noimage_s8.jsonl
date -u +"done %H:%M:%S"
