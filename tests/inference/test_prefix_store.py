"""A conversation's opening keys/values kept on disk (lhama.inference.prefix_store): the answer is
the one a full prefill gives, the file is read back instead of prefilled, and a foreign, torn or
switched-off file is never trusted."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from rich.console import Console

import lhama.inference.prefix_store as prefix_store
from lhama.inference.generate import GenerationConfig
from lhama.inference.prefix_store import StoredPrefix, weights_key
from lhama.serve.session import ChatSession
from tests.conftest import tiny_loaded

QUESTION = "Qual é a capital do Brasil?"
CONFIG = GenerationConfig(max_new_tokens=8)


def answer(session: ChatSession, question: str = QUESTION) -> list[int]:
    *_, done = session.ask(question)
    return done.token_ids


def test_a_stored_opening_gives_the_answer_of_a_full_prefill_and_is_read_not_prefilled(tmp_path: Path, monkeypatch) -> None:
    loaded = tiny_loaded(image=None)
    whole = ChatSession(loaded, CONFIG)
    plain = answer(whole)  # the whole prompt prefilled at once
    store = StoredPrefix(tmp_path, weights_key(loaded.model))
    first = ChatSession(loaded, CONFIG, prefix=store)
    assert answer(first) == plain  # a miss: the opening is prefilled, stored, then the rest
    files = list(tmp_path.glob("prefix-*.safetensors"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))
    opening = first._opening()
    assert len(opening) >= prefix_store.MIN_STORED and first.kv.ids[: len(opening)] == opening

    def no_prefill(*args, **kwargs):
        raise AssertionError("the stored opening was prefilled again")

    monkeypatch.setattr(prefix_store, "prefill", no_prefill)
    second = ChatSession(loaded, CONFIG, prefix=store)
    assert answer(second) == plain  # a hit: keys/values from the file
    assert answer(ChatSession(loaded, CONFIG, prefix=store), "Me dê três dicas para dormir melhor.") == \
        answer(ChatSession(loaded, CONFIG), "Me dê três dicas para dormir melhor.")
    seeded = store.seed(loaded.model, opening)
    for stored, full in zip(seeded.cache.layers, whole.kv.cache.layers):
        assert torch.allclose(stored.keys[:, :, : len(opening)], full.keys[:, :, : len(opening)], atol=1e-5)
        assert torch.allclose(stored.values[:, :, : len(opening)], full.values[:, :, : len(opening)], atol=1e-5)


def test_a_lookup_draft_starts_from_the_stored_opening_with_the_same_answer(tmp_path: Path, monkeypatch) -> None:
    from lhama.inference.speculative import LOOKUP_TOKENS, lookup_draft

    loaded = tiny_loaded(image=None)
    store = StoredPrefix(tmp_path, weights_key(loaded.model))
    plain = answer(ChatSession(loaded, CONFIG, prefix=store))  # stores the opening
    monkeypatch.setattr(prefix_store, "prefill", lambda *a, **k: (_ for _ in ()).throw(AssertionError("prefilled again")))
    seeds = []
    seed = StoredPrefix.seed
    monkeypatch.setattr(StoredPrefix, "seed", lambda self, *a: seeds.append(a) or seed(self, *a))
    drafted = ChatSession(loaded, CONFIG, prefix=store, draft=lookup_draft(LOOKUP_TOKENS))
    assert answer(drafted) == plain
    assert len(seeds) == 1  # the conversation began from the stored opening (read, not prefilled)


def test_a_foreign_or_torn_file_is_ignored_and_written_again(tmp_path: Path) -> None:
    loaded = tiny_loaded(image=None)
    plain = answer(ChatSession(loaded, CONFIG))
    store = StoredPrefix(tmp_path, weights_key(loaded.model))
    opening = ChatSession(loaded, CONFIG)._opening()
    other = StoredPrefix(tmp_path / "other", "another-model")
    other.seed(loaded.model, opening)  # a valid file, for other weights
    (other.path(opening)).replace(store.path(opening))  # now under this model's name
    assert store._read(opening, loaded.model.language_model) is None
    assert answer(ChatSession(loaded, CONFIG, prefix=store)) == plain
    assert store._read(opening, loaded.model.language_model) is not None  # written again, for this model
    store.path(opening).write_bytes(b"\x00torn")
    assert answer(ChatSession(loaded, CONFIG, prefix=store)) == plain
    assert store._read(opening, loaded.model.language_model) is not None


def test_switched_off_or_short_openings_store_nothing(tmp_path: Path, monkeypatch) -> None:
    loaded = tiny_loaded(image=None)
    store = StoredPrefix(tmp_path, weights_key(loaded.model))
    monkeypatch.setenv("LHAMA_PREFIX_CACHE", "0")
    assert answer(ChatSession(loaded, CONFIG, prefix=store)) == answer(ChatSession(loaded, CONFIG))
    assert not list(tmp_path.iterdir())
    monkeypatch.delenv("LHAMA_PREFIX_CACHE")
    assert store.seed(loaded.model, [5, 6, 7]).ids == [] and not list(tmp_path.iterdir())


def test_the_weights_key_changes_with_the_weights() -> None:
    loaded = tiny_loaded(image=None)
    key = weights_key(loaded.model)
    assert key == weights_key(loaded.model) and key != weights_key(tiny_loaded(image=None, seed=1).model)
    with torch.no_grad():
        next(loaded.model.language_model.parameters()).reshape(-1)[-1] += 1.0
    assert weights_key(loaded.model) != key


@pytest.mark.parametrize("system", ["", "Responda em uma palavra."])
def test_the_opening_follows_the_sessions_system_prompt(tmp_path: Path, system: str) -> None:
    loaded = tiny_loaded(image=None)
    store = StoredPrefix(tmp_path, weights_key(loaded.model))
    plain = answer(ChatSession(loaded, CONFIG, system_prompt=system))
    assert answer(ChatSession(loaded, CONFIG, system_prompt=system, prefix=store)) == plain
    assert answer(ChatSession(loaded, CONFIG, system_prompt=system, prefix=store)) == plain


def test_chat_stores_its_opening_under_lhama_prefix_dir_not_the_home(tmp_path: Path, monkeypatch, capsys) -> None:
    from lhama.serve.terminal import ChatConfig, chat

    monkeypatch.setenv("LHAMA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LHAMA_PREFIX_DIR", str(tmp_path / "openings"))
    chat(ChatConfig("tiny", prompt="Olá", decoding={"max_new_tokens": 2}, guard=False),
         lambda model, quant: tiny_loaded(image=None), Console(file=io.StringIO()))
    assert capsys.readouterr().out.strip()  # answered
    assert len(list((tmp_path / "openings").glob("prefix-*.safetensors"))) == 1
    assert not (tmp_path / "home").exists()
    monkeypatch.delenv("LHAMA_PREFIX_DIR")
    assert prefix_store.store_dir() == tmp_path / "home" / "prefix-cache"
