"""The 1000 ImageNet-1k class names in Brazilian Portuguese, in the classifier's output order.

The table ``imagenet_pt.tsv`` ships beside this module (columns ``index``, ``synset``,
``english``, ``pt_br``, ``source``; ``#`` lines are its provenance header). Synset ids and
English lemmas come from timm's data files; the names are lhama's Bergamot MT, corrected by
hand where ``source`` is ``hand`` (``scripts/imagenet_pt_names.py`` makes it). A missing or
malformed table is an error, never a silent fallback to English names.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from lhama.errors import CheckpointError

TABLE = Path(__file__).with_name("imagenet_pt.tsv")
COLUMNS = ["index", "synset", "english", "pt_br", "source"]
NUM_CLASSES = 1000
SOURCES = ("mt", "hand")
_SYNSET = re.compile(r"^n\d{8}$")


@dataclass(frozen=True)
class ImageNetClass:
    """One row of the table."""

    index: int  # position in the classifier's output
    synset: str  # WordNet id, e.g. "n01514668"
    english: str  # WordNet lemmas, comma-separated ("cock")
    pt_br: str  # the Brazilian-Portuguese name ("galo")
    source: str  # "mt" (machine translation) or "hand" (corrected by hand)



def read_table(path: Path, columns: list[str] | tuple[str, ...], what: str) -> list[list[str]]:
    """The rows under the header of a shipped tab-separated table (``#`` lines are comments).

    Raises:
        CheckpointError: the file cannot be read (names ``what``), or its header is not ``columns``.
    """
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read {what} {path}: {exc}; reinstall lhama") from None
    rows = list(csv.reader(lines, delimiter="\t"))
    if not rows or rows[0] != list(columns):
        raise CheckpointError(f"{path}: header must be {' '.join(columns)}, got {' '.join(rows[0]) if rows else 'nothing'}")
    return rows[1:]

def class_table(path: Path | None = None) -> tuple[ImageNetClass, ...]:
    """All rows of the table (default: the shipped ``imagenet_pt.tsv``), checked.

    Raises:
        CheckpointError: the file is missing, or malformed (wrong columns, not 1000 classes in
            order, a bad synset, an empty name, an unknown source); the message names the line.
    """
    path = path or TABLE
    rows = read_table(path, COLUMNS, "the ImageNet class names")
    table = tuple(_parse_row(path, number, row) for number, row in enumerate(rows))
    if len(table) != NUM_CLASSES:
        raise CheckpointError(f"{path} has {len(table)} classes, expected {NUM_CLASSES}")
    if len({c.synset for c in table}) != NUM_CLASSES:
        raise CheckpointError(f"{path} lists a synset twice")
    return table


def _parse_row(path: Path, number: int, row: list[str]) -> ImageNetClass:
    """Row ``number`` (0-based, after the header) as a class; CheckpointError naming what is wrong."""
    where = f"{path}, class row {number}"
    if len(row) != len(COLUMNS):
        raise CheckpointError(f"{where}: {len(row)} columns, expected {len(COLUMNS)} (tab-separated)")
    index, synset, english, pt_br, source = (cell.strip() for cell in row)
    if index != str(number):
        raise CheckpointError(f"{where}: index {index!r}, expected {number} (rows must be in output order)")
    if not _SYNSET.match(synset):
        raise CheckpointError(f"{where}: {synset!r} is not a WordNet synset id like n01514668")
    if not pt_br:
        raise CheckpointError(f"{where}: empty pt_br name for {english!r}")
    if source not in SOURCES:
        raise CheckpointError(f"{where}: source {source!r}, expected one of {', '.join(SOURCES)}")
    return ImageNetClass(number, synset, english, pt_br, source)


def class_names(path: Path | None = None) -> tuple[str, ...]:
    """The 1000 pt-BR class names, in the classifier's output order (see :func:`class_table`)."""
    return tuple(c.pt_br for c in class_table(path))
