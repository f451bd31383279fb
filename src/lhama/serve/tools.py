"""Tool calling: OpenAI ``tools`` / ``tool_choice`` checked, rendered through the model's own
chat template, and the model's answer parsed back into ``tool_calls``.

Templates in the Hermes / Qwen2.5 style list the tools in the system turn and expect a call as
``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``; other templates with a tools
section (Llama 3.1 style) expect a bare JSON object. ``tool_choice`` "required" or a named
function is enforced by starting the answer with the call's opening text (a forced prefix), so
the model can only complete a call. Nothing here runs the model.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from pydantic import TypeAdapter, ValidationError

from lhama.errors import ConfigError
from lhama.serve.errors import RequestError
from lhama.serve.schemas import ChatCompletionRequest, ChatMessage, Tool

_NAME = re.compile(r'"name"\s*:\s*"([A-Za-z0-9_-]{1,64})"')


@dataclass(frozen=True)
class ToolSyntax:
    """How a template writes one call: text around its JSON object."""

    open: str
    close: str


HERMES = ToolSyntax("<tool_call>\n", "\n</tool_call>")  # Qwen2.5, Hermes, many fine-tunes
BARE_JSON = ToolSyntax("", "")  # Llama 3.1 style: the whole answer is one JSON object


@dataclass(frozen=True)
class ToolPlan:
    """The tools of one request as the template receives them, and how the answer may use them."""

    tools: tuple[dict, ...]  # OpenAI tool objects ({"type": "function", "function": {...}})
    choice: str  # "auto", "none", "required" or the name of the function that must be called
    syntax: ToolSyntax = HERMES

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t["function"]["name"] for t in self.tools)

    @property
    def prefix(self) -> str:
        """The forced start of the answer: none for auto/none; the call's opening for
        "required"; the call up to its arguments' opening brace for a named function."""
        if self.choice in ("auto", "none"):
            return ""
        if self.choice == "required":
            return self.syntax.open + '{"name": "'
        return self.syntax.open + '{"name": ' + json.dumps(self.choice) + ', "arguments": {'

    def retry(self, raw: str) -> ToolPlan:
        """The plan for one more try after ``raw`` was not a valid call: the function it named
        (or the named choice) forced, so only the arguments are left to the model."""
        found = _NAME.search(raw)
        if found and found.group(1) in self.names:
            return replace(self, choice=found.group(1))
        return self if self.choice not in ("auto", "required") else replace(self, choice="required")


@dataclass(frozen=True)
class ToolCallOut:
    id: str
    name: str
    arguments: str  # a JSON object, as text


@dataclass(frozen=True)
class ToolReply:
    """A parsed answer: its text outside calls (None when empty) and its calls in order."""

    content: str | None
    calls: tuple[ToolCallOut, ...] = ()


class ToolCallInvalid(RequestError):
    """The model wrote a call that is not valid JSON or names no offered function. Not a
    client error and not a bug: answered with the model's raw text, never a 500."""

    status = 422
    type = "invalid_model_output"

    def __init__(self, reason: str, raw: str) -> None:
        shown = raw if len(raw) <= 2000 else raw[:2000] + "..."
        super().__init__(f"the model's tool call is not usable ({reason}); its raw text: {shown!r}",
                         None, "tool_call_invalid")
        self.reason, self.raw = reason, raw


def plan_tools(request: ChatCompletionRequest, template: str | None, model_id: str) -> ToolPlan | None:
    """Check ``tools``, ``tool_choice`` and the tool turns of ``request`` against the model's
    chat template; None when the request uses no tools at all.

    Raises:
        RequestError: malformed tool schemas, an unknown named function, a tool message that
        answers no earlier call, or a template without a tools section (param names the field).
    """
    history = any(m.role == "tool" or m.tool_calls for m in request.messages)
    if not request.tools:
        if request.tool_choice not in (None, "none", "auto"):
            raise RequestError("needs 'tools': give the functions the model may call", "tool_choice", "invalid_value")
        if not history:
            return None
    _check_tool_turns(request.messages)
    if not template or "tool" not in template:
        raise RequestError(f"the chat template of the model {model_id!r} has no tools section, so it cannot call "
                           "tools; serve a model whose template has one (Qwen2.5 instruct models do)",
                           "tools", "tools_unsupported")
    tools = tuple(_checked_tool(t, i) for i, t in enumerate(request.tools or ()))
    syntax = HERMES if "<tool_call>" in template else BARE_JSON
    return ToolPlan(tools, _choice(request, [t["function"]["name"] for t in tools]), syntax)


