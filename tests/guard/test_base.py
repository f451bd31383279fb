import pytest

from lhama.errors import DataError
from lhama.guard.base import Guard, as_chat
from lhama.guard.verdict import SAFE, Verdict


class WordGuard(Guard):
    def check(self, messages, role="user"):
        text = as_chat(messages, role)[-1]["content"]
        if "arma" in text:
            return Verdict(safe=False, categories=("S9",), score=0.8)
        return Verdict(safe=False, categories=("S1",), score=0.6) if "sangue" in text else SAFE


def test_image_turn_is_unsafe_when_text_or_caption_is():
    g = WordGuard()
    assert g.check_with_caption("O que tem nesta foto?", "Um gato dormindo.") == SAFE
    assert g.check_with_caption("O que tem nesta foto?", "Uma arma química num laboratório.").categories == ("S9",)
    both = g.check_with_caption([{"role": "user", "content": "Como limpo o sangue?"}], "Uma arma caseira.")
    assert both == Verdict(safe=False, categories=("S1", "S9"), score=0.8)


def test_as_chat_normalises_and_rejects_bad_conversations():
    assert as_chat("oi", "assistant") == [{"role": "assistant", "content": "oi"}]
    with pytest.raises(DataError, match="conversation is empty"):
        as_chat([], "user")
    with pytest.raises(DataError, match="last message has role 'user', expected 'assistant'"):
        as_chat([{"role": "user", "content": "oi"}], "assistant")
    with pytest.raises(DataError, match="message 0 must be a mapping"):
        as_chat([{"role": "user"}], "user")
