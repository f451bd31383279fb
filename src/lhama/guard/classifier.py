"""The default guard: a linear head over hashed n-grams (+ optional MiniLM sentence embeddings).

The head has 15 outputs: one "unsafe" logit and one logit per category S1-S14. A message is
unsafe when its unsafe score -- P(unsafe) mixed with the largest category probability, see
:func:`unsafe_score` -- reaches ``threshold`` (tuned on held-out folds of the training split
only); its categories are those with P >= ``category_threshold``, or the single most likely one.
The head and its settings live in one safetensors file (``assets/guard_head.safetensors``).
:func:`load_classifier` adds the shipped cue rules (:mod:`lhama.guard.cues`: S4 counts only with a
sexual, secrecy or grooming cue) and phrase rules (:mod:`lhama.guard.phrases`), if any ship.
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
from lhama.guard.cues import SHIPPED_CUE_RULES, CueRule, mask_uncued
from lhama.guard.phrases import SHIPPED_PHRASE_RULES, PhraseRule, rewrite_all
from lhama.model.embeddings import SentenceEncoder
from lhama.guard.features import FEATURE_VERSION, SUPPORTED_VERSIONS, hashed_features
from lhama.guard.language import looks_english
from lhama.guard.verdict import CODES, SAFE, Verdict

DEFAULT_HEAD = Path(__file__).parent / "assets" / "guard_head.safetensors"
# The head for model output (lhama.guard.roles): trained with everyday answer sentences too.
DEFAULT_OUTPUT_HEAD = Path(__file__).parent / "assets" / "guard_head_output.safetensors"
# The head for user messages that look English, when one ships (issue #29, session 14).
DEFAULT_ENGLISH_HEAD = Path(__file__).parent / "assets" / "guard_head_en.safetensors"
# The veto head for pt-BR user messages, when one ships (issue #29, session 16).
DEFAULT_VETO_HEAD = Path(__file__).parent / "assets" / "guard_head_veto.safetensors"


@dataclass(frozen=True)
class Head:
    """Trained weights and the settings needed to compute features the same way."""

    weight: np.ndarray  # (hash_dim + embed_dim, 15): column 0 is "unsafe", 1..14 are S1..S14
    bias: np.ndarray  # (15,)
    hash_dim: int
    embed_scale: float  # 0 means the sentence encoder is not used
    threshold: float
    category_threshold: float = 0.5
    # Threshold for messages that look English (lhama.guard.language), tuned out-of-fold on the
    # English training items; None means ``threshold`` (heads trained before issue #29).
    threshold_en: float | None = None
    category_mix: float = 0.0  # weight of the largest category probability in the unsafe score
    # A message is unsafe only when its most likely category also reaches this (0: no floor).
    # Why: everyday requests ("Me dá uma ideia de lanche…") score high on the general unsafe output
    # for their request form while no category fires (issue #29; chosen out-of-fold, docs/guard.md).
    category_floor: float = 0.0
    # The n-gram features it was trained on (lhama.guard.features); it is scored with the same ones.
    feature_version: int = FEATURE_VERSION

    def save(self, path: Path) -> None:
        """Write to ``path`` atomically (temp file, then rename)."""
        keys = ("hash_dim", "embed_scale", "threshold", "category_threshold", "category_mix", "feature_version")
        meta = {k: str(getattr(self, k)) for k in keys}
        if self.threshold_en is not None:
            meta["threshold_en"] = str(self.threshold_en)
        if self.category_floor:
            meta["category_floor"] = str(self.category_floor)
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
                threshold_en=float(meta["threshold_en"]) if "threshold_en" in meta else None,
                category_floor=float(meta.get("category_floor", 0.0)),
                feature_version=int(meta.get("feature_version", 1)),  # heads before the key: 1
            )
        except (OSError, KeyError, ValueError, SafetensorError) as exc:
            raise CheckpointError(f"{path} is not a guard head file ({exc})") from None
        if head.feature_version not in SUPPORTED_VERSIONS:
            raise CheckpointError(f"{path} was trained on guard features v{head.feature_version}, this lhama "
                                  f"computes v{'/v'.join(map(str, SUPPORTED_VERSIONS))}; retrain it with "
                                  "benchmarks/guard_train.py")
        return head


class ClassifierGuard(Guard):
    """Scores the last message on its own (the classifier sees no earlier turns).

    ``output_head``, when given, judges model output (``role="assistant"``) instead of ``head``.
    Why two heads: what users type (requests) and what the model writes (answers, descriptions,
    prose) are different text; the shipped output head is trained with thousands of everyday
    model-output sentences as well, and stops flagging ordinary answers, while the input head
    keeps its recall on unsafe requests (issue #29, docs/guard.md).

    ``cue_rules`` (:mod:`lhama.guard.cues`): categories whose output counts only when the message has
    their cue, for both heads; :meth:`probabilities` stays the heads' raw output.
    ``phrase_rules`` (:mod:`lhama.guard.phrases`): phrases left out of the text the heads score when
    their rule says the context is harmless, for both heads.
    ``english_head``, when given, judges user messages that look English
    (:func:`lhama.guard.language.looks_english`) instead of ``head``. Why: a head fitted for fewer
    false alarms on pt-BR requests can lose English recall (docs/guard.md, sessions 13-14); English
    messages keep the head that was measured on them.
    ``veto_head``, when given: a user message (not model output) that does not look English and that
    ``head`` flags stays flagged only when the veto head's unsafe score also reaches its threshold (its
    category floor is not used). Why: the input head flags everyday requests for their request form;
    a head trained with thousands of everyday requests scores them low, while a low veto threshold
    keeps the input head's catches (issue #29, session 16; chosen out-of-fold, docs/guard.md).
    """

    def __init__(self, head: Head, encoder: SentenceEncoder | None = None, output_head: Head | None = None,
                 cue_rules: Sequence[CueRule] = (), phrase_rules: Sequence[PhraseRule] = (),
                 english_head: Head | None = None, veto_head: Head | None = None) -> None:
        self.head = head
        self.output_head = output_head
        self.english_head = english_head
        self.veto_head = veto_head
        self.cue_rules = tuple(cue_rules)
        self.phrase_rules = tuple(phrase_rules)
        uses_encoder = any(h is not None and h.embed_scale != 0 for h in (head, output_head, english_head, veto_head))
        self.encoder = encoder if encoder is not None or not uses_encoder else SentenceEncoder()

    def check(self, messages: Messages, role: Role = "user") -> Verdict:
        return self.check_batch([as_chat(messages, role)[-1]["content"]], role)[0]

    def check_batch(self, texts: Sequence[str], role: Role = "user") -> list[Verdict]:
        heads = [self.head_for(t, role) for t in texts]
        rewritten = rewrite_all(texts, self.phrase_rules)
        probs = np.zeros((len(texts), 15), np.float32)  # the heads' own dtype: same scores as one head alone
        for head in {id(h): h for h in heads}.values():
            rows = [i for i, h in enumerate(heads) if h is head]
            probs[rows] = self.probabilities([rewritten[i] for i in rows], head)
        probs = mask_uncued(probs, texts, self.cue_rules)
        verdicts = [_verdict(p, h, threshold_for(h, t)) for p, h, t in zip(probs, heads, texts)]
        return verdicts if role == "assistant" else self._vetoed(verdicts, heads, texts, rewritten)

    def _vetoed(self, verdicts: list[Verdict], heads: list[Head], texts: Sequence[str],
                rewritten: Sequence[str]) -> list[Verdict]:
        """User ``verdicts`` with the veto head's say on the input head's flags of text that does not look English."""
        if self.veto_head is None:
            return verdicts
        asks = [i for i, (v, h, t) in enumerate(zip(verdicts, heads, texts))
                if not v.safe and h is self.head and not looks_english(t)]
        if not asks:
            return verdicts
        probs = mask_uncued(self.probabilities([rewritten[i] for i in asks], self.veto_head),
                            [texts[i] for i in asks], self.cue_rules)
        scores = unsafe_score(probs, self.veto_head.category_mix)
        low = {i for i, s in zip(asks, scores) if s < self.veto_head.threshold}
        return [SAFE if i in low else v for i, v in enumerate(verdicts)]

    def head_for(self, text: str, role: Role = "user") -> Head:
        """The head that judges ``text``: the output head for model output (when one is given), the
        English head for user text that looks English (when one is given), else the input head."""
        if role == "assistant" and self.output_head is not None:
            return self.output_head
        if role != "assistant" and self.english_head is not None and looks_english(text):
            return self.english_head
        return self.head

    def probabilities(self, texts: Sequence[str], head: Head | None = None) -> np.ndarray:
        """(N, 15) sigmoid outputs of ``head`` (default: the input head): column 0 P(unsafe),
        columns 1..14 P(S1..S14)."""
        head = head or self.head
        feats = features(texts, head.hash_dim, head.embed_scale, self.encoder, head.feature_version)
        return 1.0 / (1.0 + np.exp(-(feats @ head.weight + head.bias)))


def threshold_for(head: Head, text: str) -> float:
    """``head``'s threshold for ``text``: its English one when ``text`` looks English."""
    return head.threshold_en if head.threshold_en is not None and looks_english(text) else head.threshold


