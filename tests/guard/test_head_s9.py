"""Issue #29, ninth session (second part): the new training rows and the choice / ship rules of
benchmarks/guard_head_s9.py (no guard is run here)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_head_s9 as hs  # noqa: E402
from guard_dev_s7 import dev_split  # noqa: E402

DATA = Path(__file__).parents[2] / "data" / "guard"


def test_new_rows_are_the_negatives_and_the_dev_train_halves_only():
    rows = hs.new_rows()
    assert Counter(r["source"] for r in rows) == {
        "template-everyday-s9": 257, "template-everyday-s9-en": 95, "template-dev-s9": 60, "dev-s9-unsafe": 31,
        "template-dev-s7": 100, "dev-s7-unsafe": 51,
        "form-unsafe-s9": 96, "form-unsafe-s9-en": 40}
    texts = {r["text"] for r in rows}
    for d in (DATA / "dev_s9", DATA / "dev_s7"):
        everyday, unsafe = dev_split("eval", d)
        assert not texts & (set(everyday) | {t for _, t in unsafe})
    held = {x.split("\t")[-1].strip() for p in (DATA / "heldout_s10").glob("*.t*") for x in p.read_text().splitlines()}
    assert not texts & held


def _row(name, **kw):
    base = {"name": name, "eval_everyday_flagged": 6, "eval_unsafe_caught": 28, "s7e_unsafe_caught": 45,
            "s7e_everyday_flagged": 6, "benign_dev_flagged": 4, "dev_pt_caught": 60, "dev_en_caught": 88,
            "dev_pt_lookalikes_flagged": 8, "dev_en_lookalikes_flagged": 2, "train_phrase_caught": 8}
    return {**base, **kw}


def test_pick_needs_two_fewer_dev_eval_alarms_and_no_unsafe_lost():
    runs = [{"name": n, "oof_pt_recall": 0.80, "threshold": t} for n, t in (("a", 0.3), ("b", 0.3), ("c+tb", 0.2), ("d", 0.35))]
    scores = [_row("shipped"), _row("a", eval_everyday_flagged=4), _row("b", eval_everyday_flagged=2, dev_pt_caught=59),
              _row("c+tb", eval_everyday_flagged=0), _row("d", eval_everyday_flagged=5)]
    assert hs.pick_s9b(scores, runs) == "a"
    assert hs.pick_s9b(scores[:1] + scores[2:], runs) == "none"


def test_held_out_part_of_the_ship_rule():
    ref = {"everyday_flagged": 6, "caught": 80}
    assert hs.decide_s9b(ref, {"everyday_flagged": 4, "caught": 80}) == (True, [])
    assert not hs.decide_s9b(ref, {"everyday_flagged": 5, "caught": 80})[0]
    assert not hs.decide_s9b(ref, {"everyday_flagged": 0, "caught": 79})[0]
