"""``GenerationConfig.repetition_scope``: the repetition penalty counts prompt and answer ("all",
as transformers does) or the answer's own tokens only ("answer"), and every decoder (plain,
batched engine, speculative) penalises the same tokens."""

from __future__ import annotations

import pytest
import torch

from lhama.inference.generate import GenerationConfig, generate_ids, next_token
from lhama.inference.speculative import Draft
from lhama.serve.engine import Engine, Prompt
from lhama.serve.settings import ServeSettings
from tests.inference.tiny import prompt_ids, tiny_decoder
from tests.serve.test_engine import run_together


def _greedy(loaded, ids: list[int], config: GenerationConfig, draft: Draft | None = None) -> list[int]:
    return list(generate_ids(loaded.model, ids, config, eos_ids=(2,), draft=draft))


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
    loaded, other = tiny_decoder(seed=0), tiny_decoder(seed=5)
    configs = [GenerationConfig(max_new_tokens=30, repetition_penalty=p, repetition_scope=s)
               for p, s in ((1.3, "answer"), (1.3, "all"), (1.0, "answer"))]
    prompts = [Prompt([], prompt_ids(seed)) for seed in range(3)]
    expected = [_greedy(loaded, p.input_ids, c) for p, c in zip(prompts, configs)]
    got = run_together(Engine(loaded, ServeSettings(max_batch=2)), prompts, configs)
    assert [c.token_ids for c in got] == expected
    for prompt, config, want in zip(prompts, configs, expected):
        assert _greedy(loaded, prompt.input_ids, config, Draft(other.model, 3)) == want
    # the scope matters on this model: the same prompt decodes differently under the two scopes
    same_prompt = [_greedy(loaded, prompts[0].input_ids, GenerationConfig(max_new_tokens=30, repetition_penalty=1.3,
                                                                          repetition_scope=s)) for s in ("all", "answer")]
    assert same_prompt[0] != same_prompt[1]
