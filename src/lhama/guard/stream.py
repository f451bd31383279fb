"""Moderating model output while it streams: text is released one finished sentence at a time,
each release checked first; the stream is cut at the first unsafe check, with a Portuguese notice.

What is judged is what the user will read, in context: the whole answer so far (every released
sentence plus the new ones), after the conversation before it -- not an isolated fragment such as
"Menos." or "Não.", which a classifier cannot judge alone (docs/guard.md). Text is also held back
until the answer has ``hold_words`` words, so a short opening is judged together with what follows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lhama.guard.base import Guard
from lhama.guard.verdict import SAFE, Verdict, cut_notice

# A sentence ends at . ! ? … (possibly repeated or followed by a closing quote) then whitespace,
# or at a line break. Decimal points ("3.5") have no whitespace after them, so they never split.
_END = re.compile(r"[.!?…]+[\"')\]]*\s+|\n+")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class StreamStep:
    """What :meth:`StreamGuard.feed` lets through: ``text`` may be sent to the client now (when
    the stream was just cut, it ends with the Portuguese :func:`~lhama.guard.verdict.cut_notice`).
    ``verdict`` is the unsafe verdict when the stream was just cut, else ``None``."""

    text: str
    verdict: Verdict | None = None


class StreamGuard:
    """Buffers deltas of one assistant reply; releases checked sentences; stops when unsafe.

    ``whole_answer=True`` judges the answer so far (context); ``False`` judges each sentence on
    its own (the behaviour before issue #29, kept to measure against). ``hold_words``: text is
    held back until the answer reaches this many words (or generation ends).

    Usage::

        sg = StreamGuard(guard, conversation)
        for delta in generate():
            step = sg.feed(delta)
            send(step.text)               # on a cut, ends with a notice naming the category
            if sg.blocked:
                break
        else:
            send(sg.finish().text)
    """

    def __init__(
        self, guard: Guard, context: Sequence[Mapping[str, str]] = (), hold_words: int = 6, whole_answer: bool = True
    ) -> None:
        self.guard = guard
        self.context = [dict(m) for m in context]
        self.hold_words = hold_words
        self.whole_answer = whole_answer
        self.pending = ""
        self.released = ""
        self.verdict: Verdict = SAFE

    @property
    def blocked(self) -> bool:
        return not self.verdict.safe

    def feed(self, delta: str) -> StreamStep:
        """Add generated text; return the finished sentences that passed the check."""
        if self.blocked:
            return StreamStep("")
        self.pending += delta
        cut = 0
        for match in _END.finditer(self.pending):
            cut = match.end()
        if not cut or len(_WORD.findall(self.released + self.pending[:cut])) < self.hold_words:
            return StreamStep("")
        ready, self.pending = self.pending[:cut], self.pending[cut:]
        return self._release(ready)

    def finish(self) -> StreamStep:
        """Check and release whatever is left when generation ends."""
        ready, self.pending = self.pending, ""
        return self._release(ready) if ready.strip() and not self.blocked else StreamStep("")

    def _release(self, text: str) -> StreamStep:
        """Judge ``text`` (with the answer so far, or sentence by sentence) and release it, or cut."""
        out = ""
        for piece in [text] if self.whole_answer else split_sentences(text):
            judged = self.released + out + piece if self.whole_answer else piece
            verdict = self._check(judged) if piece.strip() else SAFE
            if not verdict.safe:
                self.verdict, self.pending = verdict, ""
                self.released += out
                return StreamStep(out + cut_notice(verdict, bool(self.released)), verdict)
            out += piece
        self.released += out
        return StreamStep(out)

    def _check(self, answer: str) -> Verdict:
        return self.guard.check([*self.context, {"role": "assistant", "content": answer}], "assistant")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, each keeping its trailing punctuation and whitespace."""
    parts, start = [], 0
    for match in _END.finditer(text):
        parts.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        parts.append(text[start:])
    return parts
