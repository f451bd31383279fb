"""Answering a chat request that offers tools: the model's answer parsed into calls
(:mod:`lhama.serve.tools`), with one retry when a call is unusable.

The retry forces the start of the call the model tried to write -- ``<tool_call>{"name":
"<that function>", "arguments": {`` -- and decodes greedily, so only the arguments are left
to the model. If that fails too, the request ends with a 422 carrying the raw text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from lhama.inference.generate import Completion, GenerationConfig
from lhama.serve.engine import Engine
from lhama.serve.prompt import Target, build_prompt
from lhama.serve.schemas import ChatCompletionRequest
from lhama.serve.tools import ToolCallInvalid, ToolPlan, ToolReply, ToolStream, parse_reply


@dataclass(frozen=True)
class ToolRun:
    """One request with tools in play, and what a retry needs to run it again."""

    engine: Engine
    request: ChatCompletionRequest
    target: Target
    plan: ToolPlan
    config: GenerationConfig

    def finish(self, done: Completion) -> tuple[ToolReply, Completion]:
        """The reply of a whole answer (retried once if its call is unusable).

        Raises:
            ToolCallInvalid: the retry's call is unusable too.
        """
        if done.finish_reason == "content_filter":
            return ToolReply(done.text or None), done
        try:
            return parse_reply(self.plan.prefix + done.text, self.plan), done
        except ToolCallInvalid as exc:
            return self.retry(exc)

    def stream(self, items: Iterator[str | Completion]) -> Iterator[str | ToolReply | Completion]:
        """Content deltas as soon as they cannot be part of a call, then the ToolReply of the
        held-back rest (after a retry if needed), then the Completion."""
        splitter = ToolStream(self.plan)
        for item in items:
            if not isinstance(item, Completion):
                text = splitter.feed(item)
                if text:
                    yield text
                continue
            if item.finish_reason == "content_filter":
                yield ToolReply(splitter.text[splitter.sent:] or None)
                yield item
                return
            try:
                reply, done = splitter.finish(), item
            except ToolCallInvalid as exc:
                reply, done = self.retry(exc)
            yield reply
            yield done

    def retry(self, failed: ToolCallInvalid) -> tuple[ToolReply, Completion]:
        plan = self.plan.retry(failed.raw)
        job = self.engine.submit(build_prompt(self.request, self.target, plan), replace(self.config, temperature=0.0))
        *_, done = self.engine.stream(job)
        try:
            return parse_reply(plan.prefix + done.text, plan), done
        except ToolCallInvalid:
            raise ToolCallInvalid(f"{failed.reason}, and again after one retry with the call's start forced",
                                  failed.raw) from None
