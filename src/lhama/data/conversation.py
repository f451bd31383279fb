"""Chat templates as data: render messages to a prompt, tokenize it, expand media placeholders.

Instruct models carry their own template (``tokenizer.chat_template``) and lhama uses it.
Base models (e.g. Gemma-3-270M) have none; for them lhama renders :data:`TRANSCRIPT_PT`, a
plain Portuguese transcript whose assistant turns end where the next ``Usuário:`` would start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError

from lhama.errors import DataError

Message = Mapping[str, str]  # {"role": "system" | "user" | "assistant", "content": str}


@dataclass(frozen=True)
class TranscriptTemplate:
    """A fallback template for base models: a labelled transcript."""

    system: str = "{content}\n\n"
    user: str = "Usuário: {content}\n"
    assistant: str = "Assistente: {content}\n"
    generation_prompt: str = "Assistente:"
    stop: tuple[str, ...] = ("\nUsuário:", "\nUsuária:", "\nAssistente:")


TRANSCRIPT_PT = TranscriptTemplate()


def render_prompt(tokenizer: Any, messages: Sequence[Message], template: TranscriptTemplate | None = None) -> str:
    """Render ``messages`` as the prompt text that ends where the assistant's answer begins.

    Uses the tokenizer's own chat template unless it has none or ``template`` is given.
    """
    _check_messages(messages)
    if template is None and getattr(tokenizer, "chat_template", None):
        return _apply_chat_template(tokenizer, messages)
    template = template or TRANSCRIPT_PT
    parts = [getattr(template, m["role"]).format(content=m["content"].strip()) for m in messages]
    return "".join(parts) + template.generation_prompt


def stop_strings(tokenizer: Any, template: TranscriptTemplate | None = None) -> tuple[str, ...]:
    """Strings that end an assistant turn under the template :func:`render_prompt` used."""
    if template is None and getattr(tokenizer, "chat_template", None):
        return ()  # chat-templated models end turns with an EOS token instead
    return (template or TRANSCRIPT_PT).stop


def _apply_chat_template(tokenizer: Any, messages: Sequence[Message]) -> str:
    try:
        return tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    except Exception as exc:  # some templates (Gemma's) reject a system turn: fold it into the user turn
        if messages[0]["role"] != "system" or len(messages) < 2:
            if isinstance(exc, TemplateError):
                raise _rejected(exc) from None
            raise
        system, first, *rest = messages
        merged = {"role": first["role"], "content": f"{system['content']}\n\n{first['content']}"}
        try:
            return tokenizer.apply_chat_template([merged, *rest], add_generation_prompt=True, tokenize=False)
        except TemplateError as retry:
            raise _rejected(retry) from None


def _rejected(exc: TemplateError) -> DataError:
    """A template that raises (``raise_exception``, e.g. "roles must alternate") refuses the
    conversation: a user error, not a bug."""
    return DataError(f"the model's chat template rejected the conversation: {exc}")


def _check_messages(messages: Sequence[Message]) -> None:
    if not messages:
        raise DataError("the conversation is empty: give at least one user message")
    for i, message in enumerate(messages):
        if message.get("role") not in ("system", "user", "assistant"):
            raise DataError(f"message {i} has role {message.get('role')!r}; use system, user or assistant")
        if not isinstance(message.get("content"), str):
            raise DataError(f"message {i} has no text content")


def encode_prompt(tokenizer: Any, prompt: str, expansions: Mapping[int, int] | None = None) -> list[int]:
    """Tokenize ``prompt`` and repeat each placeholder token id the number of times in
    ``expansions`` (placeholder token id -> tokens per media item)."""
    ids = tokenizer(prompt, add_special_tokens=not _starts_with_bos(tokenizer, prompt))["input_ids"]
    expansions = expansions or {}
    expanded: list[int] = []
    for token in ids:
        expanded.extend([token] * expansions.get(token, 1))
    return expanded


def count_placeholders(messages: Sequence[Message], placeholder: str) -> int:
    """How many times ``placeholder`` occurs across all messages."""
    return sum(m["content"].count(placeholder) for m in messages)


def _starts_with_bos(tokenizer: Any, prompt: str) -> bool:
    bos = getattr(tokenizer, "bos_token", None)
    return bool(bos) and prompt.startswith(bos)
