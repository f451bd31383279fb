"""AdMIRe (SemEval-2025 Task 1) files -> validated items, English or Portuguese.

Subtask A: a sentence using a compound and five candidate images (names, captions, files under
``<tsv dir>/<compound>/``); the target ``expected_order`` ranks the images for the compound's
sense in the sentence. Subtask B: a sequence of image captions and candidate images; the target
``expected_item`` is the image that completes the sequence, and ``sentence_type`` says whether
the sequence shows the idiomatic or the literal sense. The Portuguese release adds
``image{n}_caption_pt`` columns (``lang="pt"`` reads them).

Every problem (missing column, malformed order, missing image) raises a one-line
:class:`~lhama.errors.DataError` naming the file, the item and the column.
"""

from __future__ import annotations

import ast
import csv
from dataclasses import dataclass
from pathlib import Path

from lhama.errors import DataError

SENTENCE_TYPES = ("idiomatic", "literal")
A_COLUMNS = ("compound", "sentence")
B_COLUMNS = ("compound", "sequence_caption1")
CLASSIFY_COLUMNS = ("compound", "sentence", "sentence_type")
MAX_CANDIDATES = 10


@dataclass(frozen=True)
class AdmireItem:
    """One Subtask A item (``expected`` is None where the file has no gold order)."""

    item_id: str  # the compound, made unique ("#2") if a file repeats it
    compound: str
    sentence: str
    sentence_type: str | None
    images: tuple[str, ...]  # candidate image file names, in file order
    captions: tuple[str, ...]  # one per image, in the chosen language
    expected: tuple[str, ...] | None
    image_dir: Path

    def image_path(self, name: str) -> Path:
        return self.image_dir / name


@dataclass(frozen=True)
class SequenceItem:
    """One Subtask B item: a sequence of captions, candidates, and the item that completes it."""

    item_id: str
    compound: str
    sentence_type: str | None
    sequence: tuple[str, ...]  # captions of the sequence images, in order
    images: tuple[str, ...]
    captions: tuple[str, ...]
    expected: str | None
    image_dir: Path

    def image_path(self, name: str) -> Path:
        return self.image_dir / name


@dataclass(frozen=True)
class SentenceItem:
    """A compound in a sentence with its gold sense (idiomatic/literal classification)."""

    compound: str
    sentence: str
    sentence_type: str


