"""A glyph reader: names a picture that is one letter, digit or arithmetic sign ("a letra A").

ImageNet-1k has no class for letters, and tesseract (:mod:`lhama.data.ocr`) keeps no reading
shorter than three characters, so the labeler said nothing right about a picture of one letter
(about a fifth of the Tux Paint pictures are letters and signs). The reader has two steps:

1. a *gate* on the pixels (:func:`glyph_mask`): the picture must be ink of one colour on a light,
   plain page, in at most :data:`MAX_PARTS` pieces (an "i" has two, an outlined "ö" four), and not
   mostly mid-tones (a photo, a shaded drawing); otherwise it is not a glyph and costs nothing more;
2. a tiny CNN (:class:`GlyphNet`) over the ink cropped to its box, padded to a square and scaled
   to :data:`SIDE` pixels, trained on glyphs rendered from free fonts (filled and outlined,
   thicker and thinner, slanted) plus an ``other`` class of drawings that are not glyphs
   (``lhama.recipes.default.glyphs``). Upper and lower case are one class (both are "a letra A").

A reader is two files in a folder (the shipped one: ``towers/glyphs/``; a model's: its
``labeler/``): ``glyphs.tsv`` (``glyph``, ``name`` per class, ``other`` included: the class's
pt-BR name with its article, e.g. ``a letra Ç (C cedilha)``) and ``glyphs.safetensors`` (the
net's weights, float32; its metadata ``width``).
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from scipy import ndimage
from torch import nn

from lhama.errors import CheckpointError

TABLE_FILE = "glyphs.tsv"
WEIGHTS_FILE = "glyphs.safetensors"
OTHER = "other"
SIDE = 32  # the net sees the ink on a SIDE x SIDE square
MARGIN = 2  # pixels of empty border around the ink inside that square
MAX_PARTS = 4  # ink pieces (each at least PART_SHARE of the ink) a glyph may have
PART_SHARE = 0.02
SHIPPED = Path(__file__).with_name("towers") / "glyphs"


@dataclass(frozen=True)
class GlyphConfig:
    """When a picture counts as a glyph and when the net's class is stated."""

    confident: float = 0.8  # the net's top class (not ``other``) must be at least this probable (s11 dev pick)
    min_page: float = 200.0  # the page (the 95th percentile of the grey levels, 0-255) must be this light
    ink_step: float = 80.0  # a pixel this much darker than the page is ink
    max_mid: float = 0.5  # at most this share of the non-page pixels may be mid-tones
    max_ink_grey: float = 100.0  # the ink's median grey: dark ink only
    max_ink_colour: float = 60.0  # the ink's mean colourfulness (max - min of RGB): black or grey ink only
    max_side: int = 512  # larger pictures are shrunk to this side first (the gate is O(pixels); the net sees 32 px)


def glyph_mask(image: Image.Image, config: GlyphConfig = GlyphConfig()) -> np.ndarray | None:
    """An RGB picture -> its ink as a (h, w) float array in [0, 1] cropped to the ink's box, or
    None when the gate says it is not one glyph on a plain page (see the module docstring)."""
    if max(image.size) > config.max_side:
        image = image.copy()
        image.thumbnail((config.max_side, config.max_side), Image.Resampling.BOX)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    grey = rgb.mean(axis=2)
    page = float(np.percentile(grey, 95))  # a glyph stamp may touch every edge: not the border's colour
    if page < config.min_page:
        return None
    ink = grey < page - config.ink_step
    mid = (grey < page - 20) & ~ink
    if ink.sum() < 16 or mid.sum() > config.max_mid * (ink.sum() + mid.sum()):
        return None
    ink_grey = float(np.median(grey[ink]))
    colour = float((rgb[ink].max(axis=1) - rgb[ink].min(axis=1)).mean())
    if ink_grey > config.max_ink_grey or colour > config.max_ink_colour or not _few_parts(ink):
        return None
    rows, cols = np.nonzero(ink | mid)
    box = grey[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    return np.clip((page - box) / max(page - ink_grey, 1.0), 0.0, 1.0)


def _few_parts(ink: np.ndarray) -> bool:
    """True when the ink is at most :data:`MAX_PARTS` pieces that matter (8-connected)."""
    labels, count = ndimage.label(ink, structure=np.ones((3, 3)))
    if count == 0:
        return False
    sizes = np.bincount(labels.ravel())[1:]
    return int((sizes >= PART_SHARE * ink.sum()).sum()) <= MAX_PARTS


def square_tensor(mask: np.ndarray) -> torch.Tensor:
    """A cropped ink array -> (1, SIDE, SIDE) float: centred on a square (its shape kept), scaled
    so that its longer side fills SIDE - 2 * MARGIN pixels."""
    h, w = mask.shape
    inner = SIDE - 2 * MARGIN
    scale = inner / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = Image.fromarray((mask * 255).astype(np.uint8)).resize(size, Image.Resampling.BOX if scale < 1
                                                                  else Image.Resampling.BILINEAR)
    square = np.zeros((SIDE, SIDE), dtype=np.float32)
    top, left = (SIDE - size[1]) // 2, (SIDE - size[0]) // 2
    square[top: top + size[1], left: left + size[0]] = np.asarray(small, dtype=np.float32) / 255.0
    return torch.from_numpy(square)[None]


class GlyphNet(nn.Module):
    """(n, 1, SIDE, SIDE) ink -> (n, classes) logits: three conv blocks and a two-layer head."""

    def __init__(self, classes: int, width: int = 32) -> None:
        super().__init__()
        self.width = width
        blocks = []
        for c_in, c_out in ((1, width), (width, 2 * width), (2 * width, 4 * width)):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*blocks)  # (n, 4w, SIDE/8, SIDE/8)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * (SIDE // 8) ** 2, 8 * width), nn.ReLU(),
                                  nn.Dropout(0.2), nn.Linear(8 * width, classes))

    def forward(self, ink: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(ink))


