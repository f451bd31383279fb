from __future__ import annotations

import pytest

from lhama.data.conversation import TRANSCRIPT_PT, encode_prompt, render_prompt, stop_strings, without_media
from lhama.errors import DataError
from tests.conftest import tiny_tokenizer

MESSAGES = [
    {"role": "system", "content": "Responda em português."},
    {"role": "user", "content": "Olá!"},
    {"role": "assistant", "content": "Olá, como posso ajudar?"},
    {"role": "user", "content": "Qual é a capital do Brasil?"},
]


def test_transcript_fallback_for_base_models() -> None:
    tok = tiny_tokenizer()
    assert not tok.chat_template
    prompt = render_prompt(tok, MESSAGES)
    assert prompt == (
        "Responda em português.\n\nUsuário: Olá!\nAssistente: Olá, como posso ajudar?</s>\n"
        "Usuário: Qual é a capital do Brasil?\nAssistente:"
    )
    assert stop_strings(tok) == TRANSCRIPT_PT.stop


def test_tokenizer_template_is_used_when_present() -> None:
    tok = tiny_tokenizer()
    tok.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
    assert render_prompt(tok, MESSAGES[:2]) == "<system>Responda em português.<user>Olá!<assistant>"
    assert stop_strings(tok) == ()


def test_system_turn_is_folded_when_the_template_rejects_it() -> None:
    tok = tiny_tokenizer()
    tok.chat_template = (
        "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system') }}{% endif %}"
        "[{{ m.role }}]{{ m.content }}{% endfor %}"
    )
    assert render_prompt(tok, MESSAGES[:2]) == "[user]Responda em português.\n\nOlá!"


def test_placeholders_expand_in_place() -> None:
    tok = tiny_tokenizer()
    tok.add_tokens(["<image>"], special_tokens=True)
    image_id = tok.convert_tokens_to_ids("<image>")
    ids = encode_prompt(tok, "a <image> b", {image_id: 3})
    start = ids.index(image_id)
    assert ids[start:start + 3] == [image_id] * 3 and ids.count(image_id) == 3


@pytest.mark.parametrize(
    "messages, message",
    [([], "empty"), ([{"role": "robot", "content": "x"}], "role 'robot'"), ([{"role": "user"}], "no text")],
)
def test_bad_messages(messages, message) -> None:
    with pytest.raises(DataError, match=message):
        render_prompt(tiny_tokenizer(), messages)


def test_without_media_leaves_the_text_of_every_turn() -> None:
    messages = [{"role": "system", "content": "Seja breve."},
                {"role": "user", "content": "<image>\n<image>\nCompare as duas."},
                {"role": "assistant", "content": "Um sapo e um gato."},
                {"role": "user", "content": "E o som?<audio>"}]
    assert without_media(messages, ["<image>", "<audio>"]) == [
        {"role": "system", "content": "Seja breve."}, {"role": "user", "content": "Compare as duas."},
        {"role": "assistant", "content": "Um sapo e um gato."}, {"role": "user", "content": "E o som?"}]
    assert messages[1]["content"].startswith("<image>")  # the input is not changed
