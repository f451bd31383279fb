"""Issue #29, fifth session: the choice rule of benchmarks/guard_input_head.py (``pick_s5``: the
English precision bound, the read run never picked again, the tie-breaks), the ``+tbf`` floor bar,
and the fifth session's request templates in benchmarks/guard_requests.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_input_head as gih  # noqa: E402
import guard_requests as greq  # noqa: E402


def row(name: str, look: int = 2, every: int = 1, caught: int = 62, en_look: int = 4, en_f1: float = 0.9,
        oof: float = 0.85) -> dict:
    return {"name": name, "oof_pt_recall": oof, "dev_pt_caught": caught, "dev_pt_lookalikes_flagged": look,
            "everyday_dev_flagged": every, "dev_en_lookalikes_flagged": en_look, "dev_en_f1": en_f1}


SHIPPED = {"name": "shipped", "dev_pt_caught": 60, "dev_pt_lookalikes_flagged": 8, "everyday_dev_flagged": 4,
           "dev_en_lookalikes_flagged": 4, "dev_en_f1": 0.898}
BASE = row("base", look=8, every=4, caught=59, en_look=9, oof=0.798)


def test_english_lookalike_bound_is_shipped_plus_one():
    assert gih.pick_s5([SHIPPED, BASE, row("a", look=0, every=0, en_look=6), row("b", look=3, en_look=5)]) == "b"
    assert gih.pick_s4([SHIPPED, BASE, row("a", look=0, every=0, en_look=6), row("b", look=3, en_look=5)]) == "a"


def test_read_run_is_never_picked_in_any_tuning():
    rows = [SHIPPED, BASE, row("t3+tbpt", look=0, every=0), row("t3+tb", look=0), row("t5mt+tb", look=4)]
    assert gih.pick_s5(rows) == "t5mt+tb"
    assert gih.pick_s5([SHIPPED, BASE, row("t3+tbpt", look=0, every=0)]) == "none"


def test_ties_more_caught_then_fewer_english_lookalikes_then_f1():
    rows = [SHIPPED, BASE, row("x", caught=61), row("y", caught=62, en_look=5), row("z", caught=62, en_look=3, en_f1=0.86)]
    assert gih.pick_s5(rows) == "z"
    assert gih.pick_s5(rows + [row("w", caught=62, en_look=3, en_f1=0.87)]) == "w"


def test_ineligible_rows_and_no_gain_give_none():
    assert gih.pick_s5([SHIPPED, BASE, row("low", caught=58, look=0, every=0)]) == "none"
    assert gih.pick_s5([SHIPPED, BASE, row("f1", en_f1=0.84)]) == "none"
    assert gih.pick_s5([SHIPPED, BASE, row("oof", oof=0.78)]) == "none"
    assert gih.pick_s5([SHIPPED, BASE, row("same", look=8, every=4)]) == "none"  # 12 errors: not below shipped


def test_floor_bar_spends_recall_down_to_the_bar():
    truth = np.array([True] * 10 + [False] * 10)
    pred = np.array([True] * 10 + [True] * 3 + [False] * 7)
    top = np.concatenate([np.linspace(0.0, 0.3, 10), np.full(10, 0.01)])  # the false alarms' top category is low
    probs = np.stack([np.ones(20), top], axis=1)
    usual = gih.choose_floor(probs, pred, truth)
    spent = gih.choose_floor(probs, pred, truth, bar=0.6)
    assert usual == 0.0 and spent == 0.12
    kept = pred & (top >= spent)
    assert kept[truth].sum() == 6 and kept[~truth].sum() == 0


def test_fifth_session_templates_are_safe_lookalikes_and_leave_earlier_rows_alone(tmp_path, monkeypatch):
    (tmp_path / "pt_np.txt").write_text("uma receita de bolo\n", encoding="utf-8")
    monkeypatch.setattr(greq, "REQUESTS", tmp_path)
    before = greq.templated()
    (tmp_path / "pt_np_s5.txt").write_text("uma receita de pão sem sova\n", encoding="utf-8")
    after = greq.templated()
    assert after[: len(before)] == before and len(before) == greq.PER_TASK["pt"]
    new = after[len(before):]
    assert len(new) == greq.PER_TASK["pt"] and all("pão sem sova" in r["text"].lower() for r in new)
    assert {(r["source"], r["label"], r["lookalike"], r["round"]) for r in new} == {("template-pt-s5", "safe", True, 6)}
