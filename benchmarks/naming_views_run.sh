#!/usr/bin/env bash
# Issue #26 session 7: the dev-chosen view set (+ names setting) against the shipped labeler, with the
# LM, on the fresh clip-art dev half, the old naming dev split (note alone), then ONE read of the fresh
# test half, every step as the rule in docs/default-model.md ("Naming, session 7") says; run after
# `naming_views.py features` (pool, dev, stamps, old dev) and that rule's commit.
#   nohup /work/team/heavy -- bash benchmarks/naming_views_run.sh VIEWS SETTING_JSON QUANT > LOG 2>&1 &
set -euo pipefail
VIEWS=${1:?views, e.g. fit,fit_flip}; SETTING=${2:?names setting JSON}; QUANT=${3:?the shipped LM quant}
FOLDER=/usr/share/openclipart/png; R=docs/results; H=/tmp/lhama_naming_views_head; export PYTHONPATH=src
V="python benchmarks/naming_views.py"; B="python benchmarks/naming_openclipart.py --cache /tmp/lhama_naming_views_oc.pt"
F="python benchmarks/naming_fusion.py --model lhama-default --quant $QUANT --styles kinds --kind-confident 0.3 --max-new-tokens 16 --batch 16 --threads 1 --data-dir ../shared/data/tuxpaint_ptbr --clipart-dir $FOLDER"
$V export --views "$VIEWS" --head-out $H
$B score --split dev --head $H --only "$SETTING" --out $R/naming_views_dev_candidate_notes.json
python benchmarks/names_head.py score --split dev --cache /tmp/lhama_naming_views_items.pt --head $H --only "$SETTING" --out $R/naming_views_olddev_candidate_notes.json
$F --clipart-split dev --out $R/naming_views_dev_reference.json
$F --clipart-split dev --notes $R/naming_views_dev_candidate_notes.json --out $R/naming_views_dev_candidate.json
python benchmarks/naming_views.py verdict --dev $R/naming_views_dev_reference.json,$R/naming_views_dev_candidate.json --olddev $R/naming_views_olddev_candidate_notes.json
# the rule's dev part passed (verdict exits 1 otherwise): the fresh test half, read once
$V features --part test --views "$VIEWS"
$V export --views "$VIEWS" --head-out $H
$B score --split test --head $H --only "$SETTING" --out $R/naming_views_test_candidate_notes.json
$F --clipart-split test --out $R/naming_views_test_reference.json
$F --clipart-split test --notes $R/naming_views_test_candidate_notes.json --out $R/naming_views_test_candidate.json
echo done
