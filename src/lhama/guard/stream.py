"""Moderating model output while it streams: text is released one finished sentence at a time,
each sentence checked before it goes out; the stream is cut at the first unsafe sentence."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lhama.guard.base import Guard
from lhama.guard.verdict import SAFE, Verdict

# A sentence ends at . ! ? … (possibly repeated or followed by a closing quote) then whitespace,
# or at a line break. Decimal points ("3.5") have no whitespace after them, so they never split.
_END = re.compile(r"[.!?…]+[\"')\]]*\s+|\n+")


@dataclass(frozen=True)
class StreamStep:
    """What :meth:`StreamGuard.feed` lets through: ``text`` may be sent to the client now.
    ``verdict`` is the unsafe verdict when the stream was just cut, else ``None``."""

    text: str
    verdict: Verdict | None = None


class StreamGuard:
    """Buffers deltas of one assistant reply; releases checked sentences; stops when unsafe.

    Usage::

        sg = StreamGuard(guard, conversation)
        for delta in generate():
            step = sg.feed(delta)
            send(step.text)
            if sg.blocked:
                send(refusal_text(step.verdict)); break
        else:
            send(sg.finish().text)
    """

    def __init__(self, guard: Guard, context: Sequence[Mapping[str, str]] = ()) -> None:
        self.guard = guard
        self.context = [dict(m) for m in context]
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
        if not cut:
            return StreamStep("")
        ready, self.pending = self.pending[:cut], self.pending[cut:]
        return self._release(ready)

    def finish(self) -> StreamStep:
        """Check and release whatever is left when generation ends."""
        ready, self.pending = self.pending, ""
        return self._release(ready) if ready.strip() and not self.blocked else StreamStep("")

    def _release(self, text: str) -> StreamStep:
        out = ""
        for sentence in _split(text):
            if sentence.strip():
                verdict = self.guard.check([*self.context, {"role": "assistant", "content": sentence}], "assistant")
                if not verdict.safe:
                    self.verdict, self.pending = verdict, ""
                    self.released += out
                    return StreamStep(out, verdict)
            out += sentence
        self.released += out
        return StreamStep(out)


def _split(text: str) -> list[str]:
    """Sentences of ``text``, each keeping its trailing punctuation and whitespace."""
    parts, start = [], 0
    for match in _END.finditer(text):
        parts.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        parts.append(text[start:])
    return parts
