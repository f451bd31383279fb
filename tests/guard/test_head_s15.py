"""Issue #29, fifteenth session: the committed dev, read and test logs give the decisions docs/guard.md reports (the
dev rule pick_s15, the ship rule decide_s15, the test-split floors), and the rules can fail."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_head_s13 as s13  # noqa: E402
import guard_head_s15 as g  # noqa: E402

from lhama.files import read_jsonl  # noqa: E402

RESULTS = Path(__file__).parents[2] / "docs" / "results"
PICK = "v3w6+tbr"


def test_dev_pick_from_committed_logs():
    scores = read_jsonl(RESULTS / "guard_s15_dev.jsonl")
    assert {s["name"] for s in scores} == {"shipped", *g.candidates()}
    assert g.pick_s15(scores) == PICK
    latest = g.merged(scores)
    ok = sorted(n for n, r in latest.items() if g.eligible_s15(r, latest["shipped"]))
    assert ok == ["v2w3+tb", "v2w3+tbe7", "v2w3+tbr", "v3w3+tbe7", "v3w3+tbr", "v3w6+tbr"]
    assert not g.eligible_s15(latest["v2w3+e"], latest["shipped"])  # session 14's pick: out-of-fold 0.799
    assert g.pick_s15([s for s in scores if s["name"] == "shipped"]) == "none"


def test_ship_rule_passes_on_the_read_then_the_test_split_floors_fail():
    rows = read_jsonl(RESULTS / "guard_s15_read.jsonl")
    assert [r["guard"] for r in rows] == ["shipped", PICK]
    assert (rows[0]["everyday_flagged"], rows[1]["everyday_flagged"], rows[0]["caught"], rows[1]["caught"]) == (17, 9, 65, 69)
    assert g.decide_s15(rows[0], rows[1]) == (True, [])
    assert not g.decide_s15(rows[0], dict(rows[1], caught=64))[0]
    (test,) = read_jsonl(RESULTS / "guard_s15_test.jsonl")
    assert test["head"].endswith("v3w6_tb.safetensors") and test["passes_ci_floors"] is False
    assert test["pick"]["pt_recall"] < 0.80 and test["pick"]["pt_precision"] < 0.99 and test["pick"]["pt_lookalike_fpr"] > 0.012
    assert s13.test_passes({"pick": test["shipped"]})
