"""PrefixCache: a prompt sharing leading ids with the previous one prefills only the rest, and
gets the logits and keys/values of a full prefill; media placeholders are never reused."""

from __future__ import annotations

import torch

from lhama.inference.batch import DecodeBatch
from lhama.inference.generate import GenerationConfig
from lhama.inference.prefix import MIN_REUSE, PrefixCache
from lhama.serve.engine import Engine, Prompt
from lhama.serve.settings import ServeSettings
from tests.inference.tiny import prompt_ids, tiny_decoder
from tests.serve.test_engine import run_together

SYSTEM = prompt_ids(7, 24)  # the shared start, longer than MIN_REUSE


@torch.inference_mode()
def _full(model, ids: list[int]):
    return model(torch.tensor([ids]), use_cache=True, past_key_values=DecodeBatch.empty_cache(), logits_to_keep=1)


@torch.inference_mode()
def test_a_shared_prefix_is_reused_with_the_full_prefills_numbers() -> None:
    model = tiny_decoder(seed=1).model
    prefix = PrefixCache()
    first, second = SYSTEM + prompt_ids(1, 6), SYSTEM + prompt_ids(2, 9)
    prefix.prefill(model, first, None)
    assert prefix.reused == 0
    got = prefix.prefill(model, second, None)
    assert prefix.reused == len(SYSTEM)
    want = _full(model, second)
    torch.testing.assert_close(got.logits, want.logits, atol=1e-5, rtol=0)
    for a, b in zip(got.past_key_values.layers, want.past_key_values.layers):
        assert a.keys.shape == b.keys.shape == (1, 2, len(second), 16)
        torch.testing.assert_close(a.keys, b.keys, atol=1e-5, rtol=0)
        torch.testing.assert_close(a.values, b.values, atol=1e-5, rtol=0)
    prefix.prefill(model, second, None)  # the same prompt again: all but its last id
    assert prefix.reused == len(second) - 1


def test_short_runs_media_placeholders_and_the_switch_are_not_reused(monkeypatch) -> None:
    model = tiny_decoder(seed=1).model
    prefix = PrefixCache()
    prefix.prefill(model, SYSTEM + [5, 6], None)
    assert prefix._reusable(SYSTEM[: MIN_REUSE - 1] + [9, 9], set()) == 0  # too short a run
    image = 100
    assert prefix._reusable(SYSTEM[:20] + [image, image] + [9], {image}) == 20
    assert prefix._reusable(SYSTEM[:20] + [9], {SYSTEM[3]}) == 0  # a placeholder at 3: nothing before it to reuse
    monkeypatch.setenv("LHAMA_PREFIX_CACHE", "0")
    assert prefix._reusable(SYSTEM + [9], set()) == 0


def test_the_engine_answers_the_same_with_and_without_reuse(monkeypatch) -> None:
    loaded = tiny_decoder(seed=0)
    prompts = [Prompt([], SYSTEM + prompt_ids(seed, 3 + 2 * seed)) for seed in range(4)]
    configs = [GenerationConfig(max_new_tokens=n) for n in (10, 4, 8, 6)]
    answers = {}
    for switch in ("0", "1"):
        monkeypatch.setenv("LHAMA_PREFIX_CACHE", switch)
        engine = Engine(loaded, ServeSettings(max_batch=4))
        answers[switch] = [c.token_ids for c in run_together(engine, prompts, configs)]
        assert engine._prefix.reused == (len(SYSTEM) if switch == "1" else 0)
    assert answers["1"] == answers["0"] and [len(a) for a in answers["1"]] == [10, 4, 8, 6]
