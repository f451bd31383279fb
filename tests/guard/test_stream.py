from lhama.guard.base import Guard, as_chat
from lhama.guard.stream import StreamGuard, split_sentences
from lhama.guard.verdict import SAFE, Verdict, cut_notice

UNSAFE = Verdict(safe=False, categories=("S1",))


class WordGuard(Guard):
    """A deterministic guard for stream tests: a message is unsafe iff it contains 'veneno'."""

    def __init__(self):
        self.seen = []

    def check(self, messages, role="user"):
        chat = as_chat(messages, role)
        self.seen.append(chat)
        return UNSAFE if "veneno" in chat[-1]["content"] else SAFE


def _run(deltas, guard, **kwargs):
    sg = StreamGuard(guard, [{"role": "user", "content": "oi"}], **kwargs)
    out, verdict = "", None
    for d in deltas:
        step = sg.feed(d)
        out += step.text
        verdict = verdict or step.verdict
    out += sg.finish().text
    return out, sg, verdict


def test_stream_is_cut_at_the_first_unsafe_sentence_with_a_portuguese_notice():
    deltas = ["Claro. Pri", "meiro, compre o ve", "neno no mercado. Depois ", "misture bem."]
    out, sg, verdict = _run(deltas, WordGuard(), hold_words=0)
    notice = "\n\n[Resposta interrompida pelo filtro de segurança: crimes violentos (S1).]"
    assert out == "Claro. " + notice and cut_notice(UNSAFE) == notice
    assert sg.blocked and verdict == UNSAFE
    assert sg.released == "Claro. "


def test_a_cut_before_anything_was_shown_is_the_notice_alone():
    out, sg, _ = _run(["Veja: veneno. ", "Mais texto aqui."], WordGuard())
    assert out == "[Resposta interrompida pelo filtro de segurança: crimes violentos (S1).]"
    assert sg.released == ""


def test_each_release_is_judged_with_the_answer_so_far_and_the_conversation():
    guard = WordGuard()
    text = "O preço é 3.5 reais! Quer mais?\nTchau"
    out, sg, verdict = _run([text[i : i + 4] for i in range(0, len(text), 4)], guard, hold_words=0)
    assert out == text and not sg.blocked and verdict is None
    checked = [c[-1]["content"] for c in guard.seen]
    assert checked == ["O preço é 3.5 reais! ", "O preço é 3.5 reais! Quer mais?\n", text]  # "3.5" does not split
    assert guard.seen[0][0] == {"role": "user", "content": "oi"}
    assert guard.seen[0][-1]["role"] == "assistant"


def test_short_fragments_are_held_back_and_judged_with_what_follows():
    guard = WordGuard()
    sg = StreamGuard(guard, hold_words=6)
    assert sg.feed("Um. ").text == "" and sg.feed("Dois. ").text == "" and guard.seen == []
    assert sg.feed("Três. Quatro. Cinco. Seis. ").text == "Um. Dois. Três. Quatro. Cinco. Seis. "
    assert [c[-1]["content"] for c in guard.seen] == ["Um. Dois. Três. Quatro. Cinco. Seis. "]
    assert StreamGuard(guard).feed("Menos. ").text == ""  # alone, only finish() releases it


def test_sentence_mode_judges_each_sentence_alone():
    guard = WordGuard()
    out, sg, _ = _run(["Primeira frase. Segunda frase. Fim"], guard, hold_words=0, whole_answer=False)
    assert out == "Primeira frase. Segunda frase. Fim" and not sg.blocked
    assert [c[-1]["content"] for c in guard.seen] == ["Primeira frase. ", "Segunda frase. ", "Fim"]


def test_nothing_is_released_before_a_sentence_ends():
    sg = StreamGuard(WordGuard())
    assert sg.feed("Uma frase sem fim").text == ""
    assert sg.finish().text == "Uma frase sem fim"


def test_split_sentences_keeps_punctuation_and_whitespace():
    assert split_sentences("A 3.5 b. Sim!\nNão") == ["A 3.5 b. ", "Sim!\n", "Não"]
