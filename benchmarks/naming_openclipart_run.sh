#!/usr/bin/env bash
# Issue #26 session 6: the whole fresh-naming run in one heavy slot, every choice made by the rule
# committed in docs/default-model.md ("Naming, session 6") before this ran.
#   nohup /work/team/heavy -- bash benchmarks/naming_openclipart_run.sh /usr/share/openclipart/png > LOG 2>&1 &
set -euo pipefail
FOLDER=${1:?give openclipart-png\'s png folder}
R=docs/results; H=/tmp/lhama_openclipart_head; export PYTHONPATH=src
B="python benchmarks/naming_openclipart.py"
F="python benchmarks/naming_fusion.py --model lhama-default --quant int8 --styles kinds --kind-confident 0.3 --max-new-tokens 16 --batch 16 --threads 1 --data-dir ../shared/data/tuxpaint_ptbr"
$B features --folder "$FOLDER" --threads 1
$B guard
$B head --out $H
$B score --split dev --out $R/naming_openclipart_dev_notes.json                      # reference + grid need the head:
$B score --split dev --head $H --out $R/naming_openclipart_dev_grid.json
CHOSEN=$($B choose --grid $R/naming_openclipart_dev_grid.json)
echo "chosen on dev: $CHOSEN"
$B score --split dev --head $H --only "$CHOSEN" --out /tmp/oc_dev_chosen_notes.json
$F --clipart-dir "$FOLDER" --clipart-split dev --out $R/naming_openclipart_dev_reference.json
$F --clipart-dir "$FOLDER" --clipart-split dev --notes /tmp/oc_dev_chosen_notes.json --out $R/naming_openclipart_dev_candidate.json
python benchmarks/names_head.py score --split dev --head $H --only "$CHOSEN" --out $R/naming_openclipart_olddev_candidate_notes.json
# the fresh test half: once for the reference, once for the chosen candidate
$B score --split test --out /tmp/oc_test_reference_notes.json
$B score --split test --head $H --only "$CHOSEN" --out $R/naming_openclipart_test_candidate_notes.json
$F --clipart-dir "$FOLDER" --clipart-split test --out $R/naming_openclipart_test_reference.json
$F --clipart-dir "$FOLDER" --clipart-split test --notes $R/naming_openclipart_test_candidate_notes.json --out $R/naming_openclipart_test_candidate.json
# the old 100-picture test split (not a first read) for the candidate
python benchmarks/names_head.py score --split test --head $H --only "$CHOSEN" --out /tmp/oc_oldtest_candidate_notes.json
$F --split test --notes /tmp/oc_oldtest_candidate_notes.json --out $R/naming_openclipart_oldtest_candidate.json
echo done
