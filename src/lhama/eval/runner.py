"""Run an AdMIRe evaluation: load items, rank them with every system, score, write results.

    results = evaluate_admire(AdmireConfig(data=Path("dev/subtask_a_dev.tsv"), model="gemma-3-270m",
                                           text_only=True))
    write_metrics(results, "metrics.json"); write_submission(results, "submission.tsv")

Baselines (random, MiniLM) run on the same items in the same run. Every prediction goes to a
JSONL cache as soon as it exists (:mod:`lhama.eval.cache`), so a crashed run resumes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from lhama.errors import ConfigError, DataError
from lhama.eval.admire import AdmireItem, SequenceItem, check_images, load_subtask_a, load_subtask_b
from lhama.eval.answer import require_vision
from lhama.eval.cache import PredictionCache, model_fingerprint
from lhama.eval.metrics import accuracy, group_counts, ranking_metrics
from lhama.eval.rankers import MiniLMRanker, ModelRanker, RandomRanker, Ranker, Ranking
from lhama.files import atomic_write_text
from lhama.model.build import LoadedModel, load_model
from lhama.model.embeddings import SentenceEncoder
from lhama.weights.registry import lhama_home
from lhama.weights.resolve import resolve

BASELINES = ("random", "minilm")
Progress = Callable[[str, int, int], None]  # (system, done, total)


@dataclass(frozen=True)
class AdmireConfig:
    data: Path  # a Subtask A or B TSV; images under <its dir>/<compound>/
    model: str | None = None  # registered name or model dir; None = baselines only
    lang: Literal["en", "pt"] = "en"
    text_only: bool = False  # captions instead of images for the model
    subtask: Literal["a", "b"] = "a"
    baselines: tuple[str, ...] = BASELINES
    seed: int = 0  # random baseline
    caption_words: int = 60  # model prompt: captions cut to this many words
    limit: int | None = None  # first N items only (quick looks; never for reported numbers)
    cache: Path | None = None  # prediction cache; default under $LHAMA_HOME/eval-cache


@dataclass
class SystemResult:
    name: str
    kind: str  # "model" or "baseline"
    rankings: dict[str, Ranking]  # item id -> ranking
    metrics: dict = field(default_factory=dict)


@dataclass
class AdmireResults:
    config: AdmireConfig
    items: list[AdmireItem] | list[SequenceItem]
    systems: list[SystemResult]

    @property
    def primary(self) -> SystemResult:
        """The model's result if a model ran, else the first baseline."""
        return next((s for s in self.systems if s.kind == "model"), self.systems[0])


def evaluate_admire(cfg: AdmireConfig, progress: Progress | None = None, loaded: LoadedModel | None = None) -> AdmireResults:
    """Rank every item with each baseline and the model, then score the rankings."""
    items = _load_items(cfg)
    rankers = _rankers(cfg, loaded)
    if not rankers:
        raise ConfigError("nothing to evaluate: give --model or at least one baseline")
    if any(isinstance(r, ModelRanker) and not r.text_only for r in rankers):
        check_images(items)
    cache = PredictionCache(cfg.cache or default_cache_path(cfg), _cache_meta(cfg))
    systems = []
    for ranker in rankers:
        rankings = _rank_all(ranker, items, cache, progress)
        kind = "model" if isinstance(ranker, ModelRanker) else "baseline"
        systems.append(SystemResult(ranker.name, kind, rankings, score_rankings(items, rankings)))
    return AdmireResults(cfg, items, systems)


def _load_items(cfg: AdmireConfig) -> list:
    items = load_subtask_a(cfg.data, cfg.lang) if cfg.subtask == "a" else load_subtask_b(cfg.data, cfg.lang)
    items = items[: cfg.limit] if cfg.limit else items
    unlabeled = [i.item_id for i in items if i.expected is None]
    if unlabeled:
        raise DataError(f"{Path(cfg.data).name} item {unlabeled[0]!r} has no gold answer "
                        f"({'expected_order' if cfg.subtask == 'a' else 'expected_item'} is empty); "
                        "evaluation needs a labelled split (train or dev)")
    return items