def _checked_tool(tool: Tool, index: int) -> dict:
    """The tool as a plain dict; its ``parameters`` must be a JSON Schema object."""
    field = f"tools[{index}].function.parameters"
    parameters = tool.function.parameters
    if parameters is not None:
        if parameters.get("type", "object") != "object":
            raise RequestError("must be a JSON Schema with type 'object'", field, "invalid_value")
        properties = parameters.get("properties", {})
        if not isinstance(properties, dict) or not all(isinstance(p, dict) for p in properties.values()):
            raise RequestError("'properties' must map each argument name to a schema object",
                               f"{field}.properties", "invalid_value")
        required = parameters.get("required", [])
        if not isinstance(required, list) or any(r not in properties for r in required):
            raise RequestError("'required' must list names defined in 'properties'", f"{field}.required",
                               "invalid_value")
    return tool.model_dump(exclude_none=True)


def _choice(request: ChatCompletionRequest, names: list[str]) -> str:
    if len(set(names)) != len(names):
        raise RequestError("two tools have the same function name", "tools", "invalid_value")
    choice = request.tool_choice
    if choice is None:
        return "auto" if names else "none"
    if isinstance(choice, str):
        return choice
    if choice.function.name not in names:
        raise RequestError(f"names {choice.function.name!r}, which is not one of the tools ({', '.join(names)})",
                           "tool_choice.function.name", "invalid_value")
    return choice.function.name


def _check_tool_turns(messages: Sequence[ChatMessage]) -> None:
    """Calls only in assistant turns; each tool message answers a call made before it."""
    called: set[str] = set()
    for i, message in enumerate(messages):
        if message.tool_calls and message.role != "assistant":
            raise RequestError("only assistant messages carry tool_calls", f"messages[{i}].tool_calls", "invalid_value")
        called.update(call.id for call in message.tool_calls or ())
        if message.role == "tool" and message.tool_call_id not in called:
            raise RequestError(f"the tool message answers {message.tool_call_id!r}, but no earlier assistant "
                               "message made a call with that id", f"messages[{i}].tool_call_id", "invalid_value")


def template_message(message: ChatMessage, rendered: dict, index: int) -> dict:
    """``rendered`` ({"role", "content"}) with the tool fields the chat template reads: an
    assistant's calls with their arguments as objects, a tool message's call id."""
    if message.role == "tool":
        return {**rendered, "tool_call_id": message.tool_call_id}
    calls = []
    for j, call in enumerate(message.tool_calls or ()):
        field = f"messages[{index}].tool_calls[{j}].function.arguments"
        calls.append({"id": call.id, "type": "function",
                      "function": {"name": call.function.name, "arguments": _arguments(call.function.arguments, field)}})
    return {**rendered, "tool_calls": calls} if calls else rendered


