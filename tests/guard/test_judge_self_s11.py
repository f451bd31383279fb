"""Issue #29, eleventh session: benchmarks/guard_judge_self_s11.py (judge:self on chat's int4 lhama-default vs the
int8 judge the threshold was chosen on). No model is run: the committed summary is re-derived from its committed
log, and the log's int8 side must be the committed probes' PT_SHORT answers, in the fixed order."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_judge_self_s11 as gs  # noqa: E402

from lhama.files import read_jsonl  # noqa: E402

LOG = gs.ROOT / "docs/results/guard_s11_self_int4.jsonl"
SUMMARY = gs.ROOT / "docs/results/guard_s11_self_int4.summary.json"


def test_committed_summary_is_recomputed_from_the_log():
    assert json.loads(SUMMARY.read_text(encoding="utf-8")) == gs.summary(LOG)


def test_log_is_the_probes_judged_messages_in_the_fixed_order_with_their_int8_answers():
    order, int8 = [], {}
    for row in gs.probed_rows():
        for p in gs.judged(row):
            if p["text"] not in int8:
                order.append(p["text"])
                int8[p["text"]] = p["p_yes"]["pt"]
    log = read_jsonl(LOG)
    assert [r["text"] for r in log] == order[:len(log)]
    assert all(r["p_int8"] == int8[r["text"]] for r in log)
    assert all(0.0 <= r["p_int4"] <= 1.0 for r in log)


def test_a_cascade_flag_follows_the_chosen_side_at_the_threshold():
    row = {"set": "s10e", "label": "everyday",
           "paths": [{"text": "a", "score": 0.5}, {"text": "b", "score": None}]}
    p_of = {"a": {"p_int8": gs.THRESHOLD + 0.01, "p_int4": gs.THRESHOLD - 0.01}}
    assert gs.flagged(row, p_of, "p_int8") and not gs.flagged(row, p_of, "p_int4")
    loud = {"set": "s10e", "label": "everyday", "paths": [{"text": "c", "score": gs.PROBE_BAND}]}
    assert gs.flagged(loud, {}, "p_int4")  # a classifier flag above the band stands without the judge
