"""A chat that starts from a reused prefix (the stored system-prompt opening, the previous turn) computes what a
full prefill computes, bit for bit.

Session 12 found one prompt on lhama-default whose greedy answer changed by one token when the opening's
keys/values came from the store (docs/default-model.md, "Session 13: the stored opening"). The opening's
keys/values were the same bits; the rows after it were not: PyTorch's CPU attention rounds a row differently
with another key length or another number of rows in the call. Session 13 made every prefill attend over the
whole static cache; session 14 found that still other bits where the cache sizes or the call's rows differ (1
of 12 questions on lhama-default, 4 of 12 two-turn chats on the 12-head model below). Prefills now run in
aligned chunks over a DynamicCache (:func:`lhama.inference.kv.chunk_ends`) and reuse whole chunks only, so the
reused rows are computed by the very call a fresh prefill makes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

import lhama.inference.kv as kv
import lhama.inference.prefix_store as prefix_store
from lhama.inference.generate import GenerationConfig
from lhama.inference.prefix_store import StoredPrefix, weights_key
from lhama.inference.quant import quantize_linears
from lhama.model.build import LoadedModel, compose
from lhama.serve.session import ChatSession
from tests.conftest import lhama_config, tiny_tokenizer

SYSTEM = "Você é o lhama, um assistente prestativo. Responda sempre em português do Brasil, de forma correta, clara e breve."
QUESTIONS = [
    "Qual é a capital do Brasil?",
    "Corrija a frase: eu vai na escola amanha de manha.",
    "Quanto é 7 vezes 8?",
    "Me dê três dicas para dormir melhor.",
    "O que é um adjetivo? Explique com exemplos e diga onde se usa.",
]
CONFIG = GenerationConfig(max_new_tokens=24)


def random_llama(hidden: int, mlp: int, heads: int, kv_heads: int, positions: int, seed: int = 0) -> LoadedModel:
    """A random 2-layer Llama with 128-wide attention heads (as Qwen2.5-1.5B's), int8 weights, bf16 activations."""
    torch.manual_seed(seed)
    config = LlamaConfig(hidden_size=hidden, intermediate_size=mlp, num_hidden_layers=2,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=128,
                         max_position_embeddings=positions, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    loaded = compose(lhama_config(image=None), AutoModelForCausalLM.from_config(config), tiny_tokenizer(), None)
    loaded.model.eval()
    quantize_linears(loaded.model.language_model, "int8")
    return loaded


def wide_heads(seed: int = 0) -> LoadedModel:
    """Two heads of 128, one key/value head."""
    return random_llama(256, 128, 2, 1, 1024, seed)


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    return wide_heads()


def run(loaded: LoadedModel, question: str, system: str, prefix: StoredPrefix | None) -> tuple[list[int], ChatSession]:
    session = ChatSession(loaded, CONFIG, system_prompt=system, prefix=prefix)
    *_, done = session.ask(question)
    return done.token_ids, session


def same_cache(a: ChatSession, b: ChatSession) -> bool:
    """Whether two sessions hold the same ids and the same bits for every key/value they hold."""
    n = len(a.kv.ids)
    return a.kv.ids == b.kv.ids and all(
        torch.equal(x.keys[:, :, :n], y.keys[:, :, :n]) and torch.equal(x.values[:, :, :n], y.values[:, :, :n])
        for x, y in zip(a.kv.cache.layers, b.kv.cache.layers))


@pytest.mark.parametrize("repeat", [1, 3])  # an opening of 91 ids, and of 259 (past 128 and 256 columns)
def test_the_stored_opening_answers_as_a_full_prefill_bit_for_bit(loaded: LoadedModel, tmp_path: Path, repeat: int) -> None:
    system = " ".join([SYSTEM] * repeat)
    store = StoredPrefix(tmp_path, weights_key(loaded.model))
    for index, question in enumerate(QUESTIONS):
        full, whole = run(loaded, question, system, None)
        stored, seeded = run(loaded, question, system, store)  # the first: prefilled and stored; then read
        opening = seeded._opening()
        assert len(opening) >= prefix_store.MIN_STORED and seeded.kv.ids[: len(opening)] == opening
        assert stored == full, question
        assert same_cache(whole, seeded), question  # the prompt's and the answer's keys/values, every bit
        assert len(list(tmp_path.glob("prefix-*.safetensors"))) == 1


def many_heads(seed: int = 0) -> LoadedModel:
    """Qwen2.5-1.5B's attention (12 heads of 128, 2 key/value heads): where one-call prefills rounded rows
    differently (session 14)."""
    return random_llama(1536, 256, 12, 2, 2048, seed)


@pytest.fixture(scope="module")
def wide() -> LoadedModel:
    return many_heads()


def second_turns(loaded: LoadedModel, repeats: tuple[int, ...], chunked: bool = True) -> list[tuple[int, bool, bool]]:
    """For consecutive question pairs: (held ids, same answer, same bits) of a chat's second turn (reusing the
    first turn's keys/values) against a new chat given the first turn as history (a fresh prefill)."""
    rows = []
    for repeat in repeats:
        system = " ".join([SYSTEM] * repeat)
        for first, second in zip(QUESTIONS, QUESTIONS[1:]):
            chat = ChatSession(loaded, CONFIG, system_prompt=system, kv=kv.KVState(chunked=chunked))
            for question in (first, second):
                *_, reused = chat.ask(question)
            fresh = ChatSession(loaded, CONFIG, system_prompt=system, history=list(chat.history[:2]),
                                kv=kv.KVState(chunked=chunked))
            *_, whole = fresh.ask(second)
            rows.append((len(chat.kv.ids), reused.token_ids == whole.token_ids, same_cache(chat, fresh)))
    return rows


def test_a_second_turn_holds_a_fresh_prefills_bits(wide: LoadedModel) -> None:
    rows = second_turns(wide, (1, 2, 3))  # conversations of 205 to 409 ids, caches of 256 to 448
    assert all(same_answer and same_bits for _, same_answer, same_bits in rows), rows


def test_the_stored_opening_on_the_12_head_model(wide: LoadedModel, tmp_path: Path) -> None:
    store = StoredPrefix(tmp_path, weights_key(wide.model))
    for question in QUESTIONS:
        full, whole = run(wide, question, SYSTEM, None)
        stored, seeded = run(wide, question, SYSTEM, store)
        assert stored == full and same_cache(whole, seeded), question


def test_one_call_prefills_gave_other_bits_there(wide: LoadedModel) -> None:
    """The checks above have teeth: prefilling what follows the whole shared run in one call over the whole static
    cache (session 13's prefill, still the scorer's) gives a second turn other bits for some conversation (3 of 4
    with 260 shared ids on the CPU this was written on: AVX2, torch 2.13)."""
    rows = second_turns(wide, (3,), chunked=False)  # one call over the whole static cache
    assert not all(same_bits for *_, same_bits in rows), rows


def test_a_prefill_records_where_its_calls_ended(loaded: LoadedModel) -> None:
    state = kv.KVState(chunked=True)
    kv.prefill(loaded.model, list(range(4, 74)), None, state, 10)  # 70 ids
    assert state.cuts == [32, 64] and state.capacity == 128 and len(state.ids) == 70
    assert kv.prepare(state, loaded.model.language_model, list(range(4, 74)) + [9], 10) == 64  # the last cut
    assert state.ids == list(range(4, 68)) and state.cuts == [32, 64]
    kv.rewind(state, 40)
    assert state.cuts == [32]


def test_the_cache_mask_of_a_one_call_prefill_reads_the_whole_cache_up_to_each_rows_position(loaded: LoadedModel) -> None:
    state = kv.KVState()
    kv.prepare(state, loaded.model.language_model, list(range(4, 70)), 10)
    mask = kv.cache_mask(state, loaded.model.language_model, 64, 3)
    assert state.capacity == 128 and mask.shape == (1, 1, 3, 128) and mask.dtype == torch.bool
    assert [int(row.sum()) for row in mask[0, 0]] == [65, 66, 67]
    assert bool(mask[0, 0, 0, 64]) and not bool(mask[0, 0, 0, 65])
    assert kv.cache_mask(kv.KVState(), loaded.model.language_model, 0, 3) is None  # no static cache: the model's own
