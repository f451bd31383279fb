"""Visual question answering: normalised exact-match accuracy (VQAv2 style).

Data: ``easy-vqa`` (the PyPI package ``easy-vqa`` ships its test questions and images), or any
LLaVA-style JSON: a list of records with ``image`` (relative to ``--images`` or the JSON's
folder), a question (first human turn of ``conversations``, or ``question``) and the references
(``answers`` list, or the first gpt turn).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lhama.errors import DataError
from lhama.eval.answer import generate_answer, require_vision
from lhama.eval.cache import PredictionCache
from lhama.eval.metrics import normalize_answer, vqa_accuracy
from lhama.model.build import LoadedModel

EASY_VQA = "easy-vqa"
# LLaVA-1.5's short-answer instruction, in the prompt language.
SHORT_ANSWER = {"en": "Answer the question using a single word or phrase.",
                "pt": "Responda à pergunta com uma única palavra ou expressão."}


@dataclass(frozen=True)
class VqaItem:
    qid: str
    question: str
    answers: tuple[str, ...]
    image: Path


@dataclass(frozen=True)
class VqaResult:
    accuracy: float
    n: int
    predictions: dict[str, str]  # qid -> answer


def load_vqa(data: str | Path, images: Path | None = None, limit: int | None = None) -> list[VqaItem]:
    """Questions from ``easy-vqa`` or a LLaVA-style JSON file (first ``limit`` only)."""
    items = _easy_vqa() if str(data) == EASY_VQA else _llava_json(Path(data), images)
    return items[:limit] if limit else items


def evaluate_vqa(loaded: LoadedModel, items: list[VqaItem], cache: PredictionCache, lang: str = "en",
                 on_item: Callable[[int], None] | None = None) -> VqaResult:
    """Answer every question (cached as it goes) and score against the references."""
    require_vision(loaded, "do visual question answering")
    predictions, scores = {}, []
    for item in items:
        record = cache.get("model", item.qid)
        if record is None:
            text = f"{item.question}\n{SHORT_ANSWER[lang]}"
            answer = generate_answer(loaded, text, [item.image])
            record = cache.put("model", item.qid, {"answer": answer, "normalized": normalize_answer(answer)})
        predictions[item.qid] = record["answer"]
        scores.append(vqa_accuracy(record["answer"], item.answers))
        if on_item is not None:
            on_item(1)
    return VqaResult(sum(scores) / len(scores) if scores else 0.0, len(scores), predictions)


def _easy_vqa() -> list[VqaItem]:
    spec = importlib.util.find_spec("easy_vqa")
    if spec is None or spec.origin is None:
        raise DataError("easy-vqa is not installed: run `pip install easy-vqa==1.0`")
    root = Path(spec.origin).parent / "data" / "test"
    records = json.loads((root / "questions.json").read_text(encoding="utf-8"))
    return [VqaItem(f"easy-vqa-test-{i}", q, (a,), root / "images" / f"{image_id}.png")
            for i, (q, a, image_id) in enumerate(records)]


def _llava_json(path: Path, images: Path | None) -> list[VqaItem]:
    if not path.is_file():
        raise DataError(f"VQA file not found: {path} (or pass --data easy-vqa)")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(records, list):
        raise DataError(f"{path.name} must hold a JSON list of records")
    root = images or path.parent
    return [_llava_record(record, i, root, path.name) for i, record in enumerate(records)]


def _llava_record(record: dict, index: int, root: Path, source: str) -> VqaItem:
    qid = str(record.get("id", record.get("question_id", index))) if isinstance(record, dict) else str(index)
    if not isinstance(record, dict) or not record.get("image"):
        raise DataError(f"{source} record {qid}: no 'image' field")
    turns = record.get("conversations") or []
    question = record.get("question") or next((t.get("value", "") for t in turns if t.get("from") == "human"), "")
    answers = record.get("answers") or [t.get("value", "") for t in turns if t.get("from") == "gpt"][:1]
    answers = [a["answer"] if isinstance(a, dict) else str(a) for a in answers]
    if not question.strip() or not answers:
        raise DataError(f"{source} record {qid}: needs a question and at least one answer")
    question = question.replace("<image>", "").strip()
    return VqaItem(qid, question, tuple(answers), root / record["image"])
