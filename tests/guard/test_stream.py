from lhama.guard.base import Guard, as_chat
from lhama.guard.stream import StreamGuard
from lhama.guard.verdict import SAFE, Verdict


class WordGuard(Guard):
    """A deterministic guard for stream tests: a message is unsafe iff it contains 'veneno'."""

    def __init__(self):
        self.seen = []

    def check(self, messages, role="user"):
        chat = as_chat(messages, role)
        self.seen.append(chat)
        return Verdict(safe=False, categories=("S1",)) if "veneno" in chat[-1]["content"] else SAFE


def _run(deltas, guard):
    sg = StreamGuard(guard, [{"role": "user", "content": "oi"}])
    out, verdict = "", None
    for d in deltas:
        step = sg.feed(d)
        out += step.text
        verdict = verdict or step.verdict
    out += sg.finish().text
    return out, sg, verdict


def test_stream_is_cut_at_the_first_unsafe_sentence():
    deltas = ["Claro. Pri", "meiro, compre o ve", "neno no mercado. Depois ", "misture bem."]
    out, sg, verdict = _run(deltas, WordGuard())
    assert out == "Claro. "
    assert sg.blocked and verdict == Verdict(safe=False, categories=("S1",))
    assert sg.released == "Claro. "


def test_safe_stream_passes_whole_and_each_sentence_is_checked_in_context():
    guard = WordGuard()
    text = "O preço é 3.5 reais! Quer mais?\nTchau"
    out, sg, verdict = _run([text[i : i + 4] for i in range(0, len(text), 4)], guard)
    assert out == text and not sg.blocked and verdict is None
    checked = [c[-1]["content"] for c in guard.seen]
    assert checked == ["O preço é 3.5 reais! ", "Quer mais?\n", "Tchau"]  # "3.5" does not split
    assert guard.seen[0][0] == {"role": "user", "content": "oi"}
    assert guard.seen[0][-1]["role"] == "assistant"


def test_nothing_is_released_before_a_sentence_ends():
    sg = StreamGuard(WordGuard())
    assert sg.feed("Uma frase sem fim").text == ""
    assert sg.finish().text == "Uma frase sem fim"
