"""benchmarks/spec_sim_s11.py: the short-answer pace rule on made-up dev data (no model): a draft that costs more than
it saves on short answers is kept out of them by a late start, and a base it cannot beat stays."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up; spec_sim_s11 imports spec_sim_s10
    spec.loader.exec_module(module)
    return module


s10 = _load("spec_sim_s10")
s11 = _load("spec_sim_s11")

MS = {"target|seq1": 100.0, "target|seq2": 115.0, "target|seq3": 130.0, "target|seq4": 145.0,
      "draft|seq1": 30.0, "draft|seq2": 33.0, "draft|seq3": 36.0,
      **{f"target|prefill|{n}": 200.0 + 5 * n for n in (32, 64, 128)},
      **{f"draft|prefill|{n}": 60.0 + 1.5 * n for n in (8, 24, 48, 96, 160)},
      **{f"draft|resume{r}": 40.0 + 2 * r for r in (3, 5, 9, 17)}}


def _dev(short_flags: list[int], long_flags: list[int]) -> dict:
    prompt = lambda pid, flags: {"id": pid, "prompt_tokens": 60, "answer": list(range(len(flags))),  # noqa: E731
                                 "flags": {r: flags for r in ("12", "24", "48", "0")}}
    return {"ms": MS, "prompts": [prompt(f"s{i}", short_flags) for i in range(3)]
            + [prompt(f"l{i}", long_flags) for i in range(3)] + [prompt("copy-0", long_flags)]}


def test_a_draft_rejected_on_short_answers_stops_where_long_answers_keep_it_busy():
    dev = _dev([0] * 11, [1] * 48)  # short answers: every proposal rejected; long ones: every proposal kept
    found = s11.choose(dev, s10.Candidate())
    assert found["base"]["hard"]["worst_short"] < 0.75  # the base pays its prefill + 5 rejected checks on 11 tokens
    chosen = found["chosen"]  # a late start would cost the long answers more than 0.01: a stop rule instead
    assert (chosen.start, chosen.below, chosen.window, chosen.rest) == (0, 0.5, 2, 10_000)
    assert found["pick_result"]["hard"]["worst_short"] >= found["base"]["hard"]["worst_short"] + 0.02
    assert found["pick_result"]["hard"]["long_geo"] == pytest.approx(found["base"]["hard"]["long_geo"])


def test_a_draft_that_barely_pays_on_long_answers_joins_after_the_short_ones():
    dev = _dev([0] * 11, [1, 1, 0] * 16)  # long answers: 2 of 3 kept, about break-even in the "hard" costs
    found = s11.choose(dev, s10.Candidate())
    chosen = found["chosen"]
    assert chosen.start >= 12 and chosen.reads == 24 and chosen.grow == 1  # joins after the 11-token answers
    ratios = s10.evaluate(dev, chosen, s10.Costs(MS, s10.HARD))["ratios"]
    assert ratios[:3] == pytest.approx([1.0] * 3)  # short answers decode plainly: exactly plain's cost
    assert found["pick_result"]["hard"]["long_geo"] >= found["base"]["hard"]["long_geo"] - 0.01


def test_the_base_stays_when_nothing_beats_it_on_short_answers():
    dev = _dev([1] * 11, [1] * 48)  # every proposal kept: the draft already pays on short answers
    found = s11.choose(dev, s10.Candidate())
    assert found["chosen"] == s10.Candidate()
    assert found["base"]["hard"]["worst_short"] > 1.0


def test_candidates_keep_the_base_reads_and_proposals():
    base = s11.parse_base("12,0,0,4,8,2,4")
    pool = s11.candidates(base)
    assert len(pool) == len(s11.STARTS) * len(s11.RESTS)
    assert {(c.reads, c.grow, c.streak) for c in pool} == {(12, 2, 4)}
    assert {c.start for c in pool} == set(s11.STARTS)


join = _load("spec_sim_s11_join")


def _join_file(dev: dict) -> dict:
    """Join flags equal to the base's at every drafted position (a draft that reads at its join agrees as often)."""
    rows = [{"id": p["id"], "flags": {str(s): [None] * max(s, 1) + p["flags"]["24"][max(s, 1):]
                                      for s in join.STARTS if s < len(p["answer"])}} for p in dev["prompts"]]
    return {"reads": 24, "starts": list(join.STARTS), "prompts": rows}


def test_reading_at_the_join_costs_a_late_draft_only_its_first_reads_plus_one():
    dev = _dev([0] * 11, [1, 1, 0] * 16)
    found = _join_file(dev)
    join.check_join_file(dev, found)
    costs = s10.Costs(MS)
    base = join.evaluate(dev, found, s10.Candidate(), costs, False)
    assert join.evaluate(dev, found, s10.Candidate(), costs, True)["ratios"] == pytest.approx(base["ratios"])
    late = s10.Candidate(start=32)
    at_join, prompt_end = join.evaluate(dev, found, late, costs, True), join.evaluate(dev, found, late, costs, False)
    # a long answer: the same walk, the first prefill 24 + 1 tokens instead of 24 + 32
    ms = lambda r: (costs.target_prefill(60) + 47 * costs.t1) / r  # noqa: E731
    assert ms(prompt_end["ratios"][3]) - ms(at_join["ratios"][3]) == pytest.approx(
        costs.draft_prefill(56) - costs.draft_prefill(25))
    assert at_join["ratios"][:3] == pytest.approx([1.0] * 3)


def test_a_join_file_that_reads_otherwise_at_the_first_token_is_refused():
    dev = _dev([0] * 11, [1, 1, 0] * 16)
    found = _join_file(dev)
    found["prompts"][2]["flags"]["0"][5] = 1
    with pytest.raises(SystemExit, match="s2: joining at the first token"):
        join.check_join_file(dev, found)
