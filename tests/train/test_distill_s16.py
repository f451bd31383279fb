"""benchmarks/distill_s16.py: the session-16 fresh held-out prompts (pinned before any model answered them),
apart from every training prompt, and the answer step's refusal to write outside /tmp/30a or quantise a model."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))  # distill_s16 reads distill_s15 (and it benchmarks/distill.py)
_spec = importlib.util.spec_from_file_location("distill_s16", BENCH / "distill_s16.py")
s16 = importlib.util.module_from_spec(_spec)
sys.modules["distill_s16"] = s16
_spec.loader.exec_module(s16)

FRESH_MD5 = "780639f87c6f52476ebd9dee7a542132"  # ids + texts of the 92 fresh prompts, committed with the rule


def test_the_fresh_set_is_the_committed_one_and_apart_from_training():
    rows = s16.prompts()
    assert len(rows) == 92 and {r["split"] for r in rows} == {"heldout"}
    assert hashlib.md5("\n".join(f"{r['id']}\t{r['prompt']}" for r in rows).encode()).hexdigest() == FRESH_MD5
    fresh = [s16.s15.fold(r["prompt"]) for r in rows]
    assert len(set(fresh)) == 92
    train = BENCH / "data" / "distill_s15_train.jsonl"
    asked = [s16.s15.fold(json.loads(line)["conversations"][1]["value"]) for line in train.read_text(encoding="utf-8").splitlines()]
    assert len(asked) == 102 and not any(s16.s15.near(f, a) for f in fresh for a in asked)


def test_answer_writes_only_under_tmp_30a_and_never_quantises_a_model(tmp_path):
    with pytest.raises(SystemExit, match="/tmp/30a/"):
        s16.answer(str(tmp_path), tmp_path / "out", 4, 8)
    with pytest.raises(SystemExit, match="no current int4-g32-grid-k\\+lossy6 cache"):
        s16.answer(str(tmp_path), Path("/tmp/30a/s16/test-never-written"), 4, 8)
    assert not Path("/tmp/30a/s16/test-never-written").exists()
