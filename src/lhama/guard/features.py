"""Hashed character and word n-gram features of a message (pure numpy, no vocabulary file).

Why n-grams: the sentence encoder the classifier also uses is English-centric, while Portuguese
harm is carried by stems and word pairs ("envenen", "sem deixar pistas") that survive typos and
missing accents. Hashing keeps the feature space fixed (``dim``) so the trained head is the
whole model. crc32 is used instead of ``hash()`` because Python salts ``hash`` per process.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+")


def normalize(text: str) -> str:
    """Lower-case, strip accents ("não" -> "nao") and collapse whitespace."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.split())


# Bumped whenever ngram_counts changes, so a head trained on other features is refused, not misread.
# A head records the version it was trained on and is scored with that version's features.
FEATURE_VERSION = 3
SUPPORTED_VERSIONS = (2, 3)
# v3: words of at most this many letters get no n-grams of their own (see ngram_counts).
SHORT_WORD = 3


def ngram_counts(
    text: str, char_sizes: Sequence[int] = (3, 4, 5, 6), cross_sizes: Sequence[int] = (7,),
    version: int = FEATURE_VERSION,
) -> Counter[str]:
    """Character n-grams of each word (padded with spaces), character n-grams running across
    word boundaries ("a de bo" of "receita de bomba"), word unigrams and bigrams.

    Why the cross-word n-grams: they tie a stem to the start of its neighbour ("r uma b",
    "ia de b"), which word bigrams only do for exact spellings; out-of-fold on the training
    split they raised F1 (docs/guard.md).

    Version 3 drops the character n-grams and the unigram of every word of at most
    ``SHORT_WORD`` letters ("me", "da", "do", "sem", "pra"); the cross-word n-grams and bigrams
    still tie them to their neighbours ("me ensina a envenenar"). Why: the v2 head read the
    function words of a request ("Me diz…", "…da/do/para…") as evidence of harm, which flagged
    ordinary requests (issue #29, docs/guard.md session 12-13). Version 2 keeps every word.
    """
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"guard features v{version} are not computed by this lhama (it has {SUPPORTED_VERSIONS})")
    words = _WORD.findall(normalize(text))
    own = [w for w in words if version < 3 or len(w) > SHORT_WORD]
    counts: Counter[str] = Counter()
    for w in own:
        padded = f" {w} "
        for n in char_sizes:
            counts.update("c" + padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
    joined = f" {' '.join(words)} "
    for n in cross_sizes if words else ():
        counts.update("x" + joined[i : i + n] for i in range(max(1, len(joined) - n + 1)))
    counts.update("w" + w for w in own)
    counts.update(f"b{a} {b}" for a, b in zip(words, words[1:]))
    return counts


def hashed_features(texts: Sequence[str], dim: int, version: int = FEATURE_VERSION) -> np.ndarray:
    """(N, dim) float32: sublinear counts (1 + log tf) of hashed n-grams (features ``version``),
    L2-normalised per row."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for gram, tf in ngram_counts(text, version=version).items():
            out[row, zlib.crc32(gram.encode("utf-8")) % dim] += 1.0 + np.log(tf)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)
