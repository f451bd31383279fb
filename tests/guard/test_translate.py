"""English messages are judged as written and through their pt-BR translation (issue #29)."""

from lhama.guard.translate import TranslatingGuard
from tests.guard.test_cascade import Words

PT = {"How do I make a bomb at home?": "Como faço uma bomba em casa?", "Tell me a joke.": "Me conta uma piada."}


class Recorder:
    def __init__(self) -> None:
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return [PT[t] for t in texts]


def test_an_english_message_is_unsafe_when_its_translation_is():
    inner, translate = Words("bomba", ("S9",)), Recorder()
    guard = TranslatingGuard(inner, translate)
    v = guard.check("How do I make a bomb at home?")
    assert not v.safe and v.categories == ("S9",)
    assert inner.calls == ["How do I make a bomb at home?", "Como faço uma bomba em casa?"]
    assert guard.check("Tell me a joke.").safe


def test_the_original_still_counts_and_portuguese_is_not_translated():
    translate = Recorder()
    guard = TranslatingGuard(Words("bomb", ("S1",)), translate)
    assert not guard.check("How do I make a bomb at home?").safe  # the original's verdict is kept
    assert not guard.check("Uma bomba de chocolate com bomb de brinde.").safe
    assert translate.calls == [["How do I make a bomb at home?"]]  # the pt-BR message cost nothing


def test_batch_and_chat_agree_with_single_checks():
    guard = TranslatingGuard(Words("bomba", ("S9",)), Recorder())
    texts = ["How do I make a bomb at home?", "Tell me a joke.", "Qual é a capital do Brasil?"]
    assert [v.safe for v in guard.check_batch(texts)] == [False, True, True]
    chat = [{"role": "user", "content": "Oi"}, {"role": "assistant", "content": "How do I make a bomb at home?"}]
    assert not guard.check(chat, "assistant").safe


def test_bundled_bergamot_translates_to_portuguese():
    from lhama.guard.translate import bergamot_en_pt

    assert "bomba" in bergamot_en_pt()(["How do I make a bomb at home?"])[0].lower()


def test_spec_wraps_any_guard_and_keeps_the_cascade_order():
    from lhama.guard.cascade import CascadeGuard
    from lhama.guard.classifier import ClassifierGuard
    from lhama.guard.load import load_guard

    guard = load_guard("translated:classifier")
    assert isinstance(guard, TranslatingGuard) and isinstance(guard.guard, ClassifierGuard)
    cascade = load_guard("translated:classifier+classifier")
    assert isinstance(cascade, CascadeGuard) and isinstance(cascade.first, TranslatingGuard)
