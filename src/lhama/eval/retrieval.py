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

A picture's prompt is prefilled once and each candidate scores only its own tokens after it; the
system prompt's keys/values are kept from picture to picture (:class:`lhama.eval.scoring.PromptScorer`;
session 11 of #26: before, 5 full prompts per picture, ~45 s a picture for lhama-default at 1 thread).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lhama.errors import DataError
from lhama.eval.answer import chat_messages, require_vision, shown_image
from lhama.eval.cache import PredictionCache
from lhama.eval.caption import CaptionItem
from lhama.eval.scoring import PromptScorer
from lhama.model.build import LoadedModel

PROMPT = "Descreva a imagem brevemente."


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
                       use_images: bool = True, on_item: Callable[[int], None] | None = None) -> RetrievalResult:
    """Score each trial's candidates (cached per image as it goes); top-1 accuracy."""
    if use_images:
        require_vision(loaded, "do image-caption retrieval")
    picks, correct, scorer = {}, 0, PromptScorer(loaded)
    for trial in trials:
        record = cache.get("model", trial.item.file)
        if record is None:
            scores = _scores(scorer, trial, use_images)
            record = cache.put("model", trial.item.file, {"scores": scores, "candidates": list(trial.candidates)})
        best = max(range(len(record["scores"])), key=record["scores"].__getitem__)
        picks[trial.item.file] = record["candidates"][best]
        correct += record["candidates"][best] == trial.item.reference
        if on_item is not None:
            on_item(1)
    return RetrievalResult(correct / max(len(trials), 1), len(trials), len(trials[0].candidates) if trials else 0, picks)


def _scores(scorer: PromptScorer, trial: RetrievalTrial, use_images: bool) -> list[float]:
    loaded = scorer.loaded
    if use_images:
        shown, media = shown_image(loaded, trial.item.image)  # a cascade model: its labeler's note, no media
        messages = chat_messages(loaded, f"{shown}\n{PROMPT}")
    else:
        messages, media = chat_messages(loaded, PROMPT), {}
    return [s.logprob for s in scorer.score(messages, trial.candidates, media)]
