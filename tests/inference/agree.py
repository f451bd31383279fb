"""One check that every decoder picks a setting's tokens alike: plain ``generate_ids``, the serve
engine's batch and speculative decoding, on tiny random decoders (tests of decoding settings)."""

from __future__ import annotations

from lhama.inference.generate import GenerationConfig, generate_ids
from lhama.inference.speculative import Draft
from lhama.model.build import LoadedModel
from lhama.serve.engine import Engine, Prompt
from lhama.serve.settings import ServeSettings
from tests.inference.tiny import prompt_ids, tiny_decoder
from tests.serve.test_engine import run_together


def greedy(loaded: LoadedModel, ids: list[int], config: GenerationConfig, draft: Draft | None = None) -> list[int]:
    """``generate_ids``'s tokens for ``ids`` (EOS id 2)."""
    return list(generate_ids(loaded.model, ids, config, eos_ids=(2,), draft=draft))


def assert_every_decoder_agrees(configs: list[GenerationConfig]) -> None:
    """Three prompts, one per config: the engine (two rows at a time) and speculative decoding (a
    second tiny decoder drafting 3 tokens) give exactly ``generate_ids``'s tokens."""
    loaded, other = tiny_decoder(seed=0), tiny_decoder(seed=5)
    prompts = [Prompt([], prompt_ids(seed)) for seed in range(len(configs))]
    expected = [greedy(loaded, p.input_ids, c) for p, c in zip(prompts, configs)]
    got = run_together(Engine(loaded, ServeSettings(max_batch=2)), prompts, configs)
    assert [c.token_ids for c in got] == expected
    for prompt, config, want in zip(prompts, configs, expected):
        assert greedy(loaded, prompt.input_ids, config, Draft(other.model, 3)) == want
