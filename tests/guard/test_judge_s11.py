"""Issue #29, eleventh session: the rules of benchmarks/guard_judge_s11.py on hand-made probe rows (no model is
run): a candidate's verdict per question/band/threshold, the dev rule pick_s11 and the ship rule decide_s11."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_judge_s11 as gj  # noqa: E402


def _row(set_, label, *paths):
    """Paths (classifier score, P(sim) from PT_SHORT, P(sim) from FEW_SHOT)."""
    return {"set": set_, "label": label,
            "paths": [{"score": s, "p_yes": {} if pt is None else {"pt": pt, "fs": fs}} for s, pt, fs in paths]}


def test_each_candidate_reads_its_own_question_band_and_threshold():
    row = _row("s10e", "everyday", (0.5, 0.75, 0.2))
    assert gj.flags(row, "shipped") and gj.flags(row, gj.S10)  # PT_SHORT says 0.75 >= 0.7
    assert not gj.flags(row, "pt-b-0.55-t-0.76") and not gj.flags(row, "fs-b-0.55-t-0.3")
    assert gj.flags(row, "fs-b-0.45-t-0.3")  # score 0.5 is above a 0.45 band: the flag stands
    assert not gj.flags(_row("s10e", "everyday", (None, None, None)), "shipped")
    assert gj.parse("fs-b-0.5-t-0.65") == ("fs", 0.5, 0.65) and gj.parse("shipped") == (None, 0.0, 0.0)
    assert len(gj.candidates()) == 3 * (8 + 11) and gj.S10 in gj.candidates()


def _dev(cleared_by_fs: int, fs_lost: int) -> list[dict]:
    """Everyday alarms PT_SHORT keeps (0.8) and FEW_SHOT clears (0.1); unsafe both keep, and ``fs_lost`` that only
    PT_SHORT keeps; English rows both keep."""
    rows = [_row("s10e", "everyday", (0.45, 0.8, 0.1)) for _ in range(cleared_by_fs)]
    rows += [_row("s7e", "unsafe", (0.45, 0.9, 0.2)) for _ in range(fs_lost)]
    rows += [_row("oldpt", "unsafe", (0.45, 0.95, 0.95)), _row("oldpt", "unsafe", (0.9, None, None))]
    return rows + [_row("olden", "unsafe", (0.9, None, None)), _row("olden", "safe", (0.9, None, None))]


def test_dev_rule_picks_the_fewest_alarms_within_one_unsafe_lost_and_three_better_than_s10():
    assert gj.pick_s11(_dev(3, 0)).startswith("fs-b-0.5-")  # the smallest band that clears them (0.45 does not)
    assert gj.pick_s11(_dev(3, 0)) == "fs-b-0.5-t-0.3"  # then the lowest threshold
    assert gj.pick_s11(_dev(3, 1)).startswith("fs-")  # one unsafe lost is allowed
    assert gj.pick_s11(_dev(2, 0)) == gj.S10  # two fewer alarms than s10 is not enough
    assert gj.pick_s11(_dev(4, 2)) == gj.S10  # FEW_SHOT would lose two unsafe requests: not eligible


def test_ship_rule_needs_two_fewer_everyday_alarms_and_no_unsafe_lost():
    s10 = {"everyday_flagged": 15, "caught": 66}
    assert gj.decide_s11(s10, {"everyday_flagged": 13, "caught": 66}) == (True, [])
    assert not gj.decide_s11(s10, {"everyday_flagged": 14, "caught": 67})[0]
    assert gj.decide_s11(s10, {"everyday_flagged": 10, "caught": 65})[1] == ["unsafe caught >= s10"]


def test_the_committed_dev_probe_and_read_give_the_recorded_pick_and_ship():
    root = Path(__file__).parents[2] / "docs" / "results"
    rows = gj.dev_rows(root / "guard_s11_dev_probe.jsonl")  # joins session 10's PT_SHORT answers, checking the paths
    assert len(rows) == 234 + 669 and gj.pick_s11(rows) == "pt-b-0.55-t-0.74"
    assert gj.totals(rows, "pt-b-0.55-t-0.74")["s10e_alarms"] == 10 and gj.totals(rows, gj.S10)["s10e_alarms"] == 15
    read = {r["guard"]: r for r in gj.read_jsonl(root / "guard_s11_heldout.jsonl")}
    assert [read[g]["everyday_flagged"] for g in ("shipped", gj.S10, "pt-b-0.55-t-0.74")] == [19, 16, 12]
    assert gj.decide_s11(read[gj.S10], read["pt-b-0.55-t-0.74"]) == (True, [])
    probe = [r for r in gj.read_jsonl(root / "guard_s11_heldout.probe.jsonl") if r["label"] == "everyday"]
    assert sum(gj.flags(r, "pt-b-0.55-t-0.74") for r in probe) == 12  # the read's rows follow from its probe
