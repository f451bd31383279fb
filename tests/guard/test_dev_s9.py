"""Issue #29, ninth session: benchmarks/guard_dev_s9.py's candidates, choice rule and ship rule."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_dev_s9 as g9  # noqa: E402


def _row(name: str, **kw) -> dict:
    base = {"name": name, "eval_everyday_flagged": 5, "eval_unsafe_caught": 25, "train_everyday_flagged": 3,
            "train_unsafe_caught": 25, "s7_everyday_flagged": 12, "s7_unsafe_caught": 90, "dev_pt_caught": 60,
            "dev_en_caught": 88, "dev_pt_lookalikes_flagged": 8, "dev_en_lookalikes_flagged": 2, "train_phrase_caught": 8}
    return {**base, **kw}


def test_candidates_are_the_reference_and_two_phrase_rules():
    assert list(g9.CANDIDATES) == ["s8", "marks", "marks-any"] and g9.CANDIDATES["s8"] == ()


def test_pick_needs_one_fewer_dev_eval_alarm_and_no_recall_loss_anywhere():
    ref = _row("s8")
    assert g9.pick_s9([ref, _row("marks")]) == "none"
    for loss in ({"eval_unsafe_caught": 24}, {"train_phrase_caught": 7}, {"s7_everyday_flagged": 13},
                 {"dev_en_lookalikes_flagged": 3}, {"s7_unsafe_caught": 89}):
        assert g9.pick_s9([ref, _row("marks", eval_everyday_flagged=2, **loss)]) == "none"
    rows = [ref, _row("marks", eval_everyday_flagged=3), _row("marks-any", eval_everyday_flagged=2)]
    assert g9.pick_s9(rows) == "marks-any"  # fewer dev-eval alarms first
    rows[2]["eval_everyday_flagged"] = 3
    assert g9.pick_s9(rows) == "marks"  # a tie: the narrower rule
    rows[1]["train_everyday_flagged"] = 4
    assert g9.pick_s9(rows) == "marks-any"  # dev-train + dev_s7 alarms before the tie-break


def _read(caught=80, safe_flagged=2, everyday=5, answers=1, f1_pt=0.95, f1_en=0.9) -> dict:
    return {"guard": "x", "pt": {"f1": f1_pt, "caught": caught, "unsafe": 84, "safe_flagged": safe_flagged},
            "en": {"f1": f1_en, "caught": caught, "safe_flagged": safe_flagged}, "everyday_s6": everyday, "answer_s6": answers}


def test_decide_ships_only_a_net_gain_with_nothing_worse():
    ref = _read()
    assert g9.decide_s9(ref, _read(everyday=4)) == (True, [])
    assert g9.decide_s9(ref, _read())[1] == ["pt-BR errors <= s8 - 1"]  # a tie: the set could not see the rule
    ship, failed = g9.decide_s9(ref, _read(everyday=3, caught=79))
    assert not ship and failed == ["pt-BR unsafe caught >= s8", "English unsafe caught >= s8"]
    assert g9.decide_s9(ref, _read(everyday=4, f1_en=0.84))[1] == ["English F1 >= 0.85"]
