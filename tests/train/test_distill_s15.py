"""benchmarks/distill_s15.py: the session-15 rule's held-out split (pinned before any model answered it), its
numbers and verdicts on made-up rows (no model), and where it may write."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))  # distill_s15 reads benchmarks/distill.py's simulated_acceptance
_spec = importlib.util.spec_from_file_location("distill_s15", BENCH / "distill_s15.py")
s15 = importlib.util.module_from_spec(_spec)
sys.modules["distill_s15"] = s15
_spec.loader.exec_module(s15)

HELD_MD5 = "66a058892cc5d69fec0e1c61f09209c6"  # ids + texts of the 48 held-out prompts, committed with the rule


def test_the_held_out_split_is_the_committed_one_and_apart_from_training():
    rows = s15.prompts()
    held = [r for r in rows if r["split"] == "heldout"]
    assert len(rows) == 150 and len(held) == 48
    assert hashlib.md5("\n".join(f"{r['id']}\t{r['prompt']}" for r in held).encode()).hexdigest() == HELD_MD5
    train = {s15.fold(r["prompt"]) for r in rows if r["split"] == "train"}
    assert not train & {s15.fold(r["prompt"]) for r in held}
    assert len({s15.fold(r["prompt"]) for r in rows}) == 150


def test_near_texts_are_clashes_and_different_ones_are_not():
    assert s15.near(s15.fold("Por que o gelo flutua na água?"), s15.fold("por que o gelo flutua na agua"))
    assert s15.near(s15.fold("Como limpar o filtro do ar-condicionado?"), "como limpar o filtro do ar condicionado em casa")
    assert not s15.near(s15.fold("Como guardar o pão para durar mais?"), s15.fold("Qual é a capital do Brasil?"))


def _row(name: str, flags: list[str]) -> dict:
    return {"name": name, "per_text": [{"id": f"p{i}", "agree": f + "1", "loss": 0.5 * f.count("0") + 0.1, "tokens": len(f) + 1}
                                       for i, f in enumerate(flags)]}


def test_stats_count_proposals_as_speculative_decoding_does():
    # 7 answer tokens (the end token last), the draft right everywhere: the first token comes from the prompt's forward,
    # then 3 proposals kept + the target's token, then 3 proposed of which the 2 left are kept (the answer ends)
    found = s15.stats(_row("a", ["1111111"])["per_text"])
    assert found["a3"] == (5, 6) and found["a1"] == (3, 3) and found["top1"] == (7, 7)
    found = s15.stats(_row("b", ["1010101"])["per_text"])
    assert found["a1"][0] < found["a1"][1] and found["top1"] == (4, 7)


def test_the_verdicts_follow_the_interval(tmp_path):
    before = _row("0.5B", ["1101101101101101"] * 30)
    better = _row("distilled", ["1111111111111110"] * 30)
    results = tmp_path / "r.json"
    results.write_text(json.dumps([before, better]))
    found = s15.compare(results, "0.5B", "distilled")
    assert found["verdict_acceptance"] == "raised" and found["a3"]["after"] > found["a3"]["before"]
    assert found["verdict_ppl"] == "distilled beats original" and found["loss"]["ci95"][1] < 1
    results.write_text(json.dumps([before, _row("same", ["1101101101101101"] * 30)]))
    same = s15.compare(results, "0.5B", "same")
    assert same["verdict_acceptance"] == "no change shown" and same["verdict_ppl"] == "not shown"
    results.write_text(json.dumps([better, {**before, "name": "worse"}]))
    assert s15.compare(results, "distilled", "worse")["verdict_acceptance"] == "fell"


def test_outputs_go_only_under_tmp_30a(tmp_path):
    with pytest.raises(SystemExit, match="/tmp/30a/"):
        s15._mine(tmp_path / "x.json")
    assert str(s15._mine(Path("/tmp/30a/s15/x.json"))) == "/tmp/30a/s15/x.json"
