from __future__ import annotations

import copy

import pytest
import torch

from lhama.errors import ModelError
from lhama.inference.generate import GenerationConfig, complete, generate_ids
from lhama.inference.speculative import Draft, check_same_tokenizer
from tests.conftest import tiny_loaded
from tests.inference.tiny import prompt_ids, tiny_decoder


def _greedy(loaded, ids, config, draft=None) -> list[int]:
    return list(generate_ids(loaded.model, ids, config, eos_ids=(2,), draft=draft))


@pytest.mark.parametrize(("tokens", "penalty"), [(1, 1.0), (4, 1.3)])
def test_speculative_decoding_gives_exactly_the_greedy_answer(tokens: int, penalty: float) -> None:
    target, other = tiny_decoder(seed=0), tiny_decoder(seed=5)  # a draft that often disagrees
    config = GenerationConfig(max_new_tokens=30, repetition_penalty=penalty)
    draft = Draft(other.model, tokens)
    for seed in range(2):
        ids = prompt_ids(seed)
        assert _greedy(target, ids, config, draft) == _greedy(target, ids, config)
    assert draft.proposed > 0 and 0 <= draft.accepted <= draft.proposed


def test_a_draft_equal_to_the_model_is_always_accepted() -> None:
    target = tiny_decoder(seed=3)
    draft = Draft(copy.deepcopy(target.model), tokens=4)
    config = GenerationConfig(max_new_tokens=21)
    got = _greedy(target, prompt_ids(1), config, draft)
    assert got == _greedy(target, prompt_ids(1), config)
    assert len(got) == 21
    assert draft.acceptance_rate == 1.0 and draft.proposed >= 16  # 4 per step, fewer at the end


def test_speculative_decoding_stops_at_eos_and_the_budget() -> None:
    target = tiny_decoder(seed=0)
    plain = _greedy(target, prompt_ids(2), GenerationConfig(max_new_tokens=12))
    eos = plain[5]  # pretend this token ends the turn
    draft = Draft(copy.deepcopy(target.model), tokens=4)
    got = list(generate_ids(target.model, prompt_ids(2), GenerationConfig(max_new_tokens=12), eos_ids=(eos,), draft=draft))
    assert got == plain[: plain.index(eos) + 1]
    for budget in (1, 2, 7):
        draft = Draft(copy.deepcopy(target.model), tokens=4)
        assert _greedy(target, prompt_ids(2), GenerationConfig(max_new_tokens=budget), draft) == plain[:budget]


def test_sampling_and_media_prompts_decode_without_the_draft() -> None:
    target = tiny_decoder(seed=0)
    draft = Draft(tiny_decoder(seed=5).model, tokens=3)
    config = GenerationConfig(max_new_tokens=10, temperature=0.8, seed=4)
    assert _greedy(target, prompt_ids(0), config, draft) == _greedy(target, prompt_ids(0), config)
    assert draft.proposed == 0


def test_complete_streams_the_same_text_with_a_draft() -> None:
    target = tiny_decoder(seed=0)
    config = GenerationConfig(max_new_tokens=16)
    plain = list(complete(target.model, target.tokenizer, prompt_ids(0), config))
    fast = list(complete(target.model, target.tokenizer, prompt_ids(0), config, draft=Draft(tiny_decoder(seed=7).model)))
    assert fast[-1].token_ids == plain[-1].token_ids and fast[-1].text == plain[-1].text


def test_a_draft_with_another_tokenizer_is_a_one_line_error() -> None:
    target, draft = tiny_decoder(seed=0), tiny_decoder(seed=1)
    check_same_tokenizer(tiny_loaded(), draft)  # the target's own <image> token aside, same vocabulary
    draft.tokenizer.add_tokens(["<outro>"])
    with pytest.raises(ModelError, match=r"another tokenizer .*'<outro>'.*pick a draft of the same family"):
        check_same_tokenizer(target, draft)
    assert torch.is_tensor(target.model.language_model.lm_head.weight)


def test_the_draft_prefills_once_per_answer_and_catches_up_on_its_cache() -> None:
    target, other = tiny_decoder(seed=0), tiny_decoder(seed=5)  # rejections: 1-row catch-ups
    draft = Draft(other.model, tokens=3, reads=0)  # the whole prompt (DRAFT_READS: its last 24 tokens)
    prefills, caches = [], set()
    forward = other.model.forward

    def counted(*args, **kwargs):
        prefills.append(args[0].shape[-1])
        caches.add(id(kwargs["past_key_values"]))
        return forward(*args, **kwargs)

    other.model.forward = counted
    config, ids = GenerationConfig(max_new_tokens=60), prompt_ids(0, length=40)
    got = list(generate_ids(target.model, ids, config, draft=draft))  # no end token: all 60
    assert got == list(generate_ids(target.model, ids, config)) and len(got) == 60
    assert prefills == [41] and len(caches) == 1  # the prompt + first token, once; 60 tokens later, same cache
    assert draft.proposed >= 30 and draft.accepted < draft.proposed
    turn = ids + got + prompt_ids(3, length=25)  # a next turn (as in a chat): a new prompt is prefilled,
    assert list(generate_ids(target.model, turn, config, draft=draft)) == list(generate_ids(target.model, turn, config))
    # in one forward, from the end of what the draft holds (it may lack the answer's last 1-2 tokens)
    assert len(prefills) == 2 and 25 + 1 <= prefills[1] <= 25 + 3


def test_an_unsure_draft_proposes_fewer_tokens_and_the_answer_stays_the_same() -> None:
    target, other = tiny_decoder(seed=0, sharpen=16), tiny_decoder(seed=5, sharpen=16)  # some sure tokens
    config, ids = GenerationConfig(max_new_tokens=60), prompt_ids(0, length=40)
    plain = list(generate_ids(target.model, ids, config))
    proposed = {}
    for confidence in (0.0, 0.5, 1.0):  # 1.0: no draft token is that sure, so no proposal at all
        draft = Draft(other.model, tokens=4, confidence=confidence)
        assert list(generate_ids(target.model, ids, config, draft=draft)) == plain
        proposed[confidence] = draft.proposed
    assert proposed[0.0] > proposed[0.5] > proposed[1.0] == 0  # each step then checks the model's own token alone
