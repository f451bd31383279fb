"""Image -> caption retrieval by model log-likelihood, N-way (the default model's "does it see?"
test): for each image, its own caption and ``choices - 1`` captions of other images (drawn with
a fixed seed) are scored as the answer to a describe prompt; top-1 = own caption ranked first.
Chance is ``1 / choices``. The prompt is the one ``lhama chat`` sends: the model's own system
prompt, then the image (its placeholder, or a cascade model's labeler note) and the question
(:func:`lhama.eval.answer.chat_messages`; before session 11 of #26 it had no system prompt, so a
Qwen template put its English default there).

Data: any folder in the Tux Paint layout (``captions.tsv`` + ``images/``), see
:func:`lhama.eval.caption.load_captions`. ``use_images=False`` scores the same candidates with the
image left out of the prompt: the language model's prior alone.

Scoring (session 12 of #26, chosen on dev): ``pmi``, the default, ranks a caption by its
log-probability after the picture minus its log-probability after the same prompt without the
picture (pointwise mutual information with a caption-only prior: a short, common caption no longer
wins by being likely whatever the picture); ``logprob`` is the summed log-probability alone (before
session 12). Both are in each cache record (``scores``, ``prior``), so one run reports both.

A picture's prompt is prefilled once and each candidate scores only its own tokens after it; the
system prompt's keys/values are kept from picture to picture (:class:`lhama.eval.scoring.PromptScorer`;
session 11 of #26: before, 5 full prompts per picture, ~45 s a picture for lhama-default at 1 thread).
The prior's prompt is the same for every picture, so a caption's prior is scored once per run and
remembered (:class:`CaptionPrior`; session 13 of #26: about 5x fewer prior scorings on a set whose
captions recur as distractors); priors already in the cache seed it, so a resumed run scores none twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lhama.errors import ConfigError, DataError
from lhama.eval.answer import chat_messages, require_vision, shown_image
from lhama.eval.cache import PredictionCache
from lhama.eval.caption import CaptionItem
from lhama.eval.scoring import PromptScorer
from lhama.model.build import LoadedModel

PROMPT = "Descreva a imagem brevemente."
SCORINGS = ("pmi", "logprob")


@dataclass(frozen=True)
class RetrievalTrial:
    item: CaptionItem
    candidates: tuple[str, ...]  # captions in a shuffled order
    answer: int  # index of the item's own caption in ``candidates``


@dataclass(frozen=True)
class RetrievalResult:
    top1: float
    n: int
    choices: int
    picks: dict[str, str]  # file -> the caption the model ranked first
    scoring: str = "logprob"
    top1_logprob: float | None = None  # the summed log-probability's top-1 on the same scores


def make_trials(items: Sequence[CaptionItem], choices: int = 5, seed: int = 0) -> list[RetrievalTrial]:
    """One trial per item: its caption among ``choices - 1`` distinct other captions.

    Raises:
        DataError: fewer than ``choices`` distinct captions in the data."""
    pool = sorted({i.reference for i in items})
    if choices < 2 or len(pool) < choices:
        raise DataError(f"{choices}-way retrieval needs at least {choices} distinct captions; the data has {len(pool)}")
    rng = random.Random(seed)
    trials = []
    for item in items:
        others = rng.sample([c for c in pool if c != item.reference], choices - 1)
        candidates = [item.reference, *others]
        rng.shuffle(candidates)
        trials.append(RetrievalTrial(item, tuple(candidates), candidates.index(item.reference)))
    return trials


def evaluate_retrieval(loaded: LoadedModel, trials: Sequence[RetrievalTrial], cache: PredictionCache,
                       use_images: bool = True, on_item: Callable[[int], None] | None = None,
                       scoring: str = "pmi") -> RetrievalResult:
    """Score each trial's candidates (cached per image as it goes); top-1 accuracy by ``scoring``
    (:data:`SCORINGS`; without images there is no picture to take out, so ``logprob``).

    Raises:
        ConfigError: an unknown scoring."""
    check_scoring(scoring)
    if use_images:
        require_vision(loaded, "do image-caption retrieval")
    scoring = scoring if use_images else "logprob"
    picks, correct, plain = {}, 0, 0
    scorer, prior = PromptScorer(loaded), CaptionPrior(loaded)  # each keeps its own prompt's keys/values
    for trial in trials:
        record = cache.get("model", trial.item.file)
        if record is None or (scoring == "pmi" and "prior" not in record):
            record = dict(record or {"scores": _scores(scorer, trial, use_images), "candidates": list(trial.candidates)})
            if scoring == "pmi":
                record["prior"] = prior.scores(trial.candidates)
            record = cache.put("model", trial.item.file, record)
        elif "prior" in record:
            prior.remember(record["candidates"], record["prior"])
        picks[trial.item.file] = record["candidates"][_best(ranked(record, scoring))]
        correct += picks[trial.item.file] == trial.item.reference
        plain += record["candidates"][_best(record["scores"])] == trial.item.reference
        if on_item is not None:
            on_item(1)
    n = max(len(trials), 1)
    return RetrievalResult(correct / n, len(trials), len(trials[0].candidates) if trials else 0, picks, scoring, plain / n)


class CaptionPrior:
    """Each caption's log-probability after the describe prompt without a picture (PMI's prior).
    The prompt is the same for every trial, so the prior depends only on the caption: each distinct
    caption is scored once and remembered."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.scorer = PromptScorer(loaded)
        self.known: dict[str, float] = {}
        self.scored = 0  # captions run through the model so far

    def scores(self, captions: Sequence[str]) -> list[float]:
        """The prior of each of ``captions``, in order."""
        wanted = [c for c in dict.fromkeys(captions) if c not in self.known]
        if wanted:
            self.known.update(zip(wanted, self._score(wanted), strict=True))
        return [self.known[c] for c in captions]

    def remember(self, captions: Sequence[str], values: Sequence[float]) -> None:
        """Take priors already computed (a cache record's) as known."""
        for caption, value in zip(captions, values, strict=True):
            self.known.setdefault(caption, value)

    def _score(self, captions: list[str]) -> list[float]:
        self.scored += len(captions)
        messages = chat_messages(self.scorer.loaded, PROMPT)
        return [s.logprob for s in self.scorer.score(messages, captions)]


def check_scoring(scoring: str) -> None:
    """ConfigError unless ``scoring`` is one of :data:`SCORINGS`."""
    if scoring not in SCORINGS:
        raise ConfigError(f"unknown retrieval scoring {scoring!r} (choose from {', '.join(SCORINGS)})")


def ranked(record: dict, scoring: str) -> list[float]:
    """The values a cache record's candidates are ranked by under ``scoring``."""
    if scoring == "pmi":
        return [s - p for s, p in zip(record["scores"], record["prior"], strict=True)]
    return list(record["scores"])


def _best(values: Sequence[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def _scores(scorer: PromptScorer, trial: RetrievalTrial, use_images: bool) -> list[float]:
    loaded = scorer.loaded
    if use_images:
        shown, media = shown_image(loaded, trial.item.image)  # a cascade model: its labeler's note, no media
        messages = chat_messages(loaded, f"{shown}\n{PROMPT}")
    else:
        messages, media = chat_messages(loaded, PROMPT), {}
    return [s.logprob for s in scorer.score(messages, trial.candidates, media)]
