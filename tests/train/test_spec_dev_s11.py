"""benchmarks/spec_dev_s11.py: the join flags are what speculative_ids' draft proposes when it reads the last N tokens
before it joins (tiny random models; every proposal of a k = 1 walk checked against the flags)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from lhama.inference import speculative
from lhama.inference.generate import GenerationConfig, generate_ids
from lhama.inference.speculative import Draft, Pace
from tests.inference.tiny import prompt_ids, tiny_decoder
from tests.train.test_distill_acceptance import noisy_copy

BENCH = Path(__file__).parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
_SPEC = importlib.util.spec_from_file_location("spec_dev_s11", BENCH / "spec_dev_s11.py")
dev = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(dev)


@pytest.mark.parametrize("start", [0, 4, 12])
def test_join_flags_are_the_library_draft_s_proposals(start: int, monkeypatch) -> None:
    target = tiny_decoder(seed=0)
    other = noisy_copy(target, 0.15, seed=1)  # agrees in part
    ids, config = prompt_ids(3, length=30), GenerationConfig(max_new_tokens=30)
    answer = list(generate_ids(target.model, ids, config))
    seen, propose = [], speculative._propose

    def recorded(draft, sequence, count, pick, end):
        proposal = propose(draft, sequence, count, pick, end)
        seen.append((len(sequence) - len(ids), proposal[0]))  # the answer position it proposes for, and its token
        return proposal

    monkeypatch.setattr(speculative, "_propose", recorded)
    draft = Draft(other.model, 1, pace=Pace(start=start), reads=8, reads_at_join=True)
    assert list(generate_ids(target.model, ids, config, draft=draft)) == answer
    flags = dev.join_flags(other, ids, answer, 8, start)
    assert flags[:max(start, 1)] == [None] * max(start, 1) and len(flags) == len(answer)
    assert len(seen) >= 5 and {j for j, _ in seen} <= set(range(max(start, 1), len(answer)))
    assert [int(token == answer[j]) for j, token in seen] == [flags[j] for j, _ in seen]
    assert 0 < sum(flags[j] for j, _ in seen) < len(seen)  # a draft that agrees in part: the test can tell
