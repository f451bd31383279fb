"""Prompt lookup: a draft with no model, for speculative decoding.

An answer often repeats its prompt (a text to translate, correct, summarise or rewrite) or itself (a list, a
name said twice). The draft looks for the latest earlier place where the sequence's last ``n`` ids (prompt and
answer so far) occurred, for ``n`` from ``longest`` down to ``shortest``, and proposes the ids that followed
there. It costs no model step and no prefill of its own: a step with no match is the model's plain step, a step
with one is a check of the proposal's rows. The model still checks every token, so the answer is plain greedy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lhama.errors import ConfigError


@dataclass(frozen=True)
class Lookup:
    """Match the sequence's last ``longest`` .. ``shortest`` ids (the longest match first)."""

    longest: int = 4
    shortest: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.shortest <= self.longest:
            raise ConfigError(f"bad prompt lookup {self}: 1 <= shortest <= longest")

    def propose(self, ids: Sequence[int], count: int) -> list[int]:
        """Up to ``count`` ids that followed the latest earlier occurrence of ``ids``' last n ids, for the
        longest n that occurs; [] when none does."""
        if count < 1:
            return []
        ids = list(ids)
        for n in range(min(self.longest, len(ids) - 1), self.shortest - 1, -1):
            start = _latest(ids, ids[-n:], len(ids) - n - 1)
            if start is not None:
                return ids[start + n: start + n + count]
        return []


def _latest(ids: list[int], tail: list[int], last: int) -> int | None:
    """The largest start s <= ``last`` with ids[s : s + len(tail)] == tail, or None."""
    first = tail[0]
    for start in range(last, -1, -1):
        if ids[start] == first and ids[start: start + len(tail)] == tail:
            return start
    return None
