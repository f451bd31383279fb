"""Tool calling through a real server and the real ``openai`` client, on tiny Qwen2 models whose
answers are scripted (tests/serve/tool_model.py) and Qwen2.5's own chat template."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from lhama.serve.engine import Engine
from lhama.serve.settings import ServeSettings
from tests.serve.helpers import running
from tests.serve.test_app import client, post
from tests.serve.test_tools import UNITS, WEATHER
from tests.serve.tool_model import GENERATION_PROMPT, scripted_model

SETTINGS = ServeSettings(max_tokens_cap=64, default_max_tokens=8)
CALL = '<tool_call>\n{"name": "previsao_do_tempo", "arguments": {"cidade": "Recife"}}\n</tool_call>'
BROKEN = '<tool_call>\n{"name": "previsao_do_tempo", "arguments": {cidade: Recife}}\n</tool_call>'
ARGS = '"cidade": "Recife"}}\n</tool_call>'  # what follows a forced '... "arguments": {'
BROKEN_ARGS = 'cidade = Recife}}\n</tool_call>'
ASK = [{"role": "user", "content": "Vai chover em Recife amanhã?"}]
TOOLS = [WEATHER, UNITS]


def serve(script: dict[str, str]) -> Iterator[str]:
    loaded = scripted_model(script)
    loaded.name = "tiny-qwen"
    with running(Engine(loaded, SETTINGS), SETTINGS) as url:
        yield url


@pytest.fixture(scope="module")
def good() -> Iterator[str]:
    yield from serve({GENERATION_PROMPT: CALL, "{": ARGS})


@pytest.fixture(scope="module")
def fixable() -> Iterator[str]:
    yield from serve({GENERATION_PROMPT: BROKEN, "{": ARGS})


@pytest.fixture(scope="module")
def hopeless() -> Iterator[str]:
    yield from serve({GENERATION_PROMPT: BROKEN, "{": BROKEN_ARGS})


def ask(url: str, **fields):
    return client(url).chat.completions.create(model="tiny-qwen", messages=fields.pop("messages", ASK),
                                               tools=fields.pop("tools", TOOLS), **fields)


def test_auto_returns_a_parsed_call(good: str) -> None:
    choice = ask(good).choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "previsao_do_tempo" and call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"cidade": "Recife"}


def test_named_function_is_forced(good: str) -> None:
    reply = ask(good, tool_choice={"type": "function", "function": {"name": "previsao_do_tempo"}})
    assert json.loads(reply.choices[0].message.tool_calls[0].function.arguments) == {"cidade": "Recife"}
    assert reply.usage.completion_tokens == 2  # the scripted arguments and EOS: the name came from the prompt


def test_none_leaves_the_text_alone(good: str) -> None:
    choice = ask(good, tool_choice="none").choices[0]
    assert choice.message.tool_calls is None and choice.message.content == CALL and choice.finish_reason == "stop"


def test_streamed_call_adds_up_to_the_whole_one(good: str) -> None:
    chunks = list(ask(good, stream=True))
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or []) if c.choices]
    assert len(deltas) == 1 and deltas[0].index == 0 and deltas[0].function.name == "previsao_do_tempo"
    assert json.loads(deltas[0].function.arguments) == {"cidade": "Recife"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ""


def test_tool_results_are_fed_back(good: str) -> None:
    first = ask(good).choices[0].message
    messages = [*ASK, first.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": '{"chuva": "80%"}'}]
    again = ask(good, messages=messages)
    assert again.choices[0].message.tool_calls  # the scripted model calls again; the turn was accepted
    assert again.usage.prompt_tokens > ask(good).usage.prompt_tokens  # the call and its result are in the prompt


def test_invalid_json_is_retried_with_the_call_forced(fixable: str) -> None:
    [call] = ask(fixable).choices[0].message.tool_calls
    assert call.function.name == "previsao_do_tempo" and json.loads(call.function.arguments) == {"cidade": "Recife"}
    chunks = list(ask(fixable, stream=True))
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_unfixable_call_is_a_422_with_the_raw_text(hopeless: str) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        ask(hopeless)
    error = caught.value.body
    assert error["code"] == "tool_call_invalid" and "{cidade: Recife}" in error["message"]
    assert "after one retry" in error["message"]


@pytest.mark.parametrize("fields, param", [
    ({"tool_choice": "sempre"}, "tool_choice"),
    ({"tool_choice": {"type": "function", "function": {"name": "voar"}}}, "tool_choice.function.name"),
    ({"tools": [{"type": "function", "function": {"name": "tem espaço"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]},
     "tools[0].function.parameters"),
    ({"messages": [*ASK, {"role": "tool", "tool_call_id": "call_x", "content": "28 graus"}]}, "messages[1].tool_call_id"),
    ({"messages": [*ASK, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {
        "name": "previsao_do_tempo", "arguments": "{cidade"}}]}]}, "messages[1].tool_calls[0].function.arguments"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
])
def test_bad_tool_requests_are_400s_naming_the_field(good: str, fields: dict, param: str) -> None:
    body = {"model": "tiny-qwen", "messages": ASK, "tools": TOOLS, **fields}
    response = post(good, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_model_without_a_tools_template_is_a_400(server: str) -> None:
    response = post(server, {"model": "tiny-vlm", "messages": ASK, "tools": TOOLS})
    assert response.status_code == 400 and response.json()["error"]["code"] == "tools_unsupported"
    assert "has no tools section" in response.json()["error"]["message"]
