"""``GenerationConfig.no_repeat_ngram``: an answer never says the same n tokens twice, the prompt
is not counted, and every decoder (plain, batched engine, speculative) blocks the same tokens."""

from __future__ import annotations

import pytest
import torch

from lhama.inference.generate import GenerationConfig, next_token, repeated_ngram_ends
from tests.inference.agree import assert_every_decoder_agrees, greedy
from tests.inference.tiny import prompt_ids, tiny_decoder


def _has_repeat(tokens: list[int], n: int) -> bool:
    runs = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(runs)) < len(runs)


def test_the_banned_tokens_are_those_that_followed_the_last_n_minus_1_tokens_before() -> None:
    assert repeated_ngram_ends([7, 8, 9, 7, 8], 3) == [9]
    assert repeated_ngram_ends([7, 8, 9, 7, 8, 5, 7, 8], 3) == [5, 9]
    assert repeated_ngram_ends([7, 8, 9, 7], 3) == []  # (9, 7) never came before
    assert repeated_ngram_ends([4, 4], 2) == [4]
    assert repeated_ngram_ends([4], 2) == []


def test_the_prompt_is_not_counted_so_an_answer_may_quote_it() -> None:
    logits = torch.zeros(16)
    logits[9] = 5.0  # the favourite: it would repeat (7, 8, 9)
    sequence = torch.tensor([7, 8, 9, 7, 8])
    config = GenerationConfig(no_repeat_ngram=3)
    assert next_token(logits, sequence, config, None, answer_from=0) != 9  # all of it is the answer
    assert next_token(logits, sequence, config, None, answer_from=3) == 9  # (7, 8, 9) was the prompt's
    assert next_token(logits, sequence, GenerationConfig(), None) == 9  # off by default
    assert logits[9] == 5.0  # the caller's row is not changed


def test_a_looping_greedy_answer_is_cut_and_the_same_until_then() -> None:
    loaded = tiny_decoder(seed=0)
    ids = prompt_ids(0)
    plain = greedy(loaded, ids, GenerationConfig(max_new_tokens=60))
    assert _has_repeat(plain, 4)  # the random model loops: the case the setting is for
    blocked = greedy(loaded, ids, GenerationConfig(max_new_tokens=60, no_repeat_ngram=4))
    assert not _has_repeat(blocked, 4)
    first = next(i for i in range(4, len(plain) + 1) if _has_repeat(plain[:i], 4))  # where plain repeats
    assert blocked[: first - 1] == plain[: first - 1] and blocked[first - 1] != plain[first - 1]


def test_the_engine_and_speculative_decoding_block_exactly_as_generate_does() -> None:
    assert_every_decoder_agrees([GenerationConfig(max_new_tokens=n, no_repeat_ngram=k)
                                 for n, k in ((40, 3), (25, 4), (40, 0))])


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="no_repeat_ngram"):
        GenerationConfig(no_repeat_ngram=-1)
