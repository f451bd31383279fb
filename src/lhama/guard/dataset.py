"""The labelled moderation set (``data/guard/{train,test}.jsonl``): one message per line with
``text``, ``lang`` (pt|en), ``label`` (safe|unsafe), ``categories`` (S1-S14, empty when safe),
``lookalike`` (a safe message built to resemble a harmful one) and ``role`` (user|assistant)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lhama.errors import DataError
from lhama.guard.verdict import CATEGORIES


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # "safe" | "unsafe"
    categories: tuple[str, ...] = ()
    lang: str = "pt"
    lookalike: bool = False
    role: str = "user"

    @property
    def unsafe(self) -> bool:
        return self.label == "unsafe"


def read_examples(path: str | Path, lang: str | None = None) -> list[Example]:
    """All examples of ``path`` (only those of ``lang`` when given).

    Raises:
        DataError: missing file, or a line that is not a valid record (named by line number).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"labelled guard data not found: {path}")
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            examples.append(_parse(line, f"{path}:{number}"))
    return [e for e in examples if lang is None or e.lang == lang]


def _parse(line: str, where: str) -> Example:
    try:
        row = json.loads(line)
        example = Example(
            text=row["text"], label=row["label"], categories=tuple(row.get("categories", ())),
            lang=row.get("lang", "pt"), lookalike=bool(row.get("lookalike", False)),
            role=row.get("role", "user"),
        )
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{where}: not a guard record ({exc.__class__.__name__}: {exc})") from None
    if example.label not in ("safe", "unsafe"):
        raise DataError(f"{where}: label must be 'safe' or 'unsafe', got {example.label!r}")
    bad = [c for c in example.categories if c not in CATEGORIES]
    if bad or (example.unsafe != bool(example.categories)):
        raise DataError(f"{where}: unsafe records need S1-S14 categories, safe ones none")
    return example
