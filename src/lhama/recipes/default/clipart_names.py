"""Named clip-art pictures for the labeler's names head and a fresh naming set (issue #26 s6).

The pictures are Debian's ``openclipart-png`` (public domain, ``/usr/share/openclipart/png``;
lhama never assumes that folder: callers pass it). A list (``benchmarks/data/openclipart_names.tsv``)
gives each picture, by its path under that folder without ``.png``, an English description, the
pt-BR name the names head says (with its article: "uma maçã"), the pt-BR names that count as
naming it (``|``-separated, as in the naming sets), a near-duplicate group and a split:

* ``pool`` - may become names-head pictures;
* ``dev``  - the only fresh pictures read while choosing a names-head setting;
* ``test`` - read once per candidate that is shipped or reported.

The split is made before any model sees a picture, by group: pictures whose file names start with
the same word (``apple_bw``, ``an_apple_01``: "apple"; digits and words such as "bw", "simple",
"contour" skipped) are one group, and groups are joined when two of their pictures are the same
drawing by pixels (:func:`same_drawing`: shape-mask IoU and edge agreement, e.g. a recoloured
copy). A group's split is a hash of its key (:func:`split_of`), so no group spans two splits.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from lhama.errors import DataError
from lhama.model.names_head import NamedPicture, NamesHead

COLUMNS = ["image", "english", "name", "accepted", "group", "split"]
SPLITS = ("pool", "dev", "test")
SKIPPED_WORDS = {"a", "an", "the", "another", "new", "bw", "b", "w", "color", "colour", "simple", "contour",
                 "cartoon", "stylized", "big", "small", "little", "old", "green", "red", "blue", "yellow", "pink"}
MASK_IOU, EDGE_AGREEMENT = 0.85, 0.7  # same drawing (fixed before any split was made)
SIDE = 64


@dataclass(frozen=True)
class ClipartPicture:
    """One listed picture: where it is, what it shows, what counts as naming it, its group and split."""

    image: str  # path under the openclipart png folder, without ".png"
    english: str
    name: str  # the names head's label, with its article
    accepted: tuple[str, ...]
    group: str
    split: str


def group_word(image: str) -> str:
    """``food/fruit/an_apple_01`` -> ``apple``: the file name's first word that names something."""
    stem = image.rsplit("/", 1)[-1].lower()
    words = [re.sub(r"\d+$", "", w) for w in re.split(r"[^a-z0-9]+", stem)]
    kept = [w for w in words if w and w not in SKIPPED_WORDS]
    return kept[0] if kept else stem


def split_of(group: str) -> str:
    """A group's split: half the groups ``pool``, a quarter ``dev``, a quarter ``test`` (sha256 of the key)."""
    return ("pool", "pool", "dev", "test")[int(hashlib.sha256(group.encode("utf-8")).hexdigest(), 16) % 4]


def picture_path(folder: Path, image: str) -> Path:
    """The PNG of ``image`` under the openclipart ``folder``."""
    return Path(folder) / f"{image}.png"


