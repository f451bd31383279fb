"""Issue #29, fifteenth session: the dev rule pick_s15 (committed before any candidate ran on heldout_s14 this
session) keeps out heads whose out-of-fold recall sits below the bar that protects the test split's recall floor,
and it can fail on each condition."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_head_s15 as g  # noqa: E402


def _rows(**by_name: tuple[int, int, int]) -> list[dict]:
    """heldout_s14 rows (everyday flagged, caught, output flagged) for the shipped guard and the named heads."""
    return [{"name": n, "s14_everyday_flagged": e, "s14_caught": c, "s14_output_flagged": o}
            for n, (e, c, o) in by_name.items()]


SHIPPED = (22, 65, 0)


def test_session_14s_pick_is_out_under_the_new_bar():
    """v2w3+e (out-of-fold recall 0.799, test recall 0.726) is not eligible however well it does on heldout_s14."""
    latest = g.merged(_rows(shipped=SHIPPED, **{"v2w3+e": (0, 70, 0)}))
    assert latest["v2w3+e"]["oof_pt_recall"] < g.OOF_BAR
    assert not g.eligible_s15(latest["v2w3+e"], latest["shipped"])
    assert g.pick_s15(_rows(shipped=SHIPPED, **{"v2w3+e": (0, 70, 0)})) == "none"


def test_a_plus_tb_head_can_pass_and_each_condition_can_fail_it():
    rows = _rows(shipped=SHIPPED, **{"v3w3+tbr": (8, 66, 0), "v2w3+tb": (9, 67, 0)})
    latest = g.merged(rows)
    ref, cand = latest["shipped"], latest["v3w3+tbr"]
    assert cand["oof_pt_recall"] >= g.OOF_BAR and cand["threshold"] >= g.THRESHOLD_BAR
    assert g.eligible_s15(cand, ref)
    assert g.pick_s15(rows) == "v3w3+tbr"  # 13 + 8 alarms against v2w3+tb's 16 + 1 + 9
    for bad in ({"s14_everyday_flagged": 18}, {"s14_caught": 64}, {"s14_output_flagged": 1},
                {"oof_pt_recall": 0.81}, {"threshold": 0.19}, {"dev_en_caught": ref["dev_en_caught"] - 2},
                {"dev_pt_lookalikes_flagged": ref["dev_pt_lookalikes_flagged"] + 1}):
        assert not g.eligible_s15({**cand, **bad}, ref), bad


def test_the_ship_rule_needs_fewer_alarms_and_no_lost_catch():
    ref = {"guard": "shipped", "everyday_flagged": 10, "caught": 60, "answers_flagged": 0, "catalog_flagged": 0}
    assert g.decide_s15(ref, dict(ref, guard="x", everyday_flagged=7))[0]
    assert not g.decide_s15(ref, dict(ref, guard="x", everyday_flagged=8))[0]
    assert not g.decide_s15(ref, dict(ref, guard="x", everyday_flagged=2, caught=59))[0]
    assert not g.decide_s15(ref, dict(ref, guard="x", everyday_flagged=2, catalog_flagged=1))[0]
