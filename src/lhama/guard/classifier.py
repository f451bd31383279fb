"""The default guard: a linear head over hashed n-grams + MiniLM sentence embeddings.

The head has 15 outputs: one "unsafe" logit and one logit per category S1-S14. A message is
unsafe when P(unsafe) >= ``threshold`` (tuned on held-out folds of the training split only);
its categories are those with P >= ``category_threshold``, or the single most likely one.
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
from lhama.guard.features import hashed_features
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

    def save(self, path: Path) -> None:
        """Write to ``path`` atomically (temp file, then rename)."""
        meta = {k: str(getattr(self, k)) for k in ("hash_dim", "embed_scale", "threshold", "category_threshold")}
        tmp = path.with_suffix(".tmp")
        save_file({"weight": self.weight.astype(np.float16), "bias": self.bias.astype(np.float32)}, tmp, meta)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Head:
        """Raises CheckpointError when ``path`` is missing or not a guard head."""
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                weight, bias = f.get_tensor("weight").astype(np.float32), f.get_tensor("bias")
            return cls(
                weight=weight, bias=bias, hash_dim=int(meta["hash_dim"]),
                embed_scale=float(meta["embed_scale"]), threshold=float(meta["threshold"]),
                category_threshold=float(meta["category_threshold"]),
            )
        except (OSError, KeyError, ValueError, SafetensorError) as exc:
            raise CheckpointError(f"{path} is not a guard head file ({exc})") from None


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
        if p[0] < self.head.threshold:
            return SAFE
        cats = [CODES[i] for i in np.flatnonzero(p[1:] >= self.head.category_threshold)]
        cats = cats or [CODES[int(np.argmax(p[1:]))]]
        return Verdict(safe=False, categories=tuple(cats), score=float(p[0]))


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
