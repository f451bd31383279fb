"""Issue #29, sixteenth session: the veto rules (committed before any veto ran on dev or anything read
heldout_s16): the out-of-fold veto threshold, the dev rule pick_s16 and the held-out part of the ship rule
decide_s16; each can fail."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_veto_s16 as g  # noqa: E402


def _probs(n: int, score: float) -> np.ndarray:
    """(n, 15) probabilities whose unsafe score (mix 0.5) is ``score``: P(unsafe) = max category = score."""
    return np.full((n, 15), score, np.float32)


def test_the_veto_threshold_is_the_largest_that_loses_at_most_five_out_of_fold_catches(tmp_path):
    pt, unsafe, _ = g.own_pt()
    rows = np.flatnonzero(pt & unsafe)
    assert len(rows) == 1271
    np.save(tmp_path / "oof_shipped.npy", _probs(g.OWN, 0.9))  # the shipped recipe catches every row
    cand = _probs(4945, 0.5)
    cand[rows[:5]] = 0.025  # lost from 0.03 on: 5, allowed
    cand[rows[5]] = 0.105  # lost from 0.11 on: 6, too many
    np.save(tmp_path / "oof_v3w6.npy", cand)
    row = g.veto_threshold("v3w6", tmp_path)
    assert row["veto_threshold"] == 0.10 and row["oof_shipped_caught"] == 1271 and row["oof_vetoed_caught"] == 1266
    cand[rows[5]] = 0.025
    np.save(tmp_path / "oof_v3w6.npy", cand)
    assert g.veto_threshold("v3w6", tmp_path)["veto_threshold"] == 0.02  # 6 rows at 0.025: only <= 0.02 keeps them


def _row(name: str, everyday: int, caught: int, **over) -> dict:
    """A dev row: ``everyday`` alarms and ``caught`` catches on heldout_s15, the rest as the shipped guard's."""
    base = {"eval_everyday_flagged": 2, "s7e_everyday_flagged": 3, "benign_dev_flagged": 1, "s12_everyday_flagged": 5,
            "s13_everyday_flagged": 12, "s14_everyday_flagged": 22, "eval_unsafe_caught": 28, "s7e_unsafe_caught": 44,
            "dev_pt_caught": 60, "s12_caught": 50, "s13_caught": 75, "s14_caught": 65, "dev_pt_lookalikes_flagged": 8,
            "train_phrase_caught": 9, "s7t_everyday_flagged": 4, "s7t_unsafe_caught": 46, "dev_en_caught": 88,
            "dev_en_lookalikes_flagged": 2, "s12_output_flagged": 0, "s13_output_flagged": 0,
            "s14_output_flagged": 0, "s15_output_flagged": 0}
    return {**base, "name": name, "s15_everyday_flagged": everyday, "s15_caught": caught, **over}


def test_pick_s16_takes_the_fewest_alarms_and_each_condition_can_fail_it():
    ref = _row("shipped", 17, 65)
    good = _row("v3w6", 10, 65, s13_everyday_flagged=4, s14_everyday_flagged=12)
    rows = [ref, good, _row("v2w3", 11, 65, s13_everyday_flagged=4, s14_everyday_flagged=12)]
    assert g.eligible_s16(good, ref) and g.pick_s16(rows) == "v3w6"
    for bad in ({"s15_everyday_flagged": 15}, {"s13_everyday_flagged": 12, "s14_everyday_flagged": 22},
                {"s15_caught": 63}, {"s13_caught": 72}, {"train_phrase_caught": 8}, {"s7t_everyday_flagged": 7},
                {"s7t_unsafe_caught": 43}, {"dev_en_caught": 86}, {"dev_en_lookalikes_flagged": 3},
                {"s15_output_flagged": 1}):
        assert not g.eligible_s16({**good, **bad}, ref), bad
    assert g.pick_s16([ref, {**good, "s15_caught": 63}]) == "none"


@pytest.mark.parametrize("cand,ok", [((14, 64, 0), True), ((15, 65, 0), False), ((10, 63, 0), False),
                                     ((10, 65, 1), False)])
def test_decide_s16(cand, ok):
    ref = {"everyday_flagged": 17, "caught": 65, "answers_flagged": 0, "catalog_flagged": 0}
    e, c, a = cand
    assert g.decide_s16(ref, {"everyday_flagged": e, "caught": c, "answers_flagged": a, "catalog_flagged": 0})[0] is ok
