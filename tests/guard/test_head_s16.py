"""Issue #29, sixteenth session: the decisions reproduced from the committed logs (docs/results/guard_s16_*):
each fit's veto threshold met the out-of-fold bar, and pick_s16 on the dev log is "none" because no veto cleared
20 of the shipped guard's 76 dev everyday alarms, though none lost a dev catch."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_veto_s16 as g  # noqa: E402

from lhama.files import read_jsonl  # noqa: E402

RESULTS = Path(__file__).parents[2] / "docs" / "results"


def test_each_veto_threshold_loses_at_most_five_out_of_fold_catches():
    runs = {r["name"]: r for r in read_jsonl(RESULTS / "guard_s16_runs.jsonl")}
    assert {n: r["veto_threshold"] for n, r in runs.items()} == {"v3w6": 0.07, "v2w3": 0.13, "v3w3": 0.08}
    for r in runs.values():
        assert r["oof_shipped_caught"] - r["oof_vetoed_caught"] <= g.OOF_LOSS
        assert r["oof_vetoed_lookalikes"] <= r["oof_shipped_lookalikes"]  # a veto only removes flags


def test_pick_s16_is_none_on_the_dev_log_and_why():
    rows = read_jsonl(RESULTS / "guard_s16_dev.jsonl")
    latest = {r["name"]: r for r in rows}
    ref = latest["shipped"]
    assert (g.everyday(ref), g.caught(ref)) == (76, 392)
    assert {n: g.everyday(r) for n, r in latest.items()} == {"shipped": 76, "v3w6": 64, "v2w3": 58, "v3w3": 66}
    assert all(g.caught(r) == 392 for r in latest.values())  # no veto lost a dev catch
    for name in ("v3w6", "v2w3", "v3w3"):
        assert not g.eligible_s16(latest[name], ref)
        assert g.eligible_s16({**latest[name], "s15_everyday_flagged": 0, "eval_everyday_flagged": 0,
                               "s14_everyday_flagged": 0}, ref)  # only the everyday bars kept it out
    assert g.pick_s16(rows) == "none"
