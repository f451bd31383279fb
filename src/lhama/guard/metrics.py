"""Pure metric functions for the guard's binary and per-category evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BinaryScores:
    precision: float
    recall: float
    f1: float
    fpr: float  # false positives / all negatives
    support: int  # positives


def binary_scores(truth: np.ndarray, pred: np.ndarray) -> BinaryScores:
    """Precision, recall, F1 and false-positive rate of boolean ``pred`` against ``truth``."""
    truth, pred = np.asarray(truth, bool), np.asarray(pred, bool)
    tp = int((truth & pred).sum())
    fp = int((~truth & pred).sum())
    fn = int((truth & ~pred).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    negatives = int((~truth).sum())
    return BinaryScores(precision, recall, f1, fp / negatives if negatives else 0.0, int(truth.sum()))
