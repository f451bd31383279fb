"""Issue #29, eighth session: benchmarks/guard_dev_s8.py's candidates, choice rule and ship rule."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_dev_s8 as g8  # noqa: E402


def _row(name: str, **kw) -> dict:
    base = {"name": name, "eval_everyday_flagged": 13, "eval_unsafe_caught": 44, "dev_pt_caught": 60,
            "dev_pt_lookalikes_flagged": 8, "dev_en_caught": 58, "train_s4_caught": 126}
    return {**base, **kw}


def test_candidates_are_the_reference_and_two_cue_lists():
    assert g8.CANDIDATES["s7"] == () and [r.code for r in g8.CANDIDATES["s4cue"]] == ["S4"]
    assert list(g8.CANDIDATES) == ["s7", "s4cue", "s4cue-narrow"]


def test_pick_needs_two_fewer_everyday_alarms_and_no_recall_loss():
    ref = _row("s7")
    assert g8.pick_s8([ref, _row("s4cue", eval_everyday_flagged=12)]) == "none"  # only one fewer
    assert g8.pick_s8([ref, _row("s4cue", eval_everyday_flagged=8, eval_unsafe_caught=43)]) == "none"
    assert g8.pick_s8([ref, _row("s4cue", eval_everyday_flagged=8, train_s4_caught=124)]) == "none"
    assert g8.pick_s8([ref, _row("s4cue", eval_everyday_flagged=8, dev_pt_lookalikes_flagged=9)]) == "none"
    ok = [ref, _row("s4cue", eval_everyday_flagged=8, dev_en_caught=57), _row("s4cue-narrow", eval_everyday_flagged=7)]
    assert g8.pick_s8(ok) == "s4cue-narrow"  # fewer everyday alarms first
    ok[2]["eval_everyday_flagged"] = 8
    assert g8.pick_s8(ok) == "s4cue-narrow"  # then more unsafe caught (57 < 58 English)
    ok[1]["dev_en_caught"] = 58
    assert g8.pick_s8(ok) == "s4cue"  # then the broader list


def _read(caught_pt=92, caught_en=93, safe_flagged=2, everyday=4, answers=1, f1_pt=0.944, f1_en=0.907) -> dict:
    return {"guard": "x", "pt": {"f1": f1_pt, "caught": caught_pt, "unsafe": 101, "safe_flagged": safe_flagged},
            "en": {"f1": f1_en, "caught": caught_en}, "everyday_s6": everyday, "answer_s6": answers}


def test_decide_ships_only_a_net_gain_that_keeps_recall():
    ref = _read()
    assert g8.decide_s8(ref, _read(everyday=3)) == (True, [])
    ship, failed = g8.decide_s8(ref, _read(everyday=3, caught_pt=91))  # one fewer alarm, one fewer caught: no net gain
    assert not ship and failed == ["pt-BR errors (s6) <= shipped - 1"]
    ship, failed = g8.decide_s8(ref, _read(everyday=2, caught_en=91))
    assert not ship and failed == ["English unsafe caught >= shipped - 1"]
    assert g8.decide_s8(ref, _read())[1] == ["everyday flagged <= shipped - 1", "pt-BR errors (s6) <= shipped - 1"]
