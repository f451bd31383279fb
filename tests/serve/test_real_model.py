"""The real SmolLM2-135M-Instruct answering through the openai client (slow: real weights).

Run with: LHAMA_HOME=/tmp/lh python -m pytest tests/serve/test_real_model.py -m slow
"""

from __future__ import annotations

import pytest
from openai import OpenAI

from lhama.errors import LhamaError
from lhama.model.build import load_model
from lhama.weights.resolve import resolve
from lhama.serve.engine import Engine
from lhama.serve.settings import ServeSettings
from tests.serve.helpers import running


@pytest.mark.slow
def test_smollm2_answers_a_plain_question() -> None:
    try:
        model_dir = resolve("smollm2-135m-instruct", "smollm2-135m-instruct")
    except LhamaError as exc:
        pytest.skip(f"SmolLM2 is not prepared here: {exc}")
    loaded = load_model(model_dir)
    settings = ServeSettings(max_tokens_cap=32)
    with running(Engine(loaded, settings), settings) as url:
        reply = OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=300).chat.completions.create(
            model=loaded.name, max_tokens=16,
            messages=[{"role": "system", "content": "You are a helpful assistant."},
                      {"role": "user", "content": "What is the capital of France? Answer in one word."}])
    assert "Paris" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop" and reply.usage.completion_tokens < 16