def _arguments(text: str, field: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(f"is not valid JSON ({exc.msg} at character {exc.pos})", field, "invalid_value") from None
    if not isinstance(value, dict):
        raise RequestError("must be a JSON object", field, "invalid_value")
    return value


def guard_view(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The conversation as the guard reads it: tool results are input, like a user's words."""
    return [{"role": "user" if m["role"] == "tool" else m["role"], "content": m["content"]} for m in messages]


def render_with_tools(tokenizer: Any, messages: Sequence[Mapping[str, Any]], plan: ToolPlan) -> str:
    """The prompt text: the model's chat template given the tools (none for choice "none"),
    ending where the answer starts, plus the plan's forced prefix.

    Raises:
        RequestError: the template refused the conversation.
    """
    tools = list(plan.tools) if plan.choice != "none" and plan.tools else None
    try:
        text = tokenizer.apply_chat_template(list(messages), tools=tools, add_generation_prompt=True, tokenize=False)
    except TemplateError as exc:
        raise RequestError(f"the model's chat template rejected the conversation: {exc}", "messages",
                           "invalid_value") from None
    return text + plan.prefix


def parse_reply(text: str, plan: ToolPlan) -> ToolReply:
    """The calls in ``text`` (the forced prefix plus what the model wrote) and the rest as content.

    Raises:
        ToolCallInvalid: a call that is not a JSON object with an offered ``name`` and object
        ``arguments`` (or one missing when the plan requires a call).
    """
    if plan.choice == "none":
        return ToolReply(text.strip() or None)
    spans = _call_spans(text, plan.syntax)
    loose = None if spans else _untagged_call(text, plan)
    if loose is not None:
        return ToolReply(None, (_call(loose, plan, text),))
    calls = tuple(_call(text[start:end], plan, text) for start, end, _ in spans)
    if plan.choice != "auto" and not calls:
        raise ToolCallInvalid("no call, but tool_choice requires one", text)
    content, last = [], 0
    for start, _, outer_end in spans:
        content.append(text[last:_outer_start(text, start, plan.syntax)])
        last = outer_end
    content.append(text[last:])
    return ToolReply("".join(content).strip() or None, calls)


def _call_spans(text: str, syntax: ToolSyntax) -> list[tuple[int, int, int]]:
    """(JSON start, JSON end, end of the call's closing text) of each call in ``text``."""
    if syntax is BARE_JSON or not syntax.open:
        stripped = text.lstrip()
        if not stripped.startswith("{"):
            return []
        start = len(text) - len(stripped)
        return [(start, len(text.rstrip()), len(text))]
    opener, closer = syntax.open.strip(), syntax.close.strip()
    spans, at = [], text.find(opener)
    while at >= 0:
        start = at + len(opener)
        end = text.find(closer, start)
        stop = len(text) if end < 0 else end
        spans.append((start, stop, len(text) if end < 0 else end + len(closer)))
        at = text.find(opener, stop)
    return spans


def _untagged_call(text: str, plan: ToolPlan) -> str | None:
    """A call written without the template's tags, as small models often do: the whole answer is
    one JSON object (bare or in a ``` fence) that names an offered function. None otherwise."""
    body = text.strip()
    if body.startswith("```"):
        body = body[3:].removeprefix("json").strip().removesuffix("```").strip()
    found = _NAME.search(body) if body.startswith("{") else None
    return body if found and found.group(1) in plan.names else None


def _outer_start(text: str, json_start: int, syntax: ToolSyntax) -> int:
    opener = syntax.open.strip()
    return text.rfind(opener, 0, json_start) if opener else json_start


def _call(block: str, plan: ToolPlan, raw: str) -> ToolCallOut:
    try:
        value, _ = json.JSONDecoder().raw_decode(block.strip())
    except json.JSONDecodeError as exc:
        raise ToolCallInvalid(f"not valid JSON: {exc.msg}", raw) from None
    if not isinstance(value, dict) or value.get("name") not in plan.names:
        raise ToolCallInvalid(f"it must name one of the tools ({', '.join(plan.names)})", raw)
    if plan.choice not in ("auto", "required") and value["name"] != plan.choice:
        raise ToolCallInvalid(f"tool_choice asks for {plan.choice!r}", raw)
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            raise ToolCallInvalid("its arguments are not valid JSON", raw) from None
    if not isinstance(arguments, dict):
        raise ToolCallInvalid("its arguments are not a JSON object", raw)
    return ToolCallOut(f"call_{uuid.uuid4().hex[:24]}", value["name"], json.dumps(arguments, ensure_ascii=False))


class ToolStream:
    """Splits an answer streamed as text deltas into content that can be sent at once and the
    text of tool calls, which is held back until the answer is complete (a call is only known
    to be valid when it is whole)."""

    def __init__(self, plan: ToolPlan) -> None:
        self.plan = plan
        self.text = plan.prefix
        self.sent = 0  # characters of ``text`` released as content
        self.holding = bool(plan.prefix)

    def feed(self, delta: str) -> str:
        """Content that is safe to send now (possibly empty)."""
        self.text += delta
        if self.plan.choice == "none":
            return self._release(len(self.text))
        if self.holding or (self.sent == 0 and self.text.strip() in ("", "`", "``")):
            return ""  # the answer may still turn out to be a call
        at = self._call_start()
        if at is not None:
            self.holding = True
            return self._release(at)
        return self._release(len(self.text) - _partial_opener(self.text, self.plan.syntax))

    def finish(self) -> ToolReply:
        """The calls (and any content after them) in the held-back text.

        Raises:
            ToolCallInvalid: see :func:`parse_reply`.
        """
        held = self.text[self.sent:]
        if self.plan.choice == "none" or (not self.holding and not held.strip()):
            return ToolReply(held or None)
        return parse_reply(held, self.plan)

    def _call_start(self) -> int | None:
        if self.sent == 0 and self.text.lstrip().startswith(("{", "```")):
            return 0  # a bare or fenced JSON answer: a call in the template's syntax or untagged
        opener = self.plan.syntax.open.strip()
        at = self.text.find(opener, self.sent) if opener else -1
        return None if at < 0 else at

    def _release(self, end: int) -> str:
        end = max(end, self.sent)
        out, self.sent = self.text[self.sent:end], end
        return out


def _partial_opener(text: str, syntax: ToolSyntax) -> int:
    """How many characters at the end of ``text`` could begin the call opener (held back)."""
    opener = syntax.open.strip()
    if not opener:  # bare JSON: only the very start of an answer can open a call
        return len(text) if not text.strip() else 0
    for n in range(min(len(opener) - 1, len(text)), 0, -1):
        if text.endswith(opener[:n]):
            return n
    return 0


def load_tools(path: Path, template: str | None, model_id: str) -> ToolPlan:
    """The tools in a JSON file (a list of OpenAI tool objects), offered with tool_choice "auto"
    (``lhama chat --tools``).

    Raises:
        ConfigError: a missing or malformed file, or a model whose template has no tools section.
    """
    try:
        tools = TypeAdapter(list[Tool]).validate_json(path.read_bytes())
        return plan_tools(ChatCompletionRequest(model=model_id, messages=[{"role": "user", "content": ""}],
                                                tools=tools), template, model_id)
    except OSError as exc:
        raise ConfigError(f"cannot read the tools file {path}: {exc.strerror}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise ConfigError(f"{path} is not a list of OpenAI tools: {where}: {first['msg']}") from None
    except RequestError as exc:
        raise ConfigError(f"{path}: {exc}") from None