def _rankers(cfg: AdmireConfig, loaded: LoadedModel | None) -> list[Ranker]:
    unknown = sorted(set(cfg.baselines) - set(BASELINES))
    if unknown:
        raise ConfigError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(BASELINES)}")
    rankers: list[Ranker] = []
    if "random" in cfg.baselines:
        rankers.append(RandomRanker(cfg.seed))
    if "minilm" in cfg.baselines:
        rankers.append(MiniLMRanker(SentenceEncoder()))
    if loaded is None and cfg.model is not None:
        loaded = load_model(resolve(cfg.model, cfg.model))
    if loaded is not None:
        if not cfg.text_only:
            require_vision(loaded, "rank images",
                           "add --text-only (it reads the image captions) or pass a model with a vision tower")
        track = "text" if cfg.text_only else "image"
        rankers.append(ModelRanker(loaded, cfg.lang, cfg.text_only, cfg.caption_words, f"{loaded.name} ({track})"))
    return rankers


def _rank_all(ranker: Ranker, items: list, cache: PredictionCache, progress: Progress | None) -> dict[str, Ranking]:
    rankings = {}
    for done, item in enumerate(items, start=1):
        record = cache.get(ranker.name, item.item_id)
        if record is None:
            ranking = ranker.rank(item)
            record = cache.put(ranker.name, item.item_id, asdict(ranking))
        rankings[item.item_id] = Ranking(tuple(record["order"]), tuple(record["scores"]), record.get("sentence_type"))
        if progress is not None:
            progress(ranker.name, done, len(items))
    return rankings


def score_rankings(items: list, rankings: dict[str, Ranking]) -> dict:
    """Official metrics of one system: Subtask A top-1 / DCG / Spearman per sentence type;
    Subtask B item accuracy per sentence type and, if predicted, sentence-type accuracy."""
    types = [i.sentence_type or "unknown" for i in items]
    if items and isinstance(items[0], AdmireItem):
        rows = [(i.expected, rankings[i.item_id].order, t) for i, t in zip(items, types)]
        return {**ranking_metrics(rows), "n": group_counts(types)}
    rows = [((i.expected,), rankings[i.item_id].order[:1], t) for i, t in zip(items, types)]
    scores = {"item_accuracy": _top1_only(rows), "n": group_counts(types)}
    senses = [rankings[i.item_id].sentence_type for i in items]
    if all(s is not None for s in senses) and all(i.sentence_type for i in items):
        scores["sentence_type_accuracy"] = accuracy([i.sentence_type for i in items], senses)
    return scores


def _top1_only(rows: list) -> dict:
    hits = [(float(p[0] == e[0]), t) for e, p, t in rows]
    return {g: _mean([h for h, t in hits if g == "all" or t == g]) for g in ("all", "idiomatic", "literal")}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def default_cache_path(cfg: AdmireConfig) -> Path:
    """One cache file per (data, model, language, track) under ``$LHAMA_HOME/eval-cache``."""
    key = hashlib.sha256(json.dumps(_cache_meta(cfg), sort_keys=True).encode()).hexdigest()[:16]
    return lhama_home() / "eval-cache" / f"admire-{Path(cfg.data).stem}-{key}.jsonl"


def _cache_meta(cfg: AdmireConfig) -> dict:
    data = Path(cfg.data).resolve()
    return {
        "task": f"admire-{cfg.subtask}", "data": str(data), "data_sha256": _sha256(data), "lang": cfg.lang,
        "text_only": cfg.text_only, "seed": cfg.seed, "caption_words": cfg.caption_words,
        "model": model_fingerprint(cfg.model),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_metrics(results: AdmireResults, path: str | Path) -> Path:
    """JSON: the primary system's metrics at the top level (``top1``, ``dcg``, ``spearman``,
    each with ``all``/``idiomatic``/``literal``), plus every system under ``systems``."""
    primary = results.primary
    payload = {"system": primary.name, **primary.metrics, "subtask": results.config.subtask,
               "lang": results.config.lang, "text_only": results.config.text_only,
               "data": str(results.config.data), "systems": {s.name: s.metrics for s in results.systems}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(Path(path), json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def write_submission(results: AdmireResults, path: str | Path, system: str | None = None) -> Path:
    """The official submission TSV: ``compound`` and ``expected_order`` (A) / ``expected_item``
    and ``sentence_type`` (B), from the primary system unless ``system`` is named."""
    chosen = next((s for s in results.systems if s.name == system), None) if system else results.primary
    if chosen is None:
        raise ConfigError(f"no system named {system!r} in this run")
    if results.config.subtask == "a":
        lines = ["compound\texpected_order"]
        lines += [f"{i.compound}\t{list(chosen.rankings[i.item_id].order)}" for i in results.items]
    else:
        lines = ["compound\texpected_item\tsentence_type"]
        lines += [f"{i.compound}\t{chosen.rankings[i.item_id].order[0]}\t{chosen.rankings[i.item_id].sentence_type or ''}"
                  for i in results.items]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(Path(path), "\n".join(lines) + "\n")
