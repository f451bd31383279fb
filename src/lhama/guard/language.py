"""Telling English messages from Portuguese ones, so the guard can apply each language its own
threshold (the English items are a small share of the training data and score lower, docs/guard.md).

A message counts as English when it has more English-only function words than Portuguese-only
ones; words both languages use ("a", "me", "no", "do") count for neither. Pure Python, no model.
"""

from __future__ import annotations

import re

from lhama.guard.features import normalize

_EN = frozenset(
    "the and you your to of is are was be it this that what how why where when which who with for "
    "from my i i'm can could would should will about have has get some any there their they them "
    "an or not don't please tell give make write help on in at by her his him she he we us our "
    "let let's run send describe recommend good very".split()
)
_PT = frozenset(
    "o os as de da das dos que e em um uma umas uns para pra com nao como eu meu minha voce vc "
    "se na nas nos ao aos pelo pela isso esse essa este esta ele ela qual quais quero faz fazer "
    "ensina ajuda escreva escreve explica mais muito sobre tem ter sao foi ser".split()
)
_WORD = re.compile(r"[\w']+")


def looks_english(text: str) -> bool:
    """True when ``text`` has more English-only than Portuguese-only function words."""
    words = _WORD.findall(normalize(text))
    return sum(w in _EN for w in words) > sum(w in _PT for w in words)
