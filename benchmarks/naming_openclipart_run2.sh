#!/usr/bin/env bash
# Issue #26 session 6, candidate 2 (class prototypes; rule in docs/default-model.md, committed before
# its dev grid): the rule's dev choice with the LM, then one read of the fresh test half.
# Needs benchmarks/naming_openclipart_run.sh's feature cache and exclusions.
#   nohup /work/team/heavy -- bash benchmarks/naming_openclipart_run2.sh /usr/share/openclipart/png > LOG 2>&1 &
set -euo pipefail
FOLDER=${1:?give openclipart-png\'s png folder}
R=docs/results; H=/tmp/lhama_openclipart_proto; export PYTHONPATH=src
B="python benchmarks/naming_openclipart.py"
F="python benchmarks/naming_fusion.py --model lhama-default --quant int8 --styles kinds --kind-confident 0.3 --max-new-tokens 16 --batch 16 --threads 1 --data-dir ../shared/data/tuxpaint_ptbr"
$B head --prototypes --out $H
$B score --split dev --head $H --out $R/naming_openclipart_dev_grid_proto.json
CHOSEN=$($B choose --grid $R/naming_openclipart_dev_grid_proto.json)
echo "chosen on dev: $CHOSEN"
$B score --split dev --head $H --only "$CHOSEN" --out /tmp/oc_dev_proto_notes.json
$F --clipart-dir "$FOLDER" --clipart-split dev --notes /tmp/oc_dev_proto_notes.json --out $R/naming_openclipart_dev_candidate2.json
python benchmarks/names_head.py score --split dev --head $H --only "$CHOSEN" --out $R/naming_openclipart_olddev_candidate2_notes.json
$B score --split test --head $H --only "$CHOSEN" --out $R/naming_openclipart_test_candidate2_notes.json
$F --clipart-dir "$FOLDER" --clipart-split test --notes $R/naming_openclipart_test_candidate2_notes.json --out $R/naming_openclipart_test_candidate2.json
echo done
