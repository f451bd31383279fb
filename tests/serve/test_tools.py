"""Tool calling as pure functions: checking tools and tool turns, rendering them through the
real Qwen2.5 chat template, and parsing scripted model outputs into calls."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from lhama.serve.errors import RequestError
from lhama.serve.schemas import ChatCompletionRequest
from lhama.serve.tools import (
    BARE_JSON, HERMES, ToolCallInvalid, ToolPlan, ToolStream, parse_reply, plan_tools, render_with_tools,
)
from tests.serve.tool_model import QWEN25_TEMPLATE, scripted_model

WEATHER = {"type": "function", "function": {
    "name": "previsao_do_tempo", "description": "Previsão do tempo de uma cidade",
    "parameters": {"type": "object", "properties": {"cidade": {"type": "string"}}, "required": ["cidade"]}}}
UNITS = {"type": "function", "function": {"name": "converter_unidade", "parameters": {"type": "object"}}}
AUTO = ToolPlan((WEATHER, UNITS), "auto", HERMES)
CALL = '<tool_call>\n{"name": "previsao_do_tempo", "arguments": {"cidade": "Recife"}}\n</tool_call>'


def request(**fields) -> ChatCompletionRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "Vai chover em Recife?"}], "tools": [WEATHER, UNITS]}
    return ChatCompletionRequest.model_validate({**body, **fields})


def plan(**fields) -> ToolPlan | None:
    return plan_tools(request(**fields), QWEN25_TEMPLATE, "m")


def test_parse_a_call_with_text_before_it() -> None:
    reply = parse_reply("Vou consultar.\n" + CALL, AUTO)
    assert reply.content == "Vou consultar."
    [call] = reply.calls
    assert call.name == "previsao_do_tempo" and json.loads(call.arguments) == {"cidade": "Recife"}
    assert call.id.startswith("call_")


def test_parse_two_calls_an_unclosed_one_and_no_call() -> None:
    second = '<tool_call>\n{"name": "converter_unidade", "arguments": "{\\"de\\": \\"km\\"}"}'  # string args, cut
    reply = parse_reply(CALL + "\n" + second, AUTO)
    assert [c.name for c in reply.calls] == ["previsao_do_tempo", "converter_unidade"]
    assert json.loads(reply.calls[1].arguments) == {"de": "km"} and reply.content is None
    assert parse_reply("Em Recife faz sol hoje.", AUTO) == parse_reply("Em Recife faz sol hoje.", AUTO)
    assert parse_reply("Em Recife faz sol hoje.", AUTO).calls == ()


@pytest.mark.parametrize("bad, reason", [
    ('<tool_call>\n{"name": "previsao_do_tempo", "arguments": {cidade: Recife}}</tool_call>', "not valid JSON"),
    ('<tool_call>\n{"name": "apagar_tudo", "arguments": {}}</tool_call>', "must name one of the tools"),
    ('<tool_call>\n{"name": "previsao_do_tempo", "arguments": [1]}</tool_call>', "not a JSON object"),
])
def test_unusable_calls_raise_with_the_raw_text(bad: str, reason: str) -> None:
    with pytest.raises(ToolCallInvalid, match=reason) as caught:
        parse_reply(bad, AUTO)
    assert caught.value.raw == bad and caught.value.status == 422


def test_forced_prefixes_and_the_retry_plan() -> None:
    named = replace(AUTO, choice="previsao_do_tempo")
    assert named.prefix == '<tool_call>\n{"name": "previsao_do_tempo", "arguments": {'
    reply = parse_reply(named.prefix + '"cidade": "Belém"}}\n</tool_call>', named)
    assert json.loads(reply.calls[0].arguments) == {"cidade": "Belém"}
    required = replace(AUTO, choice="required")
    assert parse_reply(required.prefix + 'converter_unidade", "arguments": {}}', required).calls[0].name == "converter_unidade"
    with pytest.raises(ToolCallInvalid, match="requires one"):
        parse_reply("Não sei.", required)
    assert AUTO.retry('<tool_call>{"name": "converter_unidade", "arguments": {de: km}}').choice == "converter_unidade"
    assert AUTO.retry("lixo").choice == "required"
    assert parse_reply(CALL, replace(AUTO, choice="none")).content == CALL  # none: text stays text


def test_bare_json_syntax() -> None:
    bare = replace(AUTO, syntax=BARE_JSON)
    reply = parse_reply(' {"name": "previsao_do_tempo", "parameters": {"cidade": "Natal"}}', bare)
    assert json.loads(reply.calls[0].arguments) == {"cidade": "Natal"}
    assert parse_reply("Faz sol.", bare).content == "Faz sol."


def test_stream_releases_text_and_holds_the_call() -> None:
    stream = ToolStream(AUTO)
    pieces = ["Vou", " consultar.\n<tool", "_call>\n{\"name\": \"previsao_do_tempo\", ", '"arguments": {}}\n</tool_call>']
    released = [stream.feed(p) for p in pieces]
    assert "".join(released) == "Vou consultar.\n" and released[2:] == ["", ""]
    assert stream.finish().calls[0].name == "previsao_do_tempo"
    plain = ToolStream(AUTO)
    assert plain.feed("Menor <") == "Menor " and plain.feed(" maior") == "< maior"
    assert plain.finish().content is None


def test_plan_reads_tool_choice() -> None:
    assert plan().choice == "auto" and plan().names == ("previsao_do_tempo", "converter_unidade")
    assert plan(tool_choice={"type": "function", "function": {"name": "converter_unidade"}}).choice == "converter_unidade"
    assert plan(tool_choice="required").syntax is HERMES
    assert plan(tools=None) is None


@pytest.mark.parametrize("fields, param", [
    ({"tool_choice": {"type": "function", "function": {"name": "voar"}}}, "tool_choice.function.name"),
    ({"tools": None, "tool_choice": "required"}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]},
     "tools[0].function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "required": ["x"]}}}]},
     "tools[0].function.parameters.required"),
    ({"tools": [WEATHER, WEATHER]}, "tools"),
    ({"messages": [{"role": "user", "content": "oi"}, {"role": "tool", "content": "28 graus", "tool_call_id": "x"}]},
     "messages[1].tool_call_id"),
])
def test_plan_errors_name_the_field(fields: dict, param: str) -> None:
    with pytest.raises(RequestError) as caught:
        plan(**fields)
    assert caught.value.param == param and caught.value.status == 400


def test_template_without_tools_is_a_clear_error() -> None:
    chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    with pytest.raises(RequestError, match="has no tools section") as caught:
        plan_tools(request(), chatml, "tiny")
    assert caught.value.param == "tools"
    assert plan_tools(request(tools=None), chatml, "tiny") is None  # no tools: nothing to check


def test_render_through_the_models_template() -> None:
    tokenizer = scripted_model({}).tokenizer
    messages = [
        {"role": "user", "content": "Vai chover em Recife?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "previsao_do_tempo", "arguments": {"cidade": "Recife"}}}]},
        {"role": "tool", "content": '{"chuva": "70%"}', "tool_call_id": "c1"},
    ]
    text = render_with_tools(tokenizer, messages, replace(AUTO, choice="converter_unidade"))
    assert '"previsao_do_tempo"' in text.split("\n</tools>")[0].split("<tools>\n")[1]  # the tools section
    assert '<tool_call>\n{"name": "previsao_do_tempo", "arguments": {"cidade": "Recife"}}\n</tool_call>' in text
    assert '<tool_response>\n{"chuva": "70%"}\n</tool_response>' in text
    assert text.endswith('<|im_start|>assistant\n<tool_call>\n{"name": "converter_unidade", "arguments": {')
    assert "# Tools" not in render_with_tools(tokenizer, messages, replace(AUTO, choice="none"))


def test_untagged_calls_of_small_models() -> None:
    """A whole answer that is one JSON object naming an offered function is a call, bare or fenced."""
    bare = '{\n  "name": "previsao_do_tempo",\n  "arguments": {"cidade": "Natal"}\n}'
    for text in (bare, f"```json\n{bare}\n```", f"```\n{bare}"):
        [call] = parse_reply(text, AUTO).calls
        assert call.name == "previsao_do_tempo" and json.loads(call.arguments) == {"cidade": "Natal"}
    assert parse_reply('{"nome": "Ana", "idade": 30}', AUTO).content == '{"nome": "Ana", "idade": 30}'
    prose = f"Aqui está:\n```json\n{bare}\n```"  # a call inside prose is not a call
    assert parse_reply(prose, AUTO).calls == () and parse_reply(prose, AUTO).content == prose
    with pytest.raises(ToolCallInvalid):
        parse_reply('{"name": "previsao_do_tempo", "arguments": {cidade}}', AUTO)


def test_stream_holds_an_answer_that_opens_with_json() -> None:
    stream = ToolStream(AUTO)
    released = [stream.feed(p) for p in ["``", "`json\n{\"name\": \"converter_unidade\", ", '"arguments": {}}\n```']]
    assert released == ["", "", ""] and stream.finish().calls[0].name == "converter_unidade"
    text = ToolStream(AUTO)
    assert text.feed(" ") == "" and text.feed("Claro") == " Claro"
