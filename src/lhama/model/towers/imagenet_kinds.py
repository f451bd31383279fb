"""Kinds: coarser pt-BR names for the ImageNet-1k classes ("uma ave de rapina", "um cachorro").

The ImageNet classes are WordNet 3.0 synsets, so WordNet's hypernyms say what kind of thing each
class is. ``imagenet_kinds.tsv`` (beside this module; ``scripts/imagenet_kinds.py`` makes it)
lists familiar categories, each a WordNet synset with a pt-BR name and article and the output
indices of every class under it (columns ``synset``, ``pt_br``, ``english``, ``classes``).

A kind's probability is the sum of its classes' probabilities, so a classifier that cannot tell
a kite from an eagle can still be sure it sees a bird of prey (:mod:`lhama.model.labeler`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lhama.errors import CheckpointError
from lhama.model.towers.imagenet_names import read_table

TABLE = Path(__file__).with_name("imagenet_kinds.tsv")
COLUMNS = ["synset", "pt_br", "english", "classes"]
_SYNSET = re.compile(r"^n\d{8}$")
_ARTICLE = re.compile(r"^(um|uma) \S")


@dataclass(frozen=True)
class Kind:
    """One category: its WordNet synset, pt-BR name with article and member class indices."""

    synset: str
    pt_br: str  # "uma ave de rapina"
    english: str  # WordNet lemmas, for readers
    classes: tuple[int, ...]  # classifier output indices under this synset


def kind_table(path: Path | None = None, num_classes: int = 1000) -> tuple[Kind, ...]:
    """All kinds of the table (default: the shipped ``imagenet_kinds.tsv``), checked.

    Raises:
        CheckpointError: missing file, wrong header, a bad synset, a name without "um"/"uma",
            no classes, or a class index outside 0..num_classes-1 (the message names the row).
    """
    path = path or TABLE
    rows = read_table(path, COLUMNS, "the ImageNet kinds")
    kinds = tuple(_parse_row(path, number, row, num_classes) for number, row in enumerate(rows, 1))
    if not kinds:
        raise CheckpointError(f"{path} lists no kinds")
    return kinds


def _parse_row(path: Path, number: int, row: list[str], num_classes: int) -> Kind:
    where = f"{path}, kind row {number}"
    if len(row) != len(COLUMNS):
        raise CheckpointError(f"{where}: {len(row)} columns, expected {len(COLUMNS)} (tab-separated)")
    synset, pt_br, english, classes = (cell.strip() for cell in row)
    if not _SYNSET.match(synset):
        raise CheckpointError(f"{where}: {synset!r} is not a WordNet synset id like n01503061")
    if not _ARTICLE.match(pt_br):
        raise CheckpointError(f"{where}: the name {pt_br!r} must start with its article (um/uma)")
    try:
        indices = tuple(int(i) for i in classes.split())
    except ValueError:
        raise CheckpointError(f"{where}: classes must be space-separated integers, got {classes[:40]!r}") from None
    if not indices or not all(0 <= i < num_classes for i in indices):
        raise CheckpointError(f"{where}: classes must be 1+ indices in 0..{num_classes - 1}")
    return Kind(synset, pt_br, english, indices)


def kinds_of(kinds: tuple[Kind, ...], num_classes: int = 1000) -> tuple[tuple[int, ...], ...]:
    """For each class, the indices (into ``kinds``) of the kinds it belongs to, most specific
    (fewest classes) first."""
    member: list[list[int]] = [[] for _ in range(num_classes)]
    for k, kind in enumerate(kinds):
        for c in kind.classes:
            member[c].append(k)
    return tuple(tuple(sorted(ks, key=lambda k: (len(kinds[k].classes), k))) for ks in member)


@dataclass(frozen=True)
class KindIndex:
    """A kind table with, for each class, its kinds most specific first (:func:`kinds_of`)."""

    kinds: tuple[Kind, ...]
    chains: tuple[tuple[int, ...], ...]

    @classmethod
    def load(cls, path: Path | None = None, num_classes: int = 1000) -> "KindIndex":
        """The index of a kind table (default: the shipped one). Raises CheckpointError like :func:`kind_table`."""
        kinds = kind_table(path, num_classes)
        return cls(kinds, kinds_of(kinds, num_classes))
