"""A naming set: pictures of common things with the pt-BR names that count as naming them.

The set is a TSV (``#`` lines are its provenance header) with columns ``image`` (a path relative
to its source's folder), ``source`` (which folder), ``english`` (a description, for readers) and
``accepted`` (``|``-separated names). An answer names the picture when it contains one accepted
name (:func:`lhama.eval.metrics.names_thing`). ``benchmarks/data/naming_heldout.tsv`` is one.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lhama.errors import DataError
from lhama.eval.metrics import naming_rate

COLUMNS = ["image", "source", "english", "accepted"]


@dataclass(frozen=True)
class NamingItem:
    """One picture and the pt-BR names that count as naming it."""

    image: str  # relative to the folder of its source
    source: str  # e.g. "tuxpaint_ptbr", "tuxpaint_stamps"
    english: str
    accepted: tuple[str, ...]


def read_naming_items(path: Path) -> list[NamingItem]:
    """The items of a naming-set TSV.

    Raises:
        DataError: missing file, wrong header, an absolute or ``..`` image path, or an item
            without accepted names (the message names the row).
    """
    if not Path(path).is_file():
        raise DataError(f"naming set not found: {path}")
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    rows = list(csv.reader(lines, delimiter="\t"))
    if not rows or rows[0] != COLUMNS:
        raise DataError(f"{path}: header must be {' '.join(COLUMNS)}")
    items = []
    for number, row in enumerate(rows[1:], 1):
        if len(row) != len(COLUMNS):
            raise DataError(f"{path}, item {number}: {len(row)} columns, expected {len(COLUMNS)}")
        image, source, english, accepted = row
        names = tuple(name.strip() for name in accepted.split("|"))
        if Path(image).is_absolute() or ".." in Path(image).parts:
            raise DataError(f"{path}, item {number}: image {image!r} must be relative to its source folder")
        if not all(names):
            raise DataError(f"{path}, item {number}: empty accepted name in {accepted!r}")
        items.append(NamingItem(image, source, english, names))
    return items


def item_path(item: NamingItem, folders: Mapping[str, Path]) -> Path:
    """Where ``item``'s picture is, given each source's folder.

    Raises:
        DataError: no folder given for the item's source."""
    if item.source not in folders:
        raise DataError(f"no folder for naming source {item.source!r} (have: {', '.join(folders)})")
    return Path(folders[item.source]) / item.image


def naming_rates(items: Sequence[NamingItem], answers: Sequence[str]) -> dict[str, float]:
    """Share of items named by their answer: ``all`` and per source (see :func:`naming_rate`)."""
    rates = {"all": naming_rate(answers, [i.accepted for i in items])}
    for source in sorted({i.source for i in items}):
        chosen = [(i, a) for i, a in zip(items, answers, strict=True) if i.source == source]
        rates[source] = naming_rate([a for _, a in chosen], [i.accepted for i, _ in chosen])
    return rates
