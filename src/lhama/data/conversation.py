"""Chat templates as data: render messages to a prompt, tokenize it, expand media placeholders.

Instruct models carry their own template (``tokenizer.chat_template``) and lhama uses it.
Base models (e.g. Gemma-3-270M) have none; for them lhama renders :data:`TRANSCRIPT_PT`, a
plain Portuguese transcript whose assistant turns end where the next ``Usuário:`` would start.

For training, :func:`render_conversation` also says which characters are assistant text, found
by rendering the conversation prefix by prefix (so it works with any template, without
``{% generation %}`` markers), and :func:`encode_supervised` turns that into token ids and
labels where only assistant tokens are supervised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError

from lhama.errors import DataError

Message = Mapping[str, str]  # {"role": "system" | "user" | "assistant", "content": str}
IGNORE_INDEX = -100  # label of a token that carries no loss (PyTorch's cross-entropy default)


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
    eos = _eos_text(tokenizer)
    return "".join(_transcript_turn(template, m, eos) for m in messages) + template.generation_prompt


def stop_strings(tokenizer: Any, template: TranscriptTemplate | None = None) -> tuple[str, ...]:
    """Strings that end an assistant turn under the template :func:`render_prompt` used."""
    if template is None and getattr(tokenizer, "chat_template", None):
        return ()  # chat-templated models end turns with an EOS token instead
    return (template or TRANSCRIPT_PT).stop


def _apply_chat_template(tokenizer: Any, messages: Sequence[Message], generation_prompt: bool = True) -> str:
    try:
        return tokenizer.apply_chat_template(list(messages), add_generation_prompt=generation_prompt, tokenize=False)
    except Exception as exc:  # some templates (Gemma's) reject a system turn: fold it into the user turn
        if messages[0]["role"] != "system" or len(messages) < 2:
            if isinstance(exc, TemplateError):
                raise _rejected(exc) from None
            raise
        system, first, *rest = messages
        merged = {"role": first["role"], "content": f"{system['content']}\n\n{first['content']}"}
        try:
            return tokenizer.apply_chat_template([merged, *rest], add_generation_prompt=generation_prompt, tokenize=False)
        except TemplateError as retry:
            raise _rejected(retry) from None


def _rejected(exc: TemplateError) -> DataError:
    """A template that raises (``raise_exception``, e.g. "roles must alternate") refuses the
    conversation: a user error, not a bug."""
    return DataError(f"the model's chat template rejected the conversation: {exc}")


@dataclass(frozen=True)
class RenderedConversation:
    """A whole conversation as text, with the character spans of the assistant turns.

    Each span starts exactly where :func:`render_prompt` of the preceding messages ends, so a
    model is trained on the very continuation it is later asked to generate; it includes the
    turn's closing text (end-of-turn token or newline), so the model learns to stop."""

    text: str
    assistant_spans: tuple[tuple[int, int], ...]  # [start, end) character offsets


def render_conversation(
    tokenizer: Any, messages: Sequence[Message], template: TranscriptTemplate | None = None
) -> RenderedConversation:
    """Render a full conversation for training (see :class:`RenderedConversation`).

    Raises:
        DataError: bad roles, no assistant turn, or a chat template that does not render a
            conversation as a prefix of its continuation.
    """
    _check_messages(messages)
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError("the conversation has no assistant turn, so nothing would be learned from it")
    if next(m for m in messages if m["role"] != "system")["role"] != "user":
        raise DataError("the conversation starts with an assistant turn; it must start with a user turn")
    if template is None and getattr(tokenizer, "chat_template", None):
        return _render_with_chat_template(tokenizer, messages)
    return _render_transcript(messages, template or TRANSCRIPT_PT, _eos_text(tokenizer))


def _render_with_chat_template(tokenizer: Any, messages: Sequence[Message]) -> RenderedConversation:
    full = _apply_chat_template(tokenizer, messages, generation_prompt=False)
    spans = []
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _apply_chat_template(tokenizer, messages[:k], generation_prompt=True)
        turn = _apply_chat_template(tokenizer, messages[: k + 1], generation_prompt=False)
        if not (turn.startswith(prompt) and full.startswith(turn)):
            raise DataError(
                "this tokenizer's chat template does not render a conversation as a prefix of its "
                "continuation, so assistant turns cannot be located; train with the transcript template"
            )
        spans.append((len(prompt), len(turn)))
    return RenderedConversation(full, tuple(spans))


