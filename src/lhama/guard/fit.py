"""Training the classifier guard's head: L2-regularised logistic regression (15 sigmoid outputs) in torch,
with the decision threshold chosen from out-of-fold predictions on the training split only.

Recipe: ``python benchmarks/guard_train.py`` (reads data/guard/train.jsonl, writes the head).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse

from lhama.guard.classifier import Head, features, unsafe_score
from lhama.guard.dataset import Example
from lhama.guard.features import FEATURE_VERSION
from lhama.guard.language import looks_english
from lhama.model.embeddings import SentenceEncoder
from lhama.guard.metrics import binary_scores
from lhama.guard.verdict import CODES


@dataclass(frozen=True)
class FitConfig:
    hash_dim: int = 2**15
    # Weight of the MiniLM block against the n-gram block; 0 drops it. Default 0: on out-of-fold
    # predictions of the training split MiniLM did not help Portuguese (docs/guard.md).
    embed_scale: float = 0.0
    weight_decay: float = 2e-5  # L2 on the weights, per example (chosen out-of-fold, docs/guard.md)
    steps: int = 100  # L-BFGS iterations
    folds: int = 5  # out-of-fold predictions for threshold tuning
    max_lookalike_fpr: float = 0.05  # tuning target, below the 0.06 the issue allows
    # The same target for the English threshold alone; None: ``max_lookalike_fpr``. Why: English has
    # few look-alikes of its own, and a pt-BR-sized budget can cost it recall (issue #29, session 13).
    max_lookalike_fpr_en: float | None = None
    # Tuning target on the other safe items (everyday text, hard negatives): issue #29 asks <= 0.5%
    # of benign sentences flagged.
    max_benign_fpr: float = 0.005
    lookalike_weight: float = 5.0  # loss weight of benign look-alikes (chosen out-of-fold, docs/guard.md)
    benign_weight: float = 1.0  # loss weight of the other safe items
    category_mix: float = 0.5  # see classifier.unsafe_score (chosen out-of-fold, docs/guard.md)
    seed: int = 0
    feature_version: int = FEATURE_VERSION  # lhama.guard.features; the head records it


def targets(examples: Sequence[Example]) -> np.ndarray:
    """(N, 15) 0/1: column 0 unsafe, columns 1..14 the categories."""
    y = np.zeros((len(examples), 1 + len(CODES)), dtype=np.float32)
    for i, e in enumerate(examples):
        y[i, 0] = float(e.unsafe)
        for c in e.categories:
            y[i, 1 + CODES.index(c)] = 1.0
    return y


def fit_dual(
    gram: np.ndarray, y: np.ndarray, cfg: FitConfig, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Dual coefficients (a (N, 15), bias (15,)) minimising mean BCE + ``weight_decay`` * ||w||^2
    for w = x.T @ a, given the Gram matrix ``gram = x @ x.T`` (N, N).

    Why the dual: with N rows << F features the L2 optimum lies in the span of the rows
    (representer theorem), so L-BFGS works on N x N numbers instead of the 33k-wide features.
    """
    g, yt = torch.from_numpy(gram).double(), torch.from_numpy(y).double()
    wt = torch.ones(len(gram), 1, dtype=torch.float64) if weights is None else torch.from_numpy(weights).double()[:, None]
    a = torch.zeros(len(gram), y.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(y.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([a, b], max_iter=cfg.steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        ga = g @ a  # (N, 15) logits without bias
        bce = torch.nn.functional.binary_cross_entropy_with_logits(ga + b, yt, wt, reduction="sum")
        loss = bce / len(gram) + cfg.weight_decay * (a * ga).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return a.detach().numpy(), b.detach().numpy()


def gram_matrix(x: np.ndarray) -> np.ndarray:
    """(N, N) ``x @ x.T`` of the (N, F) features, through a sparse copy: hashed n-gram rows have a
    few hundred non-zeros of 2^15, so this is seconds instead of minutes on a 2-core CPU."""
    xs = sparse.csr_matrix(x)
    return np.asarray((xs @ xs.T).todense(), dtype=np.float32)


def train_weights(
    x: np.ndarray, y: np.ndarray, cfg: FitConfig, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Primal (weight (F, 15), bias (15,)) of :func:`fit_dual` on features ``x`` (N, F)."""
    a, b = fit_dual(gram_matrix(x), y, cfg, weights)
    return (x.T @ a.astype(np.float32)), b.astype(np.float32)


def out_of_fold(
    x: np.ndarray, y: np.ndarray, cfg: FitConfig, weights: np.ndarray | None = None
) -> np.ndarray:
    """The unsafe score (:func:`unsafe_score`) of every training row from a head that never saw it (k-fold)."""
    gram = gram_matrix(x)  # (N, N), computed once and sliced per fold
    order = np.random.default_rng(cfg.seed).permutation(len(x))
    scores = np.zeros(len(x), dtype=np.float32)
    for fold in np.array_split(order, cfg.folds):
        keep = np.setdiff1d(order, fold)
        a, b = fit_dual(gram[np.ix_(keep, keep)], y[keep], cfg, None if weights is None else weights[keep])
        probs = 1.0 / (1.0 + np.exp(-(gram[np.ix_(fold, keep)] @ a + b)))  # (len(fold), 15)
        scores[fold] = unsafe_score(probs, cfg.category_mix)
    return scores


def tune_threshold(scores: np.ndarray, examples: Sequence[Example], max_fpr: float, max_benign_fpr: float = 1.0) -> float:
    """The threshold with the best unsafe-F1 whose false-positive rate stays at or below
    ``max_fpr`` on look-alikes and ``max_benign_fpr`` on the other safe items (the lowest such
    threshold when F1 ties; the highest threshold tried when none meets both)."""
    unsafe = np.array([e.unsafe for e in examples])
    look = np.array([e.lookalike for e in examples])
    benign = ~unsafe & ~look
    best, best_f1 = 0.95, -1.0
    for t in np.round(np.arange(0.05, 0.951, 0.01), 2):  # mixed scores sit lower than P(unsafe)
        pred = scores >= t
        fpr = pred[look].mean() if look.any() else 0.0
        benign_fpr = pred[benign].mean() if benign.any() else 0.0
        f1 = binary_scores(unsafe, pred).f1
        if fpr <= max_fpr and benign_fpr <= max_benign_fpr and f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


def tune_thresholds(scores: np.ndarray, examples: Sequence[Example], cfg: FitConfig) -> tuple[float, float | None]:
    """(threshold, English threshold): :func:`tune_threshold` on the messages that do not look
    English and, separately, on those that do (None when there are no English ones)."""
    en = np.array([looks_english(e.text) for e in examples])

    def tuned(mask: np.ndarray, max_fpr: float) -> float:
        kept = [e for e, m in zip(examples, mask) if m]
        return tune_threshold(scores[mask], kept, max_fpr, cfg.max_benign_fpr)

    en_fpr = cfg.max_lookalike_fpr if cfg.max_lookalike_fpr_en is None else cfg.max_lookalike_fpr_en
    return tuned(~en, cfg.max_lookalike_fpr), tuned(en, en_fpr) if en.any() else None


def loss_weights(examples: Sequence[Example], cfg: FitConfig) -> np.ndarray:
    """(N,) per-example loss weights: look-alikes and other safe items weigh more than unsafe ones."""
    return np.array([cfg.lookalike_weight if e.lookalike else cfg.benign_weight if not e.unsafe else 1.0
                     for e in examples])


def fit_head(examples: Sequence[Example], cfg: FitConfig, encoder: SentenceEncoder | None) -> Head:
    """Train on all ``examples`` with a threshold tuned out-of-fold on the same examples."""
    x = features([e.text for e in examples], cfg.hash_dim, cfg.embed_scale, encoder, cfg.feature_version)
    y = targets(examples)
    weights = loss_weights(examples, cfg)
    threshold, threshold_en = tune_thresholds(out_of_fold(x, y, cfg, weights), examples, cfg)
    w, b = train_weights(x, y, cfg, weights)
    return Head(weight=w, bias=b, hash_dim=cfg.hash_dim, embed_scale=cfg.embed_scale, threshold=threshold,
                category_mix=cfg.category_mix, threshold_en=threshold_en, feature_version=cfg.feature_version)