def _verdict(p: np.ndarray, head: Head, threshold: float) -> Verdict:
    score = float(unsafe_score(p[None], head.category_mix)[0])
    if score < threshold or p[1:].max() < head.category_floor:
        return SAFE
    cats = [CODES[i] for i in np.flatnonzero(p[1:] >= head.category_threshold)]
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
    texts: Sequence[str], hash_dim: int, embed_scale: float, encoder: SentenceEncoder | None,
    version: int = FEATURE_VERSION,
) -> np.ndarray:
    """(N, hash_dim [+ 384]) float32: hashed n-grams (features ``version``), then scaled sentence embeddings."""
    parts = [hashed_features(texts, hash_dim, version)]
    if embed_scale:
        if encoder is None:
            raise CheckpointError("this guard head needs the sentence encoder, but none was given")
        parts.append(embed_scale * encoder.encode(texts).numpy())
    return np.concatenate(parts, axis=1)


def load_classifier(path: Path | None = None, output_path: Path | None = None,
                    cue_rules: Sequence[CueRule] = SHIPPED_CUE_RULES,
                    phrase_rules: Sequence[PhraseRule] = SHIPPED_PHRASE_RULES,
                    english_path: Path | None = None, veto_path: Path | None = None) -> ClassifierGuard:
    """The classifier guard from a head file (for input and output, unless ``output_path`` names
    an output head; for English user text too, unless ``english_path`` names an English head), or by
    default the heads shipped with lhama (input head, output head, English head, veto head where they ship); with
    the shipped cue rules (S4 needs a sexual, secrecy or grooming cue) and phrase rules unless
    ``cue_rules`` / ``phrase_rules`` say otherwise."""
    if path is None:
        path = DEFAULT_HEAD
        output_path = DEFAULT_OUTPUT_HEAD if DEFAULT_OUTPUT_HEAD.is_file() else None
        english_path = DEFAULT_ENGLISH_HEAD if DEFAULT_ENGLISH_HEAD.is_file() else None
        veto_path = DEFAULT_VETO_HEAD if DEFAULT_VETO_HEAD.is_file() else None
    for p in (path, output_path, english_path, veto_path):
        if p is not None and not p.is_file():
            raise CheckpointError(f"guard head not found: {p} (train one with benchmarks/guard_train.py)")
    return ClassifierGuard(Head.load(path), output_head=Head.load(output_path) if output_path else None,
                           cue_rules=cue_rules, phrase_rules=phrase_rules,
                           english_head=Head.load(english_path) if english_path else None,
                           veto_head=Head.load(veto_path) if veto_path else None)
