"""Issue #29, twelfth session: the committed dev and read logs give the decisions docs/guard.md reports (the dev
rule pick_s12, judge:self's int4 threshold pick_int4, the ship rule decide_s12), and the rules can fail."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_head_s12 as g  # noqa: E402

from lhama.files import read_jsonl  # noqa: E402

RESULTS = Path(__file__).parents[2] / "docs" / "results"


def test_int4_threshold_pick_from_29c_dev_log():
    t, grid = g.pick_int4()
    assert t == 0.75
    assert grid["int4@0.75"]["pt_caught"] == grid["int8@0.74"]["pt_caught"] == 282
    assert grid["int4@0.76"]["pt_caught"] < 282  # the next threshold loses an unsafe request: not eligible


def test_dev_pick_from_committed_logs():
    scores, runs = read_jsonl(RESULTS / "guard_s12_dev.jsonl"), read_jsonl(RESULTS / "guard_s12_runs.jsonl")
    assert g.pick_s12(scores, runs) == PICK
    shipped = {s["name"]: s for s in scores}["shipped"]
    assert g.pick_s12([shipped], runs) == "none"  # nothing but the shipped guard: nothing eligible


def test_rows_added_are_every_read_request():
    rows = g.held_rows()
    assert len(rows) == 454 and sum(r["label"] == "unsafe" for r in rows) == 154
    assert all(r["round"] == 6 and r["role"] == "user" for r in rows)


def test_ship_rule_on_the_read():
    rows = read_jsonl(RESULTS / "guard_s12_heldout.jsonl")
    ship, failed = g.decide_s12(rows[0], rows[-1])
    assert (rows[0]["guard"], rows[-1]["guard"]) == ("shipped", PICK)
    assert (ship, failed) == DECISION
    better = dict(rows[-1], everyday_flagged=rows[0]["everyday_flagged"] - 3)  # the rule can pass ...
    assert g.decide_s12(rows[0], better) == (True, [])
    assert not g.decide_s12(rows[0], dict(better, caught=rows[0]["caught"] - 1))[0]  # ... and fail on recall


def test_int4_threshold_fails_its_ship_rule_on_the_read():
    """judge:self at 0.75 on int4 lost an unsafe request the cascade at 0.74 caught (shipped head): 0.74 stays."""
    shipped = read_jsonl(RESULTS / "guard_s12_heldout.jsonl")[0]
    assert shipped["judge@0.75_caught"] < shipped["judge@0.74_caught"]


PICK = "h3+tb"
DECISION = (False, ["everyday flagged <= shipped - 3"])