@dataclass(frozen=True)
class Glyph:
    """What the reader saw: the class (``"a"``, ``"7"``, ``"+"``), its pt-BR name and probability."""

    glyph: str
    name: str
    prob: float


class GlyphReader:
    """The gate, the net and its classes' names (:meth:`read`)."""

    def __init__(self, net: GlyphNet, glyphs: tuple[str, ...], names: tuple[str, ...],
                 config: GlyphConfig = GlyphConfig()) -> None:
        if OTHER not in glyphs or len(glyphs) != len(names):
            raise CheckpointError(f"a glyph reader needs one name per class and an {OTHER!r} class")
        self.net, self.glyphs, self.names, self.config = net.eval(), glyphs, names, config

    @torch.no_grad()
    def read(self, image: Image.Image) -> Glyph | None:
        """The glyph the picture shows, or None (not a glyph, ``other``, or not confident)."""
        mask = glyph_mask(image, self.config)
        if mask is None:
            return None
        probs = torch.softmax(self.net(square_tensor(mask)[None]).float(), dim=-1)[0]
        p, c = probs.max(0)
        if self.glyphs[int(c)] == OTHER or float(p) < self.config.confident:
            return None
        return Glyph(self.glyphs[int(c)], self.names[int(c)], float(p))

    def save(self, folder: Path) -> None:
        """Write ``glyphs.tsv`` and ``glyphs.safetensors`` into ``folder`` (created)."""
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / TABLE_FILE, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter="\t", lineterminator="\n")
            writer.writerow(["glyph", "name"])
            writer.writerows(zip(self.glyphs, self.names))
        state = {k: v.detach().float().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, folder / WEIGHTS_FILE, metadata={"width": str(self.net.width)})

    @classmethod
    def load(cls, folder: Path, config: GlyphConfig = GlyphConfig()) -> GlyphReader:
        """The reader saved in ``folder``.

        Raises:
            CheckpointError: a file is missing or malformed (names the file)."""
        table, weights = folder / TABLE_FILE, folder / WEIGHTS_FILE
        try:
            with open(table, encoding="utf-8", newline="") as handle:
                rows = list(csv.DictReader(handle, delimiter="\t"))
            glyphs, names = tuple(r["glyph"] for r in rows), tuple(r["name"] for r in rows)
            width = _width(weights)
            net = GlyphNet(len(glyphs), width)
            net.load_state_dict(load_file(weights))
        except (OSError, KeyError, ValueError, RuntimeError, SafetensorError) as exc:
            raise CheckpointError(f"the glyph reader in {folder} does not load ({exc}); "
                                  "run `lhama models prepare` again") from None
        if not all(glyphs) or not all(names):
            raise CheckpointError(f"{table} has an empty glyph or name; run `lhama models prepare` again")
        return cls(net, glyphs, names, config)


def _width(weights: Path) -> int:
    """The net width recorded in the weights' metadata."""
    with safe_open(str(weights), framework="pt") as handle:
        return int((handle.metadata() or {}).get("width", "32"))


def copy_reader(source: Path, folder: Path) -> None:
    """Copy the reader in ``source`` into ``folder`` (a model's ``labeler/``), checked by loading
    it first: a bad reader is an error at prepare time. Raises CheckpointError: as :meth:`GlyphReader.load`."""
    GlyphReader.load(source)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (TABLE_FILE, WEIGHTS_FILE):
        shutil.copyfile(source / name, folder / name)
