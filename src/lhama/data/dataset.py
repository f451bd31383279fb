"""Training data files -> samples: LLaVA-Instruct JSON/JSONL conversations or image-caption
pairs (TSV, JSON, JSONL), each a :class:`Sample` with its messages and image path.

Bad records are never lost silently: each one is counted with its reason in a
:class:`LoadReport` (or, with ``strict=True``, the first one raises a :class:`DataError`).
"""

from __future__ import annotations

import csv
import json
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from lhama.data.video import check_video
from lhama.errors import DataError

ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


@dataclass(frozen=True)
class DatasetConfig:
    path: str = ""  # .json (LLaVA list or caption list), .jsonl, or .tsv (captions)
    image_dir: str | None = None  # image (and video) paths are relative to it; default: the file's folder
    format: Literal["auto", "llava", "captions"] = "auto"  # auto: records with "conversations" are llava
    image_column: str = "file"  # caption files: the image path column ("image" is also tried)
    caption_column: str = "pt_BR"  # caption files: the caption column ("caption" is also tried)
    caption_prompt: str = "<image>\nDescreva a imagem brevemente."  # the user turn of a caption pair
    strict: bool = False  # True: the first bad record is an error instead of being skipped
    eval_fraction: float = 0.0  # share of records held out for evaluation, chosen by a hash of the id

    def __post_init__(self) -> None:
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"data.eval_fraction must be in [0, 1), got {self.eval_fraction}")


@dataclass(frozen=True)
class Sample:
    id: str
    messages: tuple[dict[str, str], ...]  # {"role": "user" | "assistant" | "system", "content"}
    image: Path | None = None
    video: Path | None = None  # a record's "video" field (both formats); "<video>" marks it in the text
    audio: Path | None = None  # a sound file (wav, flac, ogg, mp3...) for the <audio> placeholder
    # Files of further branch kinds (one registered with lhama.model.branches.register), by kind
    # name: a record's key of that name (load_samples' ``kinds``).
    media: Mapping[str, Path] = field(default_factory=dict)


@dataclass
class LoadReport:
    """Samples kept, and skipped records counted by reason (with one example each)."""

    samples: list[Sample] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first record id

    def skip(self, reason: str, record_id: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, record_id)

    def summary(self) -> str:
        """One line: kept count and each skip reason with its count and an example."""
        total = len(self.samples) + sum(self.skipped.values())
        parts = [f"{reason} x{n} (e.g. {self.examples[reason]})" for reason, n in self.skipped.most_common()]
        return f"{len(self.samples)} of {total} records kept" + (f"; skipped: {'; '.join(parts)}" if parts else "")


def load_samples(config: DatasetConfig, kinds: Mapping[str, str] | None = None) -> LoadReport:
    """Read ``config.path`` into samples, checking every referenced image exists and opens.
    ``kinds``: further branch kinds (registered ones beyond image, video and audio) -> their
    placeholder; a record's key of a kind's name is its file (relative to ``image_dir``, checked
    to exist, like ``"audio"``), kept in ``Sample.media``.

    Raises:
        DataError: missing/unparsable file, no usable record, or (strict) any bad record.
    """
    path = Path(config.path)
    if not config.path or not path.is_file():
        raise DataError(f"data file not found: {config.path or '(data.path is empty)'}")
    image_dir = Path(config.image_dir) if config.image_dir else path.parent
    report = LoadReport()
    for index, record in enumerate(_read_records(path)):
        record_id = _record_id(record, index, config)
        try:
            report.samples.append(_to_sample(record, record_id, config, image_dir, kinds or {}))
        except DataError as exc:
            if config.strict:
                raise DataError(f"{path} record {record_id}: {exc} (strict=true)") from None
            report.skip(str(exc).split(":")[0], record_id)
    if not report.samples:
        raise DataError(f"{path} has no usable records ({report.summary()})")
    return report


def split_samples(samples: Sequence[Sample], eval_fraction: float) -> tuple[list[Sample], list[Sample]]:
    """(train, eval): a stable split by a hash of each sample id, independent of file order."""
    cut = eval_fraction * 10_000
    held = [s for s in samples if _bucket(s.id) < cut]
    train = [s for s in samples if _bucket(s.id) >= cut]
    return train, held


def _bucket(sample_id: str) -> int:
    return zlib.crc32(sample_id.encode()) % 10_000


