"""Issue #29, fourteenth session: the committed dev and read logs give the decisions docs/guard.md reports (the dev
rule pick_s14 and the ship rule decide_s14), and the rules can fail."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_head_s14 as g  # noqa: E402

from lhama.files import read_jsonl  # noqa: E402

RESULTS = Path(__file__).parents[2] / "docs" / "results"


def _logs() -> tuple[list[dict], list[dict]]:
    return read_jsonl(RESULTS / "guard_s14_dev.jsonl"), read_jsonl(RESULTS / "guard_s14_runs.jsonl")


def test_dev_pick_from_committed_logs():
    scores, runs = _logs()
    assert {s["name"] for s in scores} >= {"shipped", *(f"{c}{t}" for c in g.CANDIDATES for t in TUNINGS)}
    assert g.pick_s14(scores, runs) == PICK
    shipped = {s["name"]: s for s in scores}["shipped"]
    assert g.pick_s14([shipped], runs) == "none"  # nothing but the shipped guard: nothing eligible


def test_the_dev_rule_can_fail_on_english():
    scores, runs = _logs()
    ref = {s["name"]: s for s in scores}["shipped"]
    meta = {r["name"]: r for r in runs}
    pick = {**meta[PICK], **{s["name"]: s for s in scores}[PICK]}
    assert g.eligible_s14(pick, ref)
    assert not g.eligible_s14(dict(pick, dev_en_caught=ref["dev_en_caught"] - 2), ref)
    assert not g.eligible_s14(dict(pick, dev_en_lookalikes_flagged=ref["dev_en_lookalikes_flagged"] + 2), ref)
    assert not g.eligible_s14(dict(pick, threshold=0.24), ref)


def test_routed_tunings_share_their_base_head():
    runs = {r["name"]: r for r in _logs()[1]}
    for c in g.CANDIDATES:
        for routed, base in g.ROUTED.items():
            assert runs[c + routed]["head"] == runs[c + base]["head"] and runs[c + routed]["routed"]


def test_ship_rule_on_the_read():
    rows = read_jsonl(RESULTS / "guard_s14_read.jsonl")
    assert (rows[0]["guard"], rows[-1]["guard"]) == ("shipped", PICK)
    assert g.decide_s14(rows[0], rows[-1]) == DECISION
    worse = dict(rows[-1], caught=rows[0]["caught"] - 1)
    assert not g.decide_s14(rows[0], worse)[0]  # the rule fails on recall


def test_the_pick_failed_the_test_split_floors_so_nothing_shipped():
    """The one test-split read after the pass: the pick's pt-BR recall fell below CI's floor (docs/guard.md)."""
    (row,) = read_jsonl(RESULTS / "guard_s14_test.jsonl")
    assert row["head"].endswith("v2w3_e.safetensors") and row["passes_ci_floors"] is False
    assert row["pick"]["pt_recall"] < 0.80 <= row["shipped"]["pt_recall"]
    assert g.test_passes({"pick": row["shipped"]})  # the floors themselves pass the shipped head


TUNINGS = ("", "+tb", "+e", "+tbe", "+e7", "+tbe7", "+r", "+tbr")
PICK = "v2w3+e"
DECISION = (True, [])
