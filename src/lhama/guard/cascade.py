"""A two-stage guard: a fast first guard checks everything, and a second guard (a generative
judge with the Llama Guard prompt, or :class:`lhama.guard.judge.YesNoJudge`) re-checks only what the
first one flags -- so ordinary messages pay only for the classifier, and a false alarm can still be
overturned. With ``band``, only flags whose score is below it are re-checked (a low margin over the
first guard's threshold); confident flags stand.

Spec: ``classifier+llama-guard:MODEL_DIR`` (any first-stage spec, ``+``, any judge spec).
"""

from __future__ import annotations

from collections.abc import Sequence

from lhama.guard.base import Guard, Messages, Role
from lhama.guard.verdict import Verdict


class CascadeGuard(Guard):
    """Unsafe only when both stages say so; the judge's categories win when it names any.

    ``band``: the judge sees only flags whose score is below it (None: every flag; a flag without a
    score is always re-checked).
    """

    def __init__(self, first: Guard, judge: Guard, band: float | None = None) -> None:
        self.first = first
        self.judge = judge
        self.band = band

    def check(self, messages: Messages, role: Role = "user") -> Verdict:
        verdict = self.first.check(messages, role)
        return verdict if not self.asks(verdict) else self._second(verdict, messages, role)

    def check_batch(self, texts: Sequence[str], role: Role = "user") -> list[Verdict]:
        verdicts = self.first.check_batch(texts, role)
        return [self._second(v, t, role) if self.asks(v) else v for v, t in zip(verdicts, texts)]

    def asks(self, verdict: Verdict) -> bool:
        """Whether the judge re-checks a message the first guard gave ``verdict``."""
        if verdict.safe:
            return False
        return self.band is None or verdict.score is None or verdict.score < self.band

    def _second(self, verdict: Verdict, messages: Messages, role: Role) -> Verdict:
        second = self.judge.check(messages, role)
        if second.safe:
            return second
        return Verdict(safe=False, categories=second.categories or verdict.categories, score=verdict.score)
