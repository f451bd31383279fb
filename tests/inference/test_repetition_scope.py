"""``GenerationConfig.repetition_scope``: the repetition penalty counts prompt and answer ("all",
as transformers does) or the answer's own tokens only ("answer"), and every decoder (plain,
batched engine, speculative) penalises the same tokens."""

from __future__ import annotations

import pytest
import torch

from lhama.inference.generate import GenerationConfig, next_token
from tests.inference.agree import assert_every_decoder_agrees, greedy
from tests.inference.tiny import prompt_ids, tiny_decoder


def test_answer_scope_leaves_prompt_tokens_free_and_still_penalises_the_answer() -> None:
    logits = torch.zeros(16)
    logits[9], logits[4] = 2.0, 1.9  # 9 is the favourite by a little; 2.0 / 1.5 < 1.9
    prompt_only = torch.tensor([9, 5, 6, 7])  # 9 said by the prompt, not by the answer (answer_from=3)
    all_scope = GenerationConfig(repetition_penalty=1.5)
    answer_scope = GenerationConfig(repetition_penalty=1.5, repetition_scope="answer")
    assert next_token(logits, prompt_only, all_scope, None, answer_from=3) == 4
    assert next_token(logits, prompt_only, answer_scope, None, answer_from=3) == 9
    in_answer = torch.tensor([5, 6, 9])  # now the answer itself said 9
    assert next_token(logits, in_answer, answer_scope, None, answer_from=2) == 4
    assert logits[9] == 2.0  # the caller's row is not changed


def test_the_default_scope_is_the_whole_sequence() -> None:
    assert GenerationConfig().repetition_scope == "all"
    with pytest.raises(ValueError, match="repetition_scope"):
        GenerationConfig(repetition_scope="prompt")


def test_the_engine_and_speculative_decoding_penalise_exactly_as_generate_does() -> None:
    assert_every_decoder_agrees([GenerationConfig(max_new_tokens=30, repetition_penalty=p, repetition_scope=s)
                                 for p, s in ((1.3, "answer"), (1.3, "all"), (1.0, "answer"))])
    # the scope matters on this model: the same prompt decodes differently under the two scopes
    loaded = tiny_decoder(seed=0)
    same_prompt = [greedy(loaded, prompt_ids(0), GenerationConfig(max_new_tokens=30, repetition_penalty=1.3,
                                                                   repetition_scope=s)) for s in ("all", "answer")]
    assert same_prompt[0] != same_prompt[1]
