"""Prompt lookup (lhama.inference.lookup) as a speculative draft: what it proposes, and answers that stay plain
greedy decoding's token for token."""

from __future__ import annotations

import pytest
import torch

from lhama.errors import ConfigError
from lhama.inference.generate import GenerationConfig, generate_ids
from lhama.inference.kv import KVState
from lhama.inference.quant import quantize_linears
from lhama.inference.lookup import Lookup
from lhama.inference.speculative import Draft, Pace, lookup_draft
from tests.inference.tiny import prompt_ids, tiny_decoder


def test_it_proposes_what_followed_the_latest_longest_match() -> None:
    ids = [5, 6, 7, 8, 9, 1, 6, 7, 3, 4, 5, 6, 7]
    # the last 3 ids (5, 6, 7) occurred at the start: what followed there
    assert Lookup(longest=4, shortest=2).propose(ids, 2) == [8, 9]
    # only pairs: (6, 7) occurred latest at 6-7, followed by 3, 4
    assert Lookup(longest=2, shortest=2).propose(ids, 2) == [3, 4]
    assert Lookup(longest=2, shortest=2).propose(ids, 1) == [3]


def test_no_match_proposes_nothing_and_a_proposal_stops_at_the_sequence_end() -> None:
    assert Lookup(longest=3, shortest=2).propose([1, 2, 3, 4, 5], 3) == []
    assert Lookup(longest=3, shortest=1).propose([1, 2, 3, 4, 5], 3) == []
    assert Lookup(longest=3, shortest=1).propose([9, 4, 9], 3) == [4, 9]  # 9 matched at 0; two ids follow
    assert Lookup().propose([1, 2, 1, 2], 0) == []


@pytest.mark.parametrize("longest,shortest", [(2, 3), (0, 0), (3, 0)])
def test_bad_sizes_are_one_line_errors(longest: int, shortest: int) -> None:
    with pytest.raises(ConfigError, match="shortest <= longest"):
        Lookup(longest=longest, shortest=shortest)


def test_a_draft_is_a_model_or_a_lookup() -> None:
    with pytest.raises(ConfigError, match="a model or a prompt lookup"):
        Draft(None)
    with pytest.raises(ConfigError, match="a model or a prompt lookup"):
        Draft(tiny_decoder(seed=1).model, lookup=Lookup())


@pytest.mark.parametrize("tokens", [1, 3])
@pytest.mark.parametrize("penalty", [1.0, 1.3])
def test_lookup_answers_are_exactly_the_greedy_answers(tokens: int, penalty: float) -> None:
    target = tiny_decoder(seed=0)
    config = GenerationConfig(max_new_tokens=40, repetition_penalty=penalty)
    proposed = 0
    for seed in range(3):
        ids = prompt_ids(seed, length=24)
        ids = ids + ids[:12]  # a prompt that repeats itself: the lookup finds matches
        draft = lookup_draft(tokens)
        plain = list(generate_ids(target.model, ids, config))
        assert list(generate_ids(target.model, ids, config, draft=draft)) == plain
        assert 0 <= draft.accepted <= draft.proposed
        proposed += draft.proposed
    assert proposed > 0, "the repeated prompts gave the lookup something to propose"


def test_a_copied_answer_is_mostly_kept() -> None:
    """A target that copies (its answer repeats ids of the prompt) gets the lookup's proposals kept."""
    target = tiny_decoder(seed=2)
    config = GenerationConfig(max_new_tokens=30)
    ids = prompt_ids(4, length=10)
    plain = list(generate_ids(target.model, ids, config))
    prompt = ids + plain + ids  # the same context again: the greedy answer is now in the prompt
    again = list(generate_ids(target.model, prompt, config))
    draft = lookup_draft(3, pace=Pace())
    assert list(generate_ids(target.model, prompt, config, draft=draft)) == again
    assert draft.proposed > 0 and draft.accepted >= 1


@pytest.mark.parametrize("quant", ["int8", "bf16"])  # fp32 checks are not one-row steps' bits (speculative.exact_checks)
@pytest.mark.parametrize("past_block", [61, 62, 63, 64])
def test_the_model_cache_is_the_size_plain_decoding_gives_it(past_block: int, quant: str) -> None:
    """Prompt + answer budget just short of a 64-position block: the lookup's checks must not grow the model's cache
    (the prefill and the lean step attend over the whole cache, and another size rounds rows otherwise), so the cache
    holds plain decoding's keys/values bit for bit."""
    target, budget = tiny_decoder(seed=0), 40
    quantize_linears(target.model.language_model, quant)
    base = prompt_ids(5, length=128 + past_block - budget - 12)
    ids = base + base[:12]  # a prompt that repeats itself: the lookup finds matches
    config = GenerationConfig(max_new_tokens=budget)
    plain_kv, drafted_kv, draft = KVState(), KVState(), lookup_draft(3)
    plain = list(generate_ids(target.model, ids, config, kv=plain_kv))
    assert list(generate_ids(target.model, ids, config, kv=drafted_kv, draft=draft)) == plain
    assert draft.proposed > 0
    assert drafted_kv.capacity == plain_kv.capacity
    held = min(len(plain_kv.ids), len(drafted_kv.ids))
    assert drafted_kv.ids[:held] == plain_kv.ids[:held]
    for mine, theirs in zip(drafted_kv.cache.layers, plain_kv.cache.layers):
        assert torch.equal(mine.keys[:, :, :held], theirs.keys[:, :, :held])
        assert torch.equal(mine.values[:, :, :held], theirs.values[:, :, :held])
