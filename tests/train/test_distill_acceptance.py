"""benchmarks/distill.py's draft acceptance read from teacher forcing equals what lhama's
speculative decoding counts when it runs (tiny random models, a draft that agrees only in part)."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch

from lhama.inference.generate import GenerationConfig
from lhama.inference.speculative import Turn, draft_for, speculative_ids
from tests.inference.tiny import prompt_ids, tiny_decoder

_SPEC = importlib.util.spec_from_file_location("distill_bench", Path(__file__).parents[2] / "benchmarks" / "distill.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def noisy_copy(loaded, scale: float, seed: int):
    """``loaded`` with Gaussian noise (``scale`` x each matrix's std) on every weight: a draft that
    often, not always, picks the same token."""
    draft = copy.deepcopy(loaded)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight in draft.model.language_model.parameters():
            weight.add_(torch.randn(weight.shape, generator=generator) * weight.std() * scale)
    return draft


def agreement(draft, ids: list[int], answer: list[int]) -> str:
    """"1"/"0" per answer token: the draft's argmax given the prompt and the answer's prefix."""
    with torch.no_grad():
        logits = draft.model.language_model(input_ids=torch.tensor([ids + answer])).logits[0]
    picks = logits[len(ids) - 1 : len(ids) + len(answer) - 1].argmax(-1).tolist()
    return "".join("1" if p == a else "0" for p, a in zip(picks, answer, strict=True))


@pytest.mark.parametrize(("scale", "budget", "eos"), [(0.3, 24, ()), (0.6, 17, ()), (0.3, 30, "second"), (0.0, 11, ())])
def test_simulated_acceptance_counts_what_speculative_decoding_counts(scale, budget, eos):
    target = tiny_decoder(seed=3)
    draft_model = noisy_copy(target, scale, seed=int(scale * 10) + budget)
    ids = prompt_ids(5)
    config = GenerationConfig(max_new_tokens=budget)
    plain = list(speculative_ids(target.model, draft_for(target, target), Turn(ids, config)))  # draft = model: greedy
    eos_ids = (plain[len(plain) // 2],) if eos else ()  # a token of the answer as the end token: the answer stops there
    draft = draft_for(target, draft_model, 3)  # simulated_acceptance's default: the accept measure's 3 per step
    answer = list(speculative_ids(target.model, draft, Turn(ids, config, eos_ids)))
    assert answer == plain[: len(answer)]  # exact greedy output, whatever the draft
    flags = agreement(draft_model, ids, answer)
    assert bench.simulated_acceptance(flags + "0", budget=budget) == (draft.accepted, draft.proposed)
    if scale == 0.0:
        assert draft.accepted == draft.proposed > 0
    elif scale == 0.3 and not eos:
        assert 0 < draft.accepted < draft.proposed  # the case that matters: some proposals rejected


def test_simulated_acceptance_by_hand():
    assert bench.simulated_acceptance("1111" + "\n") == (3, 3)  # one step: 3 proposals kept, the end token among them
    assert bench.simulated_acceptance("0000" + "\n") == (0, 9)  # three steps, each keeps only the model's own token
    assert bench.simulated_acceptance("1" * 60 + "0") == (35, 35)  # 48-token budget: 11 full steps, then 2 proposals
