"""A two-stage guard: a fast first guard checks everything, and a second guard (a generative
judge with the Llama Guard prompt) re-checks only what the first one flags -- so ordinary
messages pay only for the classifier, and a false alarm can still be overturned.

Spec: ``classifier+llama-guard:MODEL_DIR`` (any first-stage spec, ``+``, any judge spec).
"""

from __future__ import annotations

from lhama.guard.base import Guard, Messages, Role
from lhama.guard.verdict import Verdict


class CascadeGuard(Guard):
    """Unsafe only when both stages say so; the judge's categories win when it names any."""

    def __init__(self, first: Guard, judge: Guard) -> None:
        self.first = first
        self.judge = judge

    def check(self, messages: Messages, role: Role = "user") -> Verdict:
        verdict = self.first.check(messages, role)
        if verdict.safe:
            return verdict
        second = self.judge.check(messages, role)
        if second.safe:
            return second
        return Verdict(safe=False, categories=second.categories or verdict.categories, score=verdict.score)