def read_tsv(path: str | Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a tab-separated file with a header; checks ``required`` columns and row widths."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"AdMIRe file not found: {path}")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(f"{path.name}: missing column {missing[0]!r} (columns: {', '.join(header) or 'none'})")
        rows = list(reader)
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise DataError(f"{path.name} line {line}: expected {len(header)} tab-separated fields")
    if not rows:
        raise DataError(f"{path.name} has a header but no items")
    return rows


def load_subtask_a(path: str | Path, lang: str = "en") -> list[AdmireItem]:
    """Read a Subtask A TSV (gold ``expected_order`` optional, as in test files)."""
    path = Path(path)
    rows = read_tsv(path, A_COLUMNS + _candidate_columns(lang, 1))
    items, seen = [], {}
    for row in rows:
        item_id = _unique_id(row["compound"], seen)
        images, captions = _candidates(row, lang, item_id, path.name)
        expected = _expected_order(row.get("expected_order", ""), images, item_id, path.name)
        items.append(AdmireItem(item_id, row["compound"], row["sentence"], _sentence_type(row, item_id, path.name),
                                images, captions, expected, _image_dir(path.parent, row["compound"])))
    return items


def load_subtask_b(path: str | Path, lang: str = "en") -> list[SequenceItem]:
    """Read a Subtask B TSV: ``sequence_caption{k}``, candidates, ``expected_item`` (optional)."""
    path = Path(path)
    rows = read_tsv(path, B_COLUMNS + _candidate_columns(lang, 1))
    items, seen = [], {}
    for row in rows:
        item_id = _unique_id(row["compound"], seen)
        images, captions = _candidates(row, lang, item_id, path.name)
        sequence = tuple(row[f"sequence_caption{k}"] for k in range(1, MAX_CANDIDATES + 1)
                         if row.get(f"sequence_caption{k}", "").strip())
        expected = row.get("expected_item", "").strip() or None
        if expected is not None and expected not in images:
            raise DataError(f"{path.name} item {item_id!r}: expected_item {expected!r} is not one of its images")
        items.append(SequenceItem(item_id, row["compound"], _sentence_type(row, item_id, path.name), sequence,
                                  images, captions, expected, _image_dir(path.parent, row["compound"])))
    return items


def load_sentences(path: str | Path) -> list[SentenceItem]:
    """Compound, sentence and gold sense from any AdMIRe TSV (en or pt, with or without images)."""
    path = Path(path)
    items = []
    for row in read_tsv(path, CLASSIFY_COLUMNS):
        sense = _sentence_type(row, row["compound"], path.name)
        if sense is None:
            raise DataError(f"{path.name} item {row['compound']!r}: sentence_type is empty")
        items.append(SentenceItem(row["compound"], row["sentence"], sense))
    return items


def check_images(items: list[AdmireItem] | list[SequenceItem]) -> None:
    """Raise if any candidate image file is missing (needed on the image track)."""
    for item in items:
        for name in item.images:
            if not item.image_path(name).is_file():
                raise DataError(f"item {item.item_id!r}: image {name} not found at {item.image_path(name)}")


def _candidate_columns(lang: str, n: int) -> tuple[str, ...]:
    return (f"image{n}_name", _caption_column(lang, n))


def _caption_column(lang: str, n: int) -> str:
    if lang not in ("en", "pt"):
        raise DataError(f"unknown language {lang!r}: use en or pt")
    return f"image{n}_caption" + ("_pt" if lang == "pt" else "")


def _candidates(row: dict[str, str], lang: str, item_id: str, source: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    images, captions = [], []
    for n in range(1, MAX_CANDIDATES + 1):
        name = row.get(f"image{n}_name", "").strip()
        if not name:
            continue
        column = _caption_column(lang, n)
        if column not in row:
            raise DataError(f"{source}: missing column {column!r} for item {item_id!r}")
        images.append(name)
        captions.append(row[column].replace("\\n", "\n").strip())
    if len(images) < 2 or len(set(images)) != len(images):
        raise DataError(f"{source} item {item_id!r}: needs at least two distinct image{{n}}_name values")
    return tuple(images), tuple(captions)


def _expected_order(text: str, images: tuple[str, ...], item_id: str, source: str) -> tuple[str, ...] | None:
    if not text.strip():
        return None
    try:
        order = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        raise DataError(f"{source} item {item_id!r}: expected_order is not a list of file names: {text[:60]!r}") from None
    if not isinstance(order, (list, tuple)) or sorted(map(str, order)) != sorted(images):
        raise DataError(f"{source} item {item_id!r}: expected_order must list each of its "
                        f"{len(images)} image names once, got {text[:80]!r}")
    return tuple(str(x) for x in order)


def _sentence_type(row: dict[str, str], item_id: str, source: str) -> str | None:
    value = row.get("sentence_type", "").strip().lower()
    if value and value not in SENTENCE_TYPES:
        raise DataError(f"{source} item {item_id!r}: sentence_type {value!r} is not idiomatic or literal")
    return value or None


def _unique_id(compound: str, seen: dict[str, int]) -> str:
    seen[compound] = seen.get(compound, 0) + 1
    return compound if seen[compound] == 1 else f"{compound}#{seen[compound]}"


def _image_dir(root: Path, compound: str) -> Path:
    """The release names folders after the compound; an apostrophe becomes ``_`` ("pig_s ear")."""
    plain = root / compound
    return plain if plain.is_dir() else root / compound.replace("'", "_")
