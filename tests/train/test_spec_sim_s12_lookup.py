"""benchmarks/spec_sim_s12_lookup.py: the prompt-lookup walk on made-up costs (no model): an answer that copies its
prompt is proposed and kept, costing checks instead of steps; an answer with nothing to match costs plain decoding."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from lhama.inference.lookup import Lookup

BENCH = Path(__file__).parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


s10 = _load("spec_sim_s10")
s12 = _load("spec_sim_s12_lookup")

MS = {"target|seq1": 100.0, "target|seq2": 115.0, "target|seq3": 130.0, "target|seq4": 145.0,
      **{f"target|prefill|{n}": 200.0 + 5 * n for n in (32, 64, 128)},
      **{f"draft|prefill|{n}": 60.0 + 1.5 * n for n in (8, 24, 48, 96, 160)}}


def test_a_copied_answer_is_proposed_and_kept() -> None:
    costs = s10.Costs(MS)
    text = list(range(10, 40))
    prompt, answer = [1, 2, *text, 3], text[:20]  # the answer copies 20 ids of the prompt
    t, kept, proposed = s12.walk(prompt, answer, 2, Lookup(4, 2), costs)
    # the first id comes from the prefill, the second by a plain step (one id: no pair to match yet); from then on
    # every proposal of 2 is kept (3 ids per 3-row check)
    assert proposed == kept == 12
    assert t == pytest.approx(costs.target_prefill(len(prompt)) + 100.0 + 6 * 130.0)


def test_an_answer_with_nothing_to_match_costs_plain_decoding() -> None:
    costs = s10.Costs(MS, hard=1.35)
    prompt, answer = list(range(100, 140)), list(range(10, 40))
    plain = costs.target_prefill(len(prompt)) + (len(answer) - 1) * costs.t1
    assert s12.walk(prompt, answer, 3, Lookup(4, 1), costs) == (pytest.approx(plain), 0, 0)


def test_a_wrong_proposal_costs_its_check() -> None:
    costs = s10.Costs(MS, hard=1.35)
    prompt, answer = [5, 6, 7, 8, 9, 5, 6], [1, 2, 3]  # "5 6" matched at the start: 7, 8 proposed, never kept
    t, kept, proposed = s12.walk(prompt, answer, 2, Lookup(2, 2), costs)
    assert (kept, proposed) == (0, 0)  # the context ends "6, 1" then "1, 2": no pair of the answer occurs before
    prompt = [5, 6, 7, 8, 9, 1]
    # after "4" (no match: a plain step), "9" matches the prompt's 9: its next ids 1, 4 are proposed; 1 is kept, 4 is
    # not (the model's own 2 instead): a 3-row check that gave 2 ids
    t, kept, proposed = s12.walk(prompt, [4, 9, 1, 2], 2, Lookup(2, 1), costs)
    assert (kept, proposed) == (1, 2)
    assert t == pytest.approx(costs.target_prefill(len(prompt)) + 100.0 + (100.0 + 1.35 * 30.0))
