"""A request that leaves temperature, top_p, repetition_penalty, seed or stop out decodes with
the model's own settings (its lhama_generation.json), not with fixed API defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx2
import pytest

from lhama.data.conversation import encode_prompt, render_prompt, stop_strings
from lhama.inference.generate import Completion, GenerationConfig, complete
from lhama.model.build import LoadedModel, load_model, save_model
from lhama.serve.engine import Engine
from lhama.serve.prompt import Target, generation_config
from lhama.serve.schemas import ChatCompletionRequest
from tests.conftest import tiny_loaded
from tests.serve.conftest import SETTINGS
from tests.serve.helpers import running

QUESTION = [{"role": "user", "content": "Qual é a capital do Brasil?"}]
# Unlike the API's former fixed defaults (greedy, top_p 1.0, no repetition penalty, no seed or stops).
OWN = GenerationConfig(temperature=0.9, top_p=0.8, repetition_penalty=1.5, seed=7, stop=("zzz",))


@pytest.fixture(scope="module")
def sampler(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """A tiny LM saved with OWN as its lhama_generation.json and loaded back, as `lhama serve` does."""
    built = tiny_loaded(image=None)
    directory = save_model(dataclasses.replace(built, generation=OWN), tmp_path_factory.mktemp("models") / "sampler")
    assert (Path(directory) / "lhama_generation.json").is_file()
    return load_model(directory)


def request(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "sampler", "messages": QUESTION, **fields})


def answer(loaded: LoadedModel, config: GenerationConfig) -> Completion:
    """What lhama.inference.generate.complete answers to QUESTION with ``config``."""
    rendered = [{"role": "system", "content": loaded.generation.system_prompt}, *QUESTION]
    ids = encode_prompt(loaded.tokenizer, render_prompt(loaded.tokenizer, rendered), loaded.expansions())
    *_, done = complete(loaded.model, loaded.tokenizer, ids, config)
    return done


def test_left_out_fields_are_the_models_and_given_ones_win(sampler: LoadedModel) -> None:
    assert sampler.generation == OWN  # the saved file was read back
    target = Target(sampler, "sampler", SETTINGS)
    own = generation_config(request(), target)
    assert (own.temperature, own.top_p, own.repetition_penalty, own.seed) == (0.9, 0.8, 1.5, 7)
    assert own.stop == ("zzz", *stop_strings(sampler.tokenizer))
    given = generation_config(request(temperature=0, top_p=1.0, repetition_penalty=1.0, seed=1, stop="FIM"), target)
    assert (given.temperature, given.top_p, given.repetition_penalty, given.seed) == (0.0, 1.0, 1.0, 1)
    assert given.stop == ("FIM", *stop_strings(sampler.tokenizer))  # the request's stops replace the model's


def test_a_request_without_sampling_fields_decodes_with_the_models_settings(sampler: LoadedModel) -> None:
    stops = OWN.stop + stop_strings(sampler.tokenizer)
    expected = answer(sampler, dataclasses.replace(OWN, max_new_tokens=10, stop=stops))
    greedy = answer(sampler, GenerationConfig(max_new_tokens=10, stop=stop_strings(sampler.tokenizer)))
    assert expected.text != greedy.text  # the two settings do tell apart on this model
    with running(Engine(sampler, SETTINGS), SETTINGS) as url:
        url = f"{url}/v1/chat/completions"
        plain = httpx2.post(url, json={"model": "sampler", "messages": QUESTION, "max_tokens": 10}, timeout=60)
        old = httpx2.post(url, json={"model": "sampler", "messages": QUESTION, "max_tokens": 10, "temperature": 0,
                                     "top_p": 1.0, "repetition_penalty": 1.0}, timeout=60)
    assert plain.status_code == 200, plain.text
    assert plain.json()["choices"][0]["message"]["content"] == expected.text
    assert old.json()["choices"][0]["message"]["content"] == greedy.text  # given fields still override
