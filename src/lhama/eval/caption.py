"""Image captioning scored against human references with chrF and BLEU (sacrebleu).

Data: a folder (or its ``captions.tsv``) in the Tux Paint layout: columns ``file`` and one
reference column per language (``pt_BR`` by default), images under ``images/``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lhama.errors import DataError
from lhama.eval.answer import generate_answer, require_vision
from lhama.eval.cache import PredictionCache
from lhama.eval.metrics import bleu, chrf, content_word_match
from lhama.model.build import LoadedModel

PROMPTS = {"pt": "Descreva a imagem em uma frase curta.", "en": "Describe the image in one short sentence."}


@dataclass(frozen=True)
class CaptionItem:
    file: str
    reference: str
    image: Path


@dataclass(frozen=True)
class CaptionResult:
    chrf: float
    bleu: float
    n: int
    named: float  # share of captions with a content word of their reference (metrics.content_word_match)
    predictions: dict[str, str]


def load_captions(data: str | Path, column: str = "pt_BR", limit: int | None = None,
                  only: Sequence[str] | None = None) -> list[CaptionItem]:
    """Reference captions; ``data`` is the folder with ``captions.tsv`` or the TSV itself;
    ``only`` keeps just those file names (e.g. a hold-out split).

    Raises:
        DataError: no TSV, a missing column, or ``only`` naming files the data lacks."""
    path = Path(data)
    tsv = path / "captions.tsv" if path.is_dir() else path
    if not tsv.is_file():
        raise DataError(f"captions file not found: {tsv}")
    with tsv.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for needed in ("file", column):
            if needed not in (reader.fieldnames or []):
                raise DataError(f"{tsv.name}: missing column {needed!r} (columns: {', '.join(reader.fieldnames or [])})")
        rows = [r for r in reader if (r.get(column) or "").strip()]
    items = [CaptionItem(r["file"], r[column].strip(), tsv.parent / "images" / r["file"]) for r in rows]
    if only is not None:
        missing = sorted(set(only) - {i.file for i in items})
        if missing:
            raise DataError(f"{tsv.name}: {len(missing)} file(s) of the split are not in the data (e.g. {missing[0]})")
        items = [i for i in items if i.file in set(only)]
    return items[:limit] if limit else items


def evaluate_captions(loaded: LoadedModel, items: list[CaptionItem], cache: PredictionCache, lang: str = "pt",
                      on_item: Callable[[int], None] | None = None, use_images: bool = True) -> CaptionResult:
    """Caption every image (cached as it goes); corpus chrF and BLEU against the references.
    ``use_images=False`` asks the same question without the image (the LM's prior alone)."""
    if use_images:
        require_vision(loaded, "do image captioning")
    predictions = {}
    for item in items:
        record = cache.get("model", item.file)
        if record is None:
            images = [item.image] if use_images else []
            caption = generate_answer(loaded, PROMPTS[lang], images, max_new_tokens=32)
            record = cache.put("model", item.file, {"caption": caption})
        predictions[item.file] = record["caption"]
        if on_item is not None:
            on_item(1)
    hypotheses = [predictions[i.file] for i in items]
    references = [[i.reference for i in items]]
    named = content_word_match(hypotheses, references[0])
    return CaptionResult(chrf(hypotheses, references), bleu(hypotheses, references), len(items), named, predictions)
