"""The serving engine's batched decoding runs a quantised model too (bf16 activations, packed
weights): each request gets a complete, well-formed answer. Batching changes the rounding of a
bf16 row, so agreement with solo decoding is checked, not bit-equality."""

from __future__ import annotations

from lhama.inference.generate import GenerationConfig
from lhama.inference.quant import quantize_linears
from lhama.serve.engine import Engine, Prompt
from lhama.serve.settings import ServeSettings
from tests.inference.tiny import prompt_ids, tiny_decoder
from tests.serve.test_engine import run_together, solo


def test_the_engine_batches_requests_on_an_int8_model() -> None:
    loaded = tiny_decoder(seed=0)
    quantize_linears(loaded.model.language_model, "int8")
    prompts = [Prompt([], prompt_ids(seed, 8 + 3 * seed)) for seed in range(3)]
    configs = [GenerationConfig(max_new_tokens=n) for n in (12, 5, 9)]
    got = run_together(Engine(loaded, ServeSettings(max_batch=3)), prompts, configs)
    for prompt, config, completion in zip(prompts, configs, got):
        want = solo(loaded, prompt.input_ids, config)
        assert len(completion.token_ids) == len(want) == config.max_new_tokens
        assert completion.token_ids[:3] == want[:3]
