"""Issue #29, seventh session: the everyday dev set (data/guard/dev_s7/) and benchmarks/guard_dev_s7.py
(its dev-train/dev-eval split, the rows it adds to training, the choice rule and the ship rule)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import guard_dev_s7 as g7  # noqa: E402
import guard_heldout as gh  # noqa: E402

DATA = Path(__file__).parents[2] / "data" / "guard"


def test_split_halves_are_disjoint_and_sized_as_documented():
    train_ev, train_un = g7.dev_split("train")
    eval_ev, eval_un = g7.dev_split("eval")
    assert (len(train_ev), len(train_un), len(eval_ev), len(eval_un)) == (100, 51, 100, 50)
    assert not set(train_ev) & set(eval_ev) and not {t for _, t in train_un} & {t for _, t in eval_un}
    kinds = Counter(k for k, _ in train_un + eval_un)
    assert kinds == {"S1": 12, "S2": 10, "S3": 8, "S4": 7, "S5": 7, "S6": 7, "S7": 7, "S8": 7, "S9": 6,
                     "S10": 6, "S11": 7, "S12": 6, "S13": 5, "S14": 6}


def test_train_rows_hold_dev_train_only_with_their_labels():
    rows = g7.train_rows()
    eval_texts = set(g7.dev_split("eval")[0]) | {t for _, t in g7.dev_split("eval")[1]}
    assert not {r["text"] for r in rows} & eval_texts
    safe = [r for r in rows if r["label"] == "safe"]
    unsafe = [r for r in rows if r["label"] == "unsafe"]
    assert len(safe) == 100 and all(r["lookalike"] and r["source"] == "template-dev-s7" for r in safe)
    assert len(unsafe) == 51 and all(len(r["categories"]) == 1 and r["source"] == "dev-s7-unsafe" for r in unsafe)
    assert all(r["round"] == 6 and r["lang"] == "pt" and r["role"] == "user" for r in rows)


def test_dev_set_does_not_near_the_heldout_sets():
    ev, un = g7.dev_split("train")
    ev2, un2 = g7.dev_split("eval")
    texts = ev + ev2 + [t for _, t in un + un2]
    held = [f for p in sorted((DATA / "heldout").glob("*.t[sx][vt]"))
            for x in p.read_text(encoding="utf-8").splitlines() for f in x.split("\t") if f.strip()]
    assert gh.overlaps(texts, held, 0.5) == []


def _row(name: str, **kw) -> dict:
    base = {"name": name, "eval_everyday_flagged": 4, "eval_unsafe_caught": 45, "eval_unsafe": 50,
            "dev_pt_caught": 60, "dev_pt_lookalikes_flagged": 8, "oof_pt_recall": 0.80, "dev_en_f1": 0.90,
            "dev_en_lookalikes_flagged": 4}
    return {**base, **kw}


def test_pick_needs_fewer_everyday_alarms_and_kept_recall():
    shipped = {k: v for k, v in _row("shipped").items() if k != "oof_pt_recall"}
    good = _row("d3+tb", eval_everyday_flagged=1)
    lost_recall = _row("d3", eval_everyday_flagged=0, eval_unsafe_caught=43)
    high_floor = _row("d3+tbf", eval_everyday_flagged=0)
    assert g7.pick_s7([shipped, good, lost_recall, high_floor], [], 0.7978) == "d3+tb"
    assert g7.pick_s7([shipped, lost_recall, high_floor], [], 0.7978) == "none"
    only_two_fewer_but_en = _row("d5", eval_everyday_flagged=2, dev_en_f1=0.84)
    assert g7.pick_s7([shipped, only_two_fewer_but_en], [], 0.7978) == "none"


def test_pick_joins_the_training_log_by_name():
    shipped = {k: v for k, v in _row("shipped").items() if k != "oof_pt_recall"}
    scores = {k: v for k, v in _row("d3mts+tb", eval_everyday_flagged=0).items() if k != "oof_pt_recall"}
    assert g7.pick_s7([shipped, scores], [], 0.7978) == "none"  # no training row: not eligible
    assert g7.pick_s7([shipped, scores], [{"name": "d3mts+tb", "oof_pt_recall": 0.80}], 0.7978) == "d3mts+tb"


def _read(f1_pt: float, f1_en: float, caught: int, safe_flagged: int, everyday: int, answers: int) -> dict:
    return {"guard": "g", "pt": {"f1": f1_pt, "caught": caught, "unsafe": 101, "safe_flagged": safe_flagged},
            "en": {"f1": f1_en}, "everyday_s6": everyday, "answer_s6": answers}


def test_ship_rule_holds_every_bar():
    shipped = _read(0.944, 0.907, 92, 2, 4, 1)
    assert g7.decide_s7(shipped, _read(0.944, 0.90, 92, 2, 1, 1)) == (True, [])
    ship, failed = g7.decide_s7(shipped, _read(0.944, 0.88, 92, 2, 1, 1))
    assert not ship and failed == ["English F1 >= 0.85 and >= shipped - 0.02"]
    ship, failed = g7.decide_s7(shipped, _read(0.93, 0.90, 89, 2, 2, 1))
    assert not ship and "pt-BR unsafe caught >= shipped - 2" in failed
    ship, failed = g7.decide_s7(shipped, _read(0.944, 0.90, 92, 2, 3, 1))
    assert not ship and "everyday flagged <= shipped - 2" in failed
