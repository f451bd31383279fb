"""The ``lhama eval`` tasks (idiom, VQA, captioning, retrieval) as one call each: a typed task
config in, the task's result out.

Each ``run_*`` reads the task's data first (bad data fails before any model loads), then the
model with the caller's ``load`` (the CLI's prepares a registered name, quantises as chat does
and shows progress), opens the prediction cache keyed by everything that changes the answers
(:func:`lhama.eval.cache.cache_meta`) and evaluates. ``progress(done, total)`` is called with
``(0, total)`` once the model is loaded, then with each item finished (``done`` = 1). AdMIRe
has its own config and call: :func:`lhama.eval.runner.evaluate_admire`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from lhama.errors import ConfigError
from lhama.eval.admire import load_sentences
from lhama.eval.cache import cache_meta, default_cache_path, open_cache
from lhama.eval.caption import CaptionItem, CaptionResult, evaluate_captions, load_captions
from lhama.eval.idiom import IdiomConfig, IdiomResult, evaluate_idiom
from lhama.eval.retrieval import RetrievalResult, check_scoring, evaluate_retrieval, make_trials
from lhama.eval.vqa import EASY_VQA, VqaResult, evaluate_vqa, load_vqa
from lhama.model.build import LoadedModel
from lhama.recipes.default.splits import read_file_list

Load = Callable[[str], LoadedModel]  # a model name or directory -> the loaded model
Progress = Callable[[int, int], None]  # (items done since the last call, total)


def _quiet(done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class IdiomTask:
    data: Path  # TSV with compound, sentence, sentence_type
    model: str  # a registered name or a model directory
    lang: str = "pt"  # prompt language: en or pt
    train: Path | None = None  # few-shot examples and the majority baseline
    shots: int = 4
    cache: Path | None = None  # prediction cache; default under $LHAMA_HOME/eval-cache


@dataclass(frozen=True)
class VqaTask:
    model: str
    data: str = EASY_VQA  # 'easy-vqa' or a LLaVA-style JSON with answers
    images: Path | None = None  # image folder of a JSON file (default: its folder)
    lang: str = "en"
    limit: int | None = None  # first N items only
    cache: Path | None = None
    image_guidance: float | None = None  # None: the model's own (its lhama_generation.json)

    def __post_init__(self) -> None:
        _check_guidance(self.image_guidance)


@dataclass(frozen=True)
class CaptionTask:
    data: Path  # folder with captions.tsv and images/
    model: str
    column: str = "pt_BR"  # reference column
    lang: str = "pt"
    split: Path | None = None  # only the images this file lists
    use_images: bool = True  # False: the LM's guess without the image (a baseline)
    limit: int | None = None
    cache: Path | None = None
    image_guidance: float | None = None

    def __post_init__(self) -> None:
        _check_guidance(self.image_guidance)


@dataclass(frozen=True)
class RetrievalTask:
    data: Path
    model: str
    column: str = "pt_BR"
    choices: int = 5  # captions per image: its own + choices - 1 others
    seed: int = 0  # draws the other captions (every model sees the same trials)
    split: Path | None = None
    use_images: bool = True
    limit: int | None = None
    cache: Path | None = None
    scoring: str = "pmi"  # lhama.eval.retrieval.SCORINGS (session 12 of #26: pmi, chosen on dev)

    def __post_init__(self) -> None:
        check_scoring(self.scoring)


def run_idiom(task: IdiomTask, load: Load, progress: Progress = _quiet) -> list[IdiomResult]:
    """Majority baseline, zero-shot and few-shot results (``lhama.eval.idiom.evaluate_idiom``)."""
    items = load_sentences(task.data)
    train_items = load_sentences(task.train) if task.train else []
    loaded = load(task.model)
    meta = cache_meta("idiom", task.data, task.model, lang=task.lang, train=str(task.train), shots=task.shots)
    cfg = IdiomConfig(task.lang, task.shots, cache=task.cache or default_cache_path(meta))
    total = len(items) * (2 if train_items and task.shots else 1)
    progress(0, total)
    return evaluate_idiom(loaded, items, train_items, cfg, lambda n: progress(n, total))


def run_vqa(task: VqaTask, load: Load, progress: Progress = _quiet) -> VqaResult:
    """Normalised exact-match accuracy of the model's answers (``lhama.eval.vqa``)."""
    items = load_vqa(task.data, task.images, task.limit)
    loaded = _guided(load(task.model), task.image_guidance)
    store = open_cache(cache_meta("vqa", task.data, task.model, lang=task.lang,
                                  image_guidance=loaded.generation.image_guidance), task.cache)
    progress(0, len(items))
    return evaluate_vqa(loaded, items, store, task.lang, lambda n: progress(n, len(items)))


def run_captions(task: CaptionTask, load: Load, progress: Progress = _quiet) -> CaptionResult:
    """chrF, BLEU and content-word match of the model's captions (``lhama.eval.caption``)."""
    items = _captions(task.data, task.column, task.limit, task.split)
    loaded = _guided(load(task.model), task.image_guidance)
    store = open_cache(cache_meta("caption", task.data, task.model, column=task.column, lang=task.lang,
                                  split=str(task.split), image=task.use_images,
                                  image_guidance=loaded.generation.image_guidance), task.cache)
    progress(0, len(items))
    return evaluate_captions(loaded, items, store, task.lang, lambda n: progress(n, len(items)),
                             use_images=task.use_images)


def run_retrieval(task: RetrievalTask, load: Load, progress: Progress = _quiet) -> RetrievalResult:
    """Top-1 of each image's own caption among ``choices`` (``lhama.eval.retrieval``)."""
    trials = make_trials(_captions(task.data, task.column, task.limit, task.split), task.choices, task.seed)
    loaded = load(task.model)
    store = open_cache(cache_meta("retrieval", task.data, task.model, column=task.column, choices=task.choices,
                                  seed=task.seed, split=str(task.split), image=task.use_images,
                                  system=loaded.generation.system_prompt), task.cache)  # scored after it, as chat
    progress(0, len(trials))
    return evaluate_retrieval(loaded, trials, store, task.use_images, lambda n: progress(n, len(trials)), task.scoring)


def _captions(data: Path, column: str, limit: int | None, split: Path | None) -> list[CaptionItem]:
    return load_captions(data, column, limit, read_file_list(split) if split else None)


def _guided(loaded: LoadedModel, image_guidance: float | None) -> LoadedModel:
    """``loaded`` decoding with ``image_guidance`` instead of its own when one is given."""
    if image_guidance is not None:
        loaded.generation = replace(loaded.generation, image_guidance=image_guidance)
    return loaded


def _check_guidance(image_guidance: float | None) -> None:
    if image_guidance is not None and image_guidance < 0:
        raise ConfigError(f"image_guidance must be >= 0, got {image_guidance}")