def _render_transcript(messages: Sequence[Message], template: TranscriptTemplate, eos: str = "") -> RenderedConversation:
    if not template.assistant.startswith(template.generation_prompt):
        raise DataError("the transcript template's assistant line must start with its generation prompt")
    text, spans = "", []
    for message in messages:
        turn = _transcript_turn(template, message, eos)
        if message["role"] == "assistant":
            spans.append((len(text) + len(template.generation_prompt), len(text) + len(turn)))
        text += turn
    return RenderedConversation(text, tuple(spans))


def _transcript_turn(template: TranscriptTemplate, message: Message, eos: str) -> str:
    """One transcript line. An assistant answer ends with the tokenizer's end-of-sequence token:
    trained on, it is how a base model learns to stop after its last turn (nothing follows that
    turn, so the ``stop`` strings alone never teach it)."""
    content = message["content"].strip() + (eos if message["role"] == "assistant" else "")
    return getattr(template, message["role"]).format(content=content)


def _eos_text(tokenizer: Any) -> str:
    return str(getattr(tokenizer, "eos_token", None) or "")


def encode_supervised(
    tokenizer: Any, rendered: RenderedConversation, expansions: Mapping[int, int] | None = None
) -> tuple[list[int], list[int]]:
    """Tokenize a rendered conversation -> (input_ids, labels).

    A token is supervised (label = its id) when it starts inside an assistant span; every other
    token, and every expanded placeholder token, gets :data:`IGNORE_INDEX`. The text is
    tokenized in one piece (as at inference), and offsets map tokens back to characters.
    """
    text = rendered.text
    add_special = not _starts_with_bos(tokenizer, text)
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)
        starts = [start if end > start else -1 for start, end in encoded["offset_mapping"]]  # -1: added specials
        ids = list(encoded["input_ids"])
    else:
        ids, starts = _encode_by_segments(tokenizer, rendered, add_special)
    spans = rendered.assistant_spans
    labels = [tok if any(s <= pos < e for s, e in spans) else IGNORE_INDEX for tok, pos in zip(ids, starts)]
    return _expand(ids, labels, expansions or {})


def _encode_by_segments(tokenizer: Any, rendered: RenderedConversation, add_special: bool) -> tuple[list[int], list[int]]:
    """Slow tokenizers have no offsets: tokenize prompt and assistant pieces one by one."""
    cuts = sorted({0, len(rendered.text), *(c for span in rendered.assistant_spans for c in span)})
    ids: list[int] = []
    starts: list[int] = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:])):
        piece = tokenizer(rendered.text[a:b], add_special_tokens=add_special and i == 0)["input_ids"]
        ids += piece
        starts += [a] * len(piece)
    return ids, starts


def _expand(ids: list[int], labels: list[int], expansions: Mapping[int, int]) -> tuple[list[int], list[int]]:
    out_ids: list[int] = []
    out_labels: list[int] = []
    for token, label in zip(ids, labels):
        n = expansions.get(token, 1)
        out_ids += [token] * n
        out_labels += [IGNORE_INDEX] * n if token in expansions else [label]
    return out_ids, out_labels


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


def without_media(messages: Sequence[Message], placeholders: Iterable[str]) -> list[Message]:
    """The same conversation with every media placeholder (and the line break after it) taken
    out: the text-only prompt that image guidance compares the answer against."""
    stripped = []
    for message in messages:
        content = message["content"]
        for placeholder in placeholders:
            content = content.replace(f"{placeholder}\n", "").replace(placeholder, "")
        stripped.append({**message, "content": content})
    return stripped


def encode_without_media(tokenizer: Any, messages: Sequence[Message], placeholders: Iterable[str],
                         expansions: Mapping[int, int] | None = None) -> list[int]:
    """Token ids of the conversation as text alone (:func:`without_media`, rendered and encoded
    as the prompt itself is): the reference that image guidance decodes against."""
    return encode_prompt(tokenizer, render_prompt(tokenizer, without_media(messages, placeholders)), expansions)


def count_placeholders(messages: Sequence[Message], placeholder: str) -> int:
    """How many times ``placeholder`` occurs across all messages."""
    return sum(m["content"].count(placeholder) for m in messages)


def _starts_with_bos(tokenizer: Any, prompt: str) -> bool:
    bos = getattr(tokenizer, "bos_token", None)
    return bool(bos) and prompt.startswith(bos)
