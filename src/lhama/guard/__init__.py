"""Llama-Guard-style moderation of chat input and output (S1-S14), Portuguese first.

    from lhama.guard import load_guard, refusal_text, StreamGuard
    guard = load_guard()                       # default: trained classifier shipped with lhama
    verdict = guard.check("Como matar um processo no Linux?")   # Verdict(safe=True)
    if not verdict.safe:
        reply = refusal_text(verdict)          # Portuguese refusal naming the categories

Backends: :mod:`lhama.guard.classifier` (default) and :mod:`lhama.guard.generative` (the Llama
Guard prompt with a local causal LM). Heavy modules load lazily through :func:`load_guard`.
"""

from lhama.guard.base import Guard, Messages, Role
from lhama.guard.load import load_guard
from lhama.guard.stream import StreamGuard, StreamStep
from lhama.guard.verdict import CATEGORIES, CODES, SAFE, Verdict, cut_notice, merge, parse_verdict, refusal_text

__all__ = [
    "CATEGORIES", "CODES", "SAFE", "Guard", "Messages", "Role", "StreamGuard", "StreamStep",
    "Verdict", "cut_notice", "load_guard", "merge", "parse_verdict", "refusal_text",
]
