"""benchmarks/spec_timing_s13_lookup.py: the committed rule that decides whether the prompt lookup becomes chat's
default draft, applied to made-up rows (no model), and the question set it reads."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "benchmarks"
_spec = importlib.util.spec_from_file_location("spec_timing_s13_lookup", BENCH / "spec_timing_s13_lookup.py")
timing = importlib.util.module_from_spec(_spec)
sys.modules["spec_timing_s13_lookup"] = timing
_spec.loader.exec_module(timing)


def _row(tokens: int, plain_s: float, lookup_s: float, same: bool = True, ttft: float = 0.5) -> dict:
    ids = list(range(tokens))
    return {"id": "q", "plain": {"ids": ids, "wall_s": plain_s, "ttft_s": ttft, "accepted": 0, "proposed": 0},
            "lookup": {"ids": ids if same else ids[:-1] + [-1], "wall_s": lookup_s, "ttft_s": ttft,
                       "accepted": 2, "proposed": 3}}


def test_a_faster_identical_lookup_on_enough_questions_becomes_the_default():
    rows = [_row(20, 3.0, 2.7) for _ in range(30)] + [_row(48, 6.0, 5.0) for _ in range(10)]
    found = timing.verdict(rows)
    assert found["lookup_becomes_default"] is True
    assert found["all"]["questions"] == 40 and found["short"]["questions"] == 30 and found["long"]["questions"] == 10
    assert found["short"]["x_wall"] == round(3.0 / 2.7, 3)
    assert found["all"]["acceptance"] == round(80 / 120, 3)


def test_one_differing_answer_voids_the_change():
    rows = [_row(20, 3.0, 2.7) for _ in range(39)] + [_row(20, 3.0, 2.7, same=False)]
    found = timing.verdict(rows)
    assert found["checks"]["identical"] is False and found["lookup_becomes_default"] is False


def test_short_answers_that_lose_keep_the_lookup_opt_in_even_when_the_total_gains():
    rows = [_row(20, 3.0, 3.1) for _ in range(30)] + [_row(48, 12.0, 8.0) for _ in range(10)]
    found = timing.verdict(rows)
    assert found["all"]["x_wall"] > 1.02
    assert found["checks"]["short_wall_1.00"] is False and found["lookup_becomes_default"] is False


def test_too_few_questions_decide_nothing():
    found = timing.verdict([_row(20, 3.0, 2.0) for _ in range(39)])
    assert found["checks"]["enough_questions"] is False and found["lookup_becomes_default"] is False


def test_the_questions_are_the_everyday_test_half_in_file_order():
    questions = timing.test_questions()
    assert len(questions) == 60
    assert questions[0] == ("q002", "Qual é o maior estado do Brasil em área?")
    assert [q for q, _ in questions] == sorted(q for q, _ in questions)