def drawing_signature(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(SIDE*SIDE,) bool shape mask and unit edge map of a picture composited on white."""
    with Image.open(path) as img:
        rgba = img.convert("RGBA").resize((SIDE, SIDE))
    flat = Image.new("RGBA", rgba.size, "white")
    flat.alpha_composite(rgba)
    gray = torch.tensor(list(flat.convert("L").getdata()), dtype=torch.float32).view(SIDE, SIDE)
    alpha = torch.tensor(list(rgba.getchannel("A").getdata())).view(SIDE, SIDE)
    mask = alpha > 0 if bool((alpha < 255).any()) else gray < 240
    edges = (gray[1:, :-1] - gray[:-1, :-1]).abs() + (gray[:-1, 1:] - gray[:-1, :-1]).abs()
    edges = edges.flatten() - edges.mean()
    return mask.flatten(), edges / edges.norm().clamp_min(1e-6)


def same_drawing(masks: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """(n, n) bool: pairs whose shape masks overlap (IoU >= MASK_IOU) and whose edges agree
    (correlation >= EDGE_AGREEMENT): the same drawing recoloured or re-exported."""
    m = masks.float()
    inter = m @ m.T
    union = m.sum(1, keepdim=True) + m.sum(1) - inter
    iou = inter / union.clamp_min(1)
    return (iou >= MASK_IOU) & (edges @ edges.T >= EDGE_AGREEMENT)


def groups(images: list[str], pairs: torch.Tensor) -> list[str]:
    """Each image's group: its :func:`group_word`, groups joined through ``pairs`` (n, n) bool;
    a joined group is named by its alphabetically first word."""
    parent = {w: w for w in map(group_word, images)}

    def root(w: str) -> str:
        while parent[w] != w:
            w = parent[w]
        return w

    for a, b in pairs.nonzero().tolist():
        ra, rb = sorted((root(group_word(images[a])), root(group_word(images[b]))))
        parent[rb] = ra
    return [root(group_word(i)) for i in images]


def read_clipart_names(path: Path) -> list[ClipartPicture]:
    """The pictures listed in ``path`` (``#`` lines are its header).

    Raises:
        DataError: missing file, wrong header or columns, an unknown split, an empty name, or a
            group in two splits (the message names the row or group).
    """
    if not Path(path).is_file():
        raise DataError(f"clip-art names list not found: {path}")
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0] != COLUMNS:
        raise DataError(f"{path}: header must be {' '.join(COLUMNS)}")
    pictures, seen = [], {}
    for number, row in enumerate(rows[1:], 1):
        if len(row) != len(COLUMNS) or row[5] not in SPLITS or not all(row[:4]):
            raise DataError(f"{path}, row {number}: needs {len(COLUMNS)} non-empty columns and a split in {SPLITS}")
        accepted = tuple(n.strip() for n in row[3].split("|"))
        if not all(accepted):
            raise DataError(f"{path}, row {number}: empty accepted name in {row[3]!r}")
        if seen.setdefault(row[4], row[5]) != row[5]:
            raise DataError(f"{path}: group {row[4]!r} is in two splits ({seen[row[4]]}, {row[5]})")
        pictures.append(ClipartPicture(row[0], row[1], row[2], accepted, row[4], row[5]))
    return pictures


def pool_head(base: NamesHead, pool: list[ClipartPicture], pooled: dict[str, torch.Tensor]) -> NamesHead:
    """``base``'s pictures plus the ``pool`` pictures (their pooled tower features by image),
    each named by its label, kind empty, key ``openclipart:<image>``.

    Raises:
        DataError: a pool picture that is not in ``split`` pool, or has no features.
    """
    missing = [p.image for p in pool if p.split != "pool" or p.image not in pooled]
    if missing:
        raise DataError(f"{len(missing)} names-head pictures are not pool pictures with features, e.g. {missing[0]}")
    rows = torch.stack([pooled[p.image].float() for p in pool]) if pool else base.features[:0]
    entries = tuple(NamedPicture(p.name, "", f"openclipart:{p.image}") for p in pool)
    return NamesHead(torch.cat([base.features, rows]), base.entries + entries)


def prototype_head(head: NamesHead) -> NamesHead:
    """One row per distinct label of ``head``: the mean of its pictures' features (a class
    prototype), with the first picture's kind and the key ``prototype:<pictures>``."""
    order: dict[str, list[int]] = {}
    for row, entry in enumerate(head.entries):
        order.setdefault(entry.name, []).append(row)
    rows = torch.stack([head.features[idx].mean(0) for idx in order.values()])
    entries = tuple(NamedPicture(name, head.entries[idx[0]].kind, f"prototype:{len(idx)}") for name, idx in order.items())
    return NamesHead(rows, entries)
