"""Idiomatic or literal? Classify a compound's sense in its sentence with a language model.

The model reads the sentence (and, few-shot, a few solved examples from a train file) and the
two answers are compared by log-likelihood: the label whose word is more likely wins. Scores:
accuracy and macro-F1 over the two labels, English or Portuguese.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lhama.eval.admire import SENTENCE_TYPES, SentenceItem
from lhama.eval.cache import PredictionCache
from lhama.eval.metrics import accuracy, macro_f1
from lhama.eval.scoring import ScoreRequest, score_continuations
from lhama.model.build import LoadedModel


@dataclass(frozen=True)
class SensePrompt:
    """One language's question and answer words (templates are data)."""

    question: str  # {sentence} {compound}
    answers: dict[str, str]  # label -> the word the model should say


SENSE_PROMPTS = {
    "en": SensePrompt(
        question='Sentence: "{sentence}"\nIs "{compound}" used in its idiomatic (figurative) or literal sense here? '
                 "Answer idiomatic or literal.",
        answers={"idiomatic": "idiomatic", "literal": "literal"},
    ),
    "pt": SensePrompt(
        question='Frase: "{sentence}"\n"{compound}" está em sentido idiomático (figurado) ou literal aqui? '
                 "Responda idiomático ou literal.",
        answers={"idiomatic": "idiomático", "literal": "literal"},
    ),
}


@dataclass(frozen=True)
class IdiomResult:
    system: str
    accuracy: float
    macro_f1: float
    predictions: tuple[str, ...]


def sense_messages(compound: str, sentence: str, lang: str, shots: Sequence[SentenceItem] = ()) -> tuple[dict, ...]:
    """The chat messages asking for the sense, after ``shots`` solved examples."""
    prompt = SENSE_PROMPTS[lang]
    messages: list[dict] = []
    for shot in shots:
        messages.append({"role": "user", "content": prompt.question.format(sentence=shot.sentence, compound=shot.compound)})
        messages.append({"role": "assistant", "content": prompt.answers[shot.sentence_type]})
    messages.append({"role": "user", "content": prompt.question.format(sentence=sentence, compound=compound)})
    return tuple(messages)


def classify_senses(
    loaded: LoadedModel,
    items: Sequence[SentenceItem],
    lang: str,
    shots: Sequence[SentenceItem] = (),
    on_item: Callable[[int], None] | None = None,
) -> list[str]:
    """The more likely label ("idiomatic" or "literal") for each item."""
    answers = SENSE_PROMPTS[lang].answers
    labels = []
    for item in items:
        messages = sense_messages(item.compound, item.sentence, lang, shots)
        requests = [ScoreRequest(messages, answers[label]) for label in SENTENCE_TYPES]
        scores = score_continuations(loaded, requests, batch_size=len(requests))
        labels.append(max(zip(scores, SENTENCE_TYPES), key=lambda pair: pair[0].logprob)[1])
        if on_item is not None:
            on_item(1)
    return labels


def pick_shots(train: Sequence[SentenceItem], k: int, seed: int = 0) -> list[SentenceItem]:
    """``k`` train examples, balanced over the two labels, in a fixed-seed order."""
    rng = random.Random(seed)
    by_label = {label: [i for i in train if i.sentence_type == label] for label in SENTENCE_TYPES}
    for pool in by_label.values():
        rng.shuffle(pool)
    shots = [pool[j] for j in range(k) for pool in by_label.values() if j < len(pool)][:k]
    rng.shuffle(shots)
    return shots


def score_senses(system: str, items: Sequence[SentenceItem], predicted: Sequence[str]) -> IdiomResult:
    gold = [i.sentence_type for i in items]
    return IdiomResult(system, accuracy(gold, predicted), macro_f1(gold, predicted, SENTENCE_TYPES), tuple(predicted))


@dataclass(frozen=True)
class IdiomConfig:
    lang: str = "pt"  # prompt language: en or pt
    shots: int = 4  # few-shot examples from the train file (0: zero-shot only)
    seed: int = 0  # which train examples
    cache: Path | None = None  # JSONL prediction cache (resume); None: no cache


@dataclass
class SenseRun:
    """Classify items with one model, caching each label as soon as it exists."""

    loaded: LoadedModel
    lang: str
    cache: PredictionCache | None = None
    on_item: Callable[[int], None] | None = None

    def classify(self, items: Sequence[SentenceItem], shots: Sequence[SentenceItem], system: str) -> list[str]:
        labels = []
        for index, item in enumerate(items):
            key = f"{index}:{item.compound}"
            record = self.cache.get(system, key) if self.cache else None
            if record is None:
                record = {"label": classify_senses(self.loaded, [item], self.lang, shots)[0]}
                if self.cache:
                    self.cache.put(system, key, record)
            labels.append(record["label"])
            if self.on_item is not None:
                self.on_item(1)
        return labels


def evaluate_idiom(
    loaded: LoadedModel,
    items: Sequence[SentenceItem],
    train: Sequence[SentenceItem] = (),
    cfg: IdiomConfig = IdiomConfig(),
    on_item: Callable[[int], None] | None = None,
) -> list[IdiomResult]:
    """Majority-label baseline (from ``train``), the LM zero-shot, and few-shot with
    ``cfg.shots`` train examples; each scored by accuracy and macro-F1."""
    results = []
    if train:
        majority = max(SENTENCE_TYPES, key=lambda label: sum(i.sentence_type == label for i in train))
        results.append(score_senses(f"majority ({majority})", items, [majority] * len(items)))
    meta = {"task": "idiom", "model": loaded.name, **asdict(cfg), "cache": None}
    cache = PredictionCache(cfg.cache, meta) if cfg.cache else None
    run = SenseRun(loaded, cfg.lang, cache, on_item)
    results.append(score_senses(f"{loaded.name} zero-shot", items, run.classify(items, (), "zero-shot")))
    if train and cfg.shots > 0:
        few = run.classify(items, pick_shots(train, cfg.shots, cfg.seed), f"{cfg.shots}-shot")
        results.append(score_senses(f"{loaded.name} {cfg.shots}-shot", items, few))
    return results
