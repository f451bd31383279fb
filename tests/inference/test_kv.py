from __future__ import annotations

import torch

from lhama.inference.generate import GenerationConfig, generate_ids
from lhama.inference.kv import KVState, media_for_suffix, shared_prefix
from lhama.serve.session import ChatSession
from tests.conftest import tiny_loaded
from tests.inference.tiny import prompt_ids, tiny_decoder

IMG = 9  # a placeholder id in the unit tests below


def test_the_shared_prefix_leaves_one_token_and_never_splits_a_placeholder_run() -> None:
    assert shared_prefix([5, 6, 7], [5, 6, 8, 9]) == 2
    assert shared_prefix([5, 6, 7], [5, 6, 7]) == 2  # the last prompt token is always computed
    assert shared_prefix([5, IMG, IMG, 1], [5, IMG, IMG, 2], keep={IMG}) == 3  # the run is whole
    assert shared_prefix([5, IMG, IMG, 7], [5, IMG, IMG, IMG, IMG], keep={IMG}) == 1  # run cut: back to its start
    assert shared_prefix([], [1, 2]) == 0


def test_the_suffix_gets_only_the_media_items_whose_placeholders_it_holds() -> None:
    images = torch.arange(3).reshape(3, 1)  # three items, two positions each
    ids = [1, IMG, IMG, 2, IMG, IMG, 3, IMG, IMG]
    assert media_for_suffix(ids, 6, {"image": images}, {"image": IMG})["image"].tolist() == [[2]]
    assert media_for_suffix(ids, 3, {"image": images}, {"image": IMG})["image"].tolist() == [[1], [2]]
    assert media_for_suffix(ids, 8 + 1, {"image": images}, {"image": IMG}) is None


def test_a_reused_state_gives_the_same_tokens_as_a_fresh_prefill() -> None:
    loaded = tiny_decoder(seed=0)
    config = GenerationConfig(max_new_tokens=12)
    first_prompt = prompt_ids(0, 20)
    state = KVState()
    answer = list(generate_ids(loaded.model, first_prompt, config, kv=state))
    follow_up = first_prompt + answer + prompt_ids(1, 240)  # the next turn extends the conversation
    assert len(state.ids) == len(first_prompt) + len(answer) - 1  # the last answer token was never fed
    reused = list(generate_ids(loaded.model, follow_up, config, kv=state))
    fresh = list(generate_ids(loaded.model, follow_up, config))
    assert reused == fresh and len(fresh) == 12
    assert state.capacity == 320  # the first static cache (64) was outgrown: grown, the prefix copied


def _tower_calls(loaded) -> list[int]:
    seen: list[int] = []
    loaded.model.vision_tower.register_forward_hook(lambda module, args, kwargs=None: seen.append(len(args[0])))
    return seen


def test_a_chat_turn_encodes_and_prefills_only_what_is_new() -> None:
    config = GenerationConfig(max_new_tokens=8)
    kept, fresh = ChatSession(tiny_loaded(), config), ChatSession(tiny_loaded(), config)
    kept_tower, fresh_tower = _tower_calls(kept.loaded), _tower_calls(fresh.loaded)
    answers = {}
    for session in (kept, fresh):
        turns = []
        for question in ("Descreva a imagem.", "E esta outra?"):
            session.pending_media["image"] = [torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(len(turns)))]
            if session is fresh:
                session.kv.reset()  # re-prefill the whole conversation, as before
            *_, done = session.ask(question)
            turns.append(done.token_ids)
        answers[id(session)] = turns
    assert answers[id(kept)] == answers[id(fresh)]
    assert kept_tower == [1, 1]  # turn 2: only the new image
    assert sum(fresh_tower) == 3  # turn 2 from scratch: both images (one per prefill chunk)
    kept.reset()
    assert kept.kv.ids == []
