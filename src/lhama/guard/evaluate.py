"""Measuring a guard on a labelled split: unsafe-vs-safe precision/recall/F1, false-positive
rate on benign look-alikes, per-category recall, and latency per message."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lhama.guard.base import Guard
from lhama.guard.dataset import Example
from lhama.guard.metrics import BinaryScores, binary_scores
from lhama.guard.verdict import CODES, Verdict


@dataclass(frozen=True)
class CategoryRecall:
    code: str
    support: int  # unsafe test items labelled with this category
    flagged: float  # share flagged unsafe
    named: float  # share flagged unsafe with this category among the predicted ones


@dataclass(frozen=True)
class GuardReport:
    n: int
    overall: BinaryScores
    lookalike_fpr: float
    lookalikes: int
    categories: tuple[CategoryRecall, ...]
    ms_per_message: float  # one message at a time, as chat checks a turn


def evaluate(guard: Guard, examples: Sequence[Example], timed: int = 50) -> GuardReport:
    """Check every example (roles as labelled) and time ``timed`` single-message calls."""
    verdicts = _verdicts(guard, examples)
    truth = np.array([e.unsafe for e in examples])
    pred = np.array([not v.safe for v in verdicts])
    look = np.array([e.lookalike for e in examples])
    return GuardReport(
        n=len(examples),
        overall=binary_scores(truth, pred),
        lookalike_fpr=float(pred[look].mean()) if look.any() else 0.0,
        lookalikes=int(look.sum()),
        categories=tuple(_category_recall(c, examples, verdicts) for c in CODES),
        ms_per_message=_latency(guard, examples[:timed]),
    )


def _verdicts(guard: Guard, examples: Sequence[Example]) -> list[Verdict]:
    out: list[Verdict | None] = [None] * len(examples)
    for role in ("user", "assistant"):
        idx = [i for i, e in enumerate(examples) if e.role == role]
        for i, v in zip(idx, guard.check_batch([examples[i].text for i in idx], role)):
            out[i] = v
    return [v for v in out if v is not None]


def _category_recall(code: str, examples: Sequence[Example], verdicts: list[Verdict]) -> CategoryRecall:
    pairs = [(e, v) for e, v in zip(examples, verdicts) if code in e.categories]
    if not pairs:
        return CategoryRecall(code, 0, 0.0, 0.0)
    flagged = sum(not v.safe for _, v in pairs) / len(pairs)
    named = sum(code in v.categories for _, v in pairs) / len(pairs)
    return CategoryRecall(code, len(pairs), flagged, named)


def _latency(guard: Guard, examples: Sequence[Example]) -> float:
    if not examples:
        return 0.0
    guard.check(examples[0].text)  # warm-up: first call pays lazy initialisation
    start = time.perf_counter()
    for e in examples:
        guard.check(e.text)
    return 1000.0 * (time.perf_counter() - start) / len(examples)