def _record_id(record: Any, index: int, config: DatasetConfig) -> str:
    """The record's ``id``, else its image name (caption files), else its 0-based index."""
    if not isinstance(record, dict):
        return str(index)
    return str(record.get("id") or record.get(config.image_column) or record.get("image") or index)


def _read_records(path: Path) -> Iterator[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text") from None
    if path.suffix == ".tsv":
        yield from csv.DictReader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    elif path.suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield _parse_json(line, f"{path} line {n}")
    else:
        data = _parse_json(text, str(path))
        if not isinstance(data, list):
            raise DataError(f"{path} must hold a JSON list of records")
        yield from data


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where} is not valid JSON: {exc}") from None


def _to_sample(record: Any, record_id: str, config: DatasetConfig, image_dir: Path, kinds: Mapping[str, str]) -> Sample:
    if not isinstance(record, dict):
        raise DataError("malformed record: not an object")
    is_llava = config.format == "llava" or (config.format == "auto" and "conversations" in record)
    messages = _llava_messages(record) if is_llava else _caption_messages(record, config)
    image_name = record.get("image") if is_llava else _first(record, (config.image_column, "image"))
    image = _check_image(image_dir / image_name) if image_name else None
    if image is None and any("<image>" in m["content"] for m in messages):
        raise DataError("malformed record: <image> in the text but no image field")
    media = {kind: _media_path(record, messages, image_dir, kind, mark) for kind, mark in kinds.items()}
    return Sample(record_id, messages, image, video=_video(record, messages, image_dir),
                  audio=_media_path(record, messages, image_dir, "audio", "<audio>"),
                  media={kind: path for kind, path in media.items() if path is not None})


def _video(record: dict, messages: tuple[dict[str, str], ...], media_dir: Path) -> Path | None:
    """The record's checked video path; its text must hold ``<video>`` exactly when it has one."""
    marked = any("<video>" in m["content"] for m in messages)
    if not record.get("video"):
        if marked:
            raise DataError("malformed record: <video> in the text but no video field")
        return None
    if not marked:
        raise DataError("malformed record: a video field but no <video> in the text")
    path = media_dir / str(record["video"])
    if not path.is_file():
        raise DataError(f"video not found: {path}")
    try:
        check_video(path)  # the header only; frames are decoded when batched
    except DataError as exc:
        raise DataError(f"video unreadable: {exc}") from None
    return path


def _media_path(record: dict, messages: tuple[dict[str, str], ...], media_dir: Path, key: str,
                placeholder: str) -> Path | None:
    """The record's ``key`` file (``audio``, a registered kind's name; relative to the media
    folder); existence is checked here, decoding (and its errors, by name) happens when the batch
    is built. The placeholder in the text without the key is a malformed record."""
    name = record.get(key)
    if not name:
        if any(placeholder in m["content"] for m in messages):
            raise DataError(f"malformed record: {placeholder} in the text but no {key} field")
        return None
    path = media_dir / str(name)
    if not path.is_file():
        raise DataError(f"{key} not found: {path}")
    return path


def _llava_messages(record: dict) -> tuple[dict[str, str], ...]:
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise DataError("malformed record: no conversations list")
    messages = []
    for turn in turns:
        role = ROLES.get(turn.get("from", "")) if isinstance(turn, dict) else None
        if role is None or not isinstance(turn.get("value"), str):
            raise DataError("malformed record: a turn without a known 'from' or a text 'value'")
        messages.append({"role": role, "content": turn["value"]})
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError("no assistant turn: nothing to learn from")
    return tuple(messages)


def _caption_messages(record: dict, config: DatasetConfig) -> tuple[dict[str, str], ...]:
    caption = _first(record, (config.caption_column, "caption"))
    if not caption or not str(caption).strip():
        raise DataError(f"empty caption: no {config.caption_column!r} text")
    return ({"role": "user", "content": config.caption_prompt}, {"role": "assistant", "content": str(caption).strip()})


def _first(record: dict, keys: tuple[str, ...]) -> Any:
    return next((record[k] for k in keys if record.get(k)), None)


def _check_image(path: Path) -> Path:
    """Existence plus a header read (cheap); a truncated body still fails later, by name."""
    if not path.is_file():
        raise DataError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            img.size  # noqa: B018 - reading the header is the check
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"image unreadable: {path}: {exc}") from None
    return path
