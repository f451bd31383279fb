"""The default guard: a linear head over hashed n-grams (+ optional MiniLM sentence embeddings).

The head has 15 outputs: one "unsafe" logit and one logit per category S1-S14. A message is
unsafe when its unsafe score -- P(unsafe) mixed with the largest category probability, see
:func:`unsafe_score` -- reaches ``threshold`` (tuned on held-out folds of the training split
only); its categories are those with P >= ``category_threshold``, or the single most likely one.
The head and its settings live in one safetensors file (``assets/guard_head.safetensors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from lhama.errors import CheckpointError
from lhama.guard.base import Guard, Messages, Role, as_chat
from lhama.model.embeddings import SentenceEncoder
from lhama.guard.features import FEATURE_VERSION, hashed_features
from lhama.guard.verdict import CODES, SAFE, Verdict

DEFAULT_HEAD = Path(__file__).parent / "assets" / "guard_head.safetensors"


@dataclass(frozen=True)
class Head:
    """Trained weights and the settings needed to compute features the same way."""

    weight: np.ndarray  # (hash_dim + embed_dim, 15): column 0 is "unsafe", 1..14 are S1..S14
    bias: np.ndarray  # (15,)
    hash_dim: int
    embed_scale: float  # 0 means the sentence encoder is not used
    threshold: float
    category_threshold: float = 0.5
    category_mix: float = 0.0  # weight of the largest category probability in the unsafe score
    feature_version: int = FEATURE_VERSION

    def save(self, path: Path) -> None:
        """Write to ``path`` atomically (temp file, then rename)."""
        keys = ("hash_dim", "embed_scale", "threshold", "category_threshold", "category_mix", "feature_version")
        meta = {k: str(getattr(self, k)) for k in keys}
        tmp = path.with_suffix(".tmp")
        save_file({"weight": self.weight.astype(np.float16), "bias": self.bias.astype(np.float32)}, tmp, meta)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Head:
        """Raises CheckpointError when ``path`` is missing, not a guard head, or a head trained
        on another version of the n-gram features."""
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                weight, bias = f.get_tensor("weight").astype(np.float32), f.get_tensor("bias")
            head = cls(
                weight=weight, bias=bias, hash_dim=int(meta["hash_dim"]),
                embed_scale=float(meta["embed_scale"]), threshold=float(meta["threshold"]),
                category_threshold=float(meta["category_threshold"]),
                category_mix=float(meta.get("category_mix", 0.0)),
                feature_version=int(meta.get("feature_version", 1)),  # heads before the key: 1
            )
        except (OSError, KeyError, ValueError, SafetensorError) as exc:
            raise CheckpointError(f"{path} is not a guard head file ({exc})") from None
        if head.feature_version != FEATURE_VERSION:
            raise CheckpointError(f"{path} was trained on guard features v{head.feature_version}, this lhama "
                                  f"computes v{FEATURE_VERSION}; retrain it with benchmarks/guard_train.py")
        return head


class ClassifierGuard(Guard):
    """Scores the last message on its own (the classifier sees no earlier turns)."""

    def __init__(self, head: Head, encoder: SentenceEncoder | None = None) -> None:
        self.head = head
        self.encoder = encoder if encoder is not None or head.embed_scale == 0 else SentenceEncoder()

    def check(self, messages: Messages, role: Role = "user") -> Verdict:
        return self.check_batch([as_chat(messages, role)[-1]["content"]], role)[0]

    def check_batch(self, texts: Sequence[str], role: Role = "user") -> list[Verdict]:
        probs = self.probabilities(texts)
        return [self._verdict(p) for p in probs]

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(N, 15) sigmoid outputs: column 0 P(unsafe), columns 1..14 P(S1..S14)."""
        feats = features(texts, self.head.hash_dim, self.head.embed_scale, self.encoder)
        return 1.0 / (1.0 + np.exp(-(feats @ self.head.weight + self.head.bias)))

    def _verdict(self, p: np.ndarray) -> Verdict:
        score = float(unsafe_score(p[None], self.head.category_mix)[0])
        if score < self.head.threshold:
            return SAFE
        cats = [CODES[i] for i in np.flatnonzero(p[1:] >= self.head.category_threshold)]
        cats = cats or [CODES[int(np.argmax(p[1:]))]]
        return Verdict(safe=False, categories=tuple(cats), score=score)


def unsafe_score(probs: np.ndarray, category_mix: float) -> np.ndarray:
    """(N,) score compared with the threshold, from (N, 15) head probabilities:
    ``(1 - mix) * P(unsafe) + mix * max_c P(c)``.

    Why mix: each category output is a one-vs-rest detector trained on its own few examples;
    averaging the most confident one with the general unsafe output recovers unsafe messages
    that the general output scores just under the threshold (chosen out-of-fold, docs/guard.md).
    """
    return (1.0 - category_mix) * probs[:, 0] + category_mix * probs[:, 1:].max(axis=1)


def features(
    texts: Sequence[str], hash_dim: int, embed_scale: float, encoder: SentenceEncoder | None
) -> np.ndarray:
    """(N, hash_dim [+ 384]) float32: hashed n-grams, then scaled sentence embeddings."""
    parts = [hashed_features(texts, hash_dim)]
    if embed_scale:
        if encoder is None:
            raise CheckpointError("this guard head needs the sentence encoder, but none was given")
        parts.append(embed_scale * encoder.encode(texts).numpy())
    return np.concatenate(parts, axis=1)


def load_classifier(path: Path | None = None) -> ClassifierGuard:
    """The classifier guard from a head file (default: the one shipped with lhama)."""
    path = path or DEFAULT_HEAD
    if not path.is_file():
        raise CheckpointError(f"guard head not found: {path} (train one with benchmarks/guard_train.py)")
    return ClassifierGuard(Head.load(path))
