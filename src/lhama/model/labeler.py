"""A labeler: an image classifier whose pt-BR class names tell a text-only LM what an image shows.

This is how ``lhama-default`` (v2) sees (a cascade, no trained projector): the vision tower's
ImageNet-1k head (EfficientNet-Lite2) gives class probabilities, and the most likely names go
into the user's turn as a short Portuguese note before the question::

    [Imagem anexada: parece ser um galo.]
    O que é isto?

How the names are phrased is the fusion (``LabelerConfig.style``), measured side by side in
``benchmarks/naming_fusion.py`` (docs/default-model.md):

* ``top1``   - the most likely name only: ``[Imagem anexada: galo.]``
* ``topk``   - the top-k names with their confidences (the naive fusion):
  ``[Imagem anexada; classes prováveis: galo (62%), galinha (20%), perdiz (5%).]``
* ``hedged`` - the top-1 name as a fact when the classifier is confident, "parece ser X (ou
  talvez Y)" when it is not, and nothing but "não reconhecida" when it is lost.
* ``kinds``  - ``hedged`` plus the WordNet kind of the class (:mod:`lhama.model.towers.imagenet_kinds`):
  a confident name gets its kind (``galo (uma ave)``); when no name is confident but a kind's
  summed probability is (``kind_confident``), the note names the kind and offers the names as
  guesses (``parece ser uma ave de rapina, talvez milhafre``) instead of a wrong specific name.

Beyond ImageNet, a *names head* (:mod:`lhama.model.names_head`: the nearest of a set of named
pictures by the tower's pooled features) can name what ImageNet-1k has no class for (a coin, a
planet, a tombstone): when its similarity reaches ``names_confident`` (and the ImageNet top-1
is below ``names_yield``), the ``hedged``/``kinds`` note is ``parece ser uma lápide.`` or, with
a kind, ``parece ser o planeta Marte (um planeta).`` instead.

A picture of one letter, digit or arithmetic sign is read by the *glyph reader*
(:mod:`lhama.model.glyph`) before anything else: when its gate and its net agree with at least
``glyph_confident``, the note is ``[Imagem anexada: a letra A.]`` (ImageNet has no letters).

A model directory keeps its labeler in ``labeler/``: the tower directory (``config.json``,
``model.safetensors``, ``preprocessor_config.json``), the class-name table it was built with
(``class_names.tsv``, the format of :mod:`lhama.model.towers.imagenet_names`), the kinds table
(``class_kinds.tsv``, :mod:`lhama.model.towers.imagenet_kinds`; required by the ``kinds`` style) and
the settings (``lhama_labeler.json``), when ``names_confident`` is set, the names head
(``names_head.tsv``, ``names_head.safetensors``) and, when ``glyph_confident`` is set, the glyph
reader (``glyphs.tsv``, ``glyphs.safetensors``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import torch
from PIL import Image, ImageOps
from torch import nn

from lhama.config import from_dict, to_dict
from lhama.data.media import ImageSpec, image_to_tensor
from lhama.errors import CheckpointError, ConfigError, ModelError
from lhama.model.glyph import GlyphConfig, GlyphReader
from lhama.model.names_head import FEATURES_FILE, NamedPicture, NamesHead, pool
from lhama.model.towers import efficientnet_lite
from lhama.model.towers.imagenet_kinds import KindIndex
from lhama.model.towers.imagenet_kinds import TABLE as KINDS_TABLE
from lhama.model.towers.imagenet_names import class_names

LABELER_DIR = "labeler"
SETTINGS_FILE = "lhama_labeler.json"
NAMES_FILE = "class_names.tsv"
KINDS_FILE = "class_kinds.tsv"
STYLES = ("top1", "topk", "hedged", "kinds")
KIND_CANDIDATES = 5  # the kinds of this many top classes are considered
VIEWS = ("squash", "pad", "squash_flip", "pad_flip", "fit", "fit_flip")  # how an image is shown to the tower (averaged)
FIT_FILL, FIT_WHITE = 0.85, 245  # fit: the drawing's box fills this share of the square; lighter grey is background
NOTE = "[Imagem anexada: {}]"
NO_KINDS = "the labeler style 'kinds' needs the kinds table (class_kinds.tsv); run `lhama models prepare` again"


@dataclass(frozen=True)
class LabelerConfig:
    """How class probabilities become a note (see the module docstring for the styles)."""

    style: Literal["top1", "topk", "hedged", "kinds"] = "hedged"
    top_k: int = 3  # topk: names listed
    confident: float = 0.5  # hedged: top-1 probability at or above which it is stated as a fact
    min_prob: float = 0.1  # hedged: below this top-1 probability nothing is named
    second_min: float = 0.1  # hedged: the runner-up is offered ("ou talvez Y") from this probability
    kind_confident: float = 0.5  # kinds: a kind whose classes sum to this much is named
    views: tuple[str, ...] = ("squash",)  # probabilities averaged over these views of the image (VIEWS)
    names_confident: float = 0.0  # names head: a nearest named picture this similar (cosine) is named; 0: no head
    names_yield: float = 1.0  # names head: an ImageNet top-1 at least this probable keeps its own note
    glyph_confident: float = 0.0  # glyph reader: a letter, digit or sign read this surely is named; 0: no reader
    max_image_side: int = 4096  # larger images are refused (decoding them costs memory)

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"labeler style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if self.top_k < 1:
            raise ValueError(f"labeler top_k must be >= 1, got {self.top_k}")
        if not 0 <= self.min_prob <= self.confident <= 1:
            raise ValueError("labeler thresholds need 0 <= min_prob <= confident <= 1")
        if not 0 < self.kind_confident <= 1:
            raise ValueError(f"labeler kind_confident must be in (0, 1], got {self.kind_confident}")
        if not 0 <= self.names_confident <= 1 or not 0 < self.names_yield <= 1:
            raise ValueError("labeler names thresholds need 0 <= names_confident <= 1 and 0 < names_yield <= 1")
        if not 0 <= self.glyph_confident <= 1:
            raise ValueError(f"labeler glyph_confident must be in [0, 1], got {self.glyph_confident}")
        if not self.views or not set(self.views) <= set(VIEWS):
            raise ValueError(f"labeler views must be some of {', '.join(VIEWS)}, got {list(self.views)}")


def pad_square(image: Image.Image, fill: float = 1.0) -> Image.Image:
    """The image centred on a white square whose side is its longer side / ``fill`` (its shape kept)."""
    side = round(max(image.size) / fill)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return square


def content_box(image: Image.Image) -> Image.Image:
    """``image`` cropped to the box of its pixels darker than :data:`FIT_WHITE` (all of it if none):
    a drawing on a white page without the page."""
    box = ImageOps.grayscale(image).point(lambda v: 255 if v < FIT_WHITE else 0).getbbox()
    return image.crop(box) if box else image


def view(image: Image.Image, name: str) -> Image.Image:
    """One of :data:`VIEWS`: ``squash`` (as is; the tower's preprocessing squashes it to a square),
    ``pad`` (padded to a square first), ``fit`` (cropped to the drawing, then padded so that it
    fills :data:`FIT_FILL` of the square), ``*_flip`` (mirrored)."""
    if name.startswith("fit"):
        shown = pad_square(content_box(image), FIT_FILL)
    else:
        shown = pad_square(image) if name.startswith("pad") else image
    return ImageOps.mirror(shown) if name.endswith("_flip") else shown


class _Rung(NamedTuple):
    """Where one picture's probabilities stop on the labeler's ladder (:func:`_climb`). ``step``:
    ``listed`` (``top1``/``topk``: nothing decided), ``head`` (the names head's picture), ``class`` (a
    confident class), ``kind`` (a confident kind), ``guess`` (an unsure top-1 class) or ``lost``
    (nothing named). ``at``: the class index, kind index or picture named (None: ``lost``);
    ``pairs``: the top (class, probability) as the note lists them; ``ranked``: the kinds
    style's :data:`KIND_CANDIDATES` classes (None in the other styles)."""

    step: str
    at: int | NamedPicture | None
    pairs: list[tuple[int, float]]
    ranked: list[tuple[int, float]] | None = None


def _climb(probs: torch.Tensor, names: tuple[str, ...], config: LabelerConfig,
           kinds: KindIndex | None, named: tuple[NamedPicture, float] | None) -> _Rung:
    """The one decision behind :func:`describe` and :func:`named_thing`: the names head's picture
    when it wins, else a confident class, else (``kinds``) a confident kind, else the unsure top-1
    class or nothing. Raises ModelError: as :func:`describe`."""
    if probs.shape[-1] != len(names):
        raise ModelError(f"the tower's head has {probs.shape[-1]} classes but {len(names)} class names were given")
    probs = probs.float()
    top = probs.topk(max(config.top_k, 2))
    pairs = [(int(c), float(p)) for p, c in zip(top.values, top.indices)]
    if config.style in ("top1", "topk"):
        return _Rung("listed", pairs[0][0], pairs)
    if _head_wins(named, config, pairs[0][1]):
        return _Rung("head", named[0], pairs)
    if config.style == "hedged":
        return _hedged(pairs, config)
    if kinds is None:
        raise ModelError(NO_KINDS)
    ranked = _ranked(probs)
    if ranked[0][1] >= config.confident:
        return _Rung("class", ranked[0][0], pairs, ranked)
    kind = _sure_kind(probs, config, kinds, ranked)
    return _hedged(pairs, config) if kind is None else _Rung("kind", kind, pairs, ranked)


def _hedged(pairs: list[tuple[int, float]], config: LabelerConfig) -> _Rung:
    """The ``hedged`` steps: a confident top-1 class, else nothing below ``min_prob``, else a guess."""
    p1 = pairs[0][1]
    step = "class" if p1 >= config.confident else "lost" if p1 < config.min_prob else "guess"
    return _Rung(step, None if step == "lost" else pairs[0][0], pairs)


def describe(probs: torch.Tensor, names: tuple[str, ...], config: LabelerConfig,
             kinds: KindIndex | None = None, named: tuple[NamedPicture, float] | None = None) -> str:
    """One image's (classes,) probabilities -> its note, e.g. ``[Imagem anexada: parece ser galo.]``.
    ``named``: the names head's nearest picture and its similarity (None: no names head).

    Raises:
        ModelError: the number of probabilities differs from the number of names, or the
            ``kinds`` style without a kind index.
    """
    rung = _climb(probs, names, config, kinds, named)
    if config.style == "topk":
        listed = ", ".join(f"{names[c]} ({p:.0%})" for c, p in rung.pairs[: config.top_k])
        return f"[Imagem anexada; classes prováveis: {listed}.]"
    return NOTE.format(_phrase(rung, names, config, kinds))


def _phrase(rung: _Rung, names: tuple[str, ...], config: LabelerConfig, index: KindIndex | None) -> str:
    """The note's words for a rung: a name (a confident one with its most specific kind, ``kinds``),
    the kind with the names inside it as guesses, the hedged guess, or ``não reconhecida``."""
    if rung.step == "head":
        return _named(rung.at)
    if rung.step == "lost":
        return "não reconhecida."
    if rung.step == "kind":
        inside = set(index.kinds[rung.at].classes)
        guesses = [names[c] for c, p in rung.ranked if c in inside and p >= config.second_min][:2]
        return f"parece ser {index.kinds[rung.at].pt_br}" + (f", talvez {' ou '.join(guesses)}." if guesses else ".")
    first = names[rung.at]
    if rung.step == "guess":
        second, p2 = names[rung.pairs[1][0]], rung.pairs[1][1]
        return f"parece ser {first} (ou talvez {second})." if p2 >= config.second_min else f"parece ser {first}."
    chain = index.chains[rung.at] if rung.step == "class" and config.style == "kinds" else ()
    return f"{first} ({index.kinds[chain[0]].pt_br})." if chain else f"{first}."


def _sure_kind(probs: torch.Tensor, config: LabelerConfig, index: KindIndex,
               ranked: list[tuple[int, float]]) -> int | None:
    """The most specific kind of the top classes' kinds whose summed probability reaches
    ``kind_confident`` (None: none does)."""
    mass = {k: float(probs[list(index.kinds[k].classes)].sum()) for c, _ in ranked for k in index.chains[c]}
    sure = [k for k, m in mass.items() if m >= config.kind_confident]
    return min(sure, key=lambda k: (len(index.kinds[k].classes), -mass[k], k)) if sure else None


def named_thing(probs: torch.Tensor, names: tuple[str, ...], config: LabelerConfig,
                kinds: KindIndex | None = None, named: tuple[NamedPicture, float] | None = None) -> str | None:
    """The one thing :func:`describe`'s note for the same inputs names first, for a list of pictures
    (video frames): the names head's picture, a confident class, else the confident kind (``kinds``)
    or the hedged top-1 class (``top1``/``topk``: the top-1 class); None where the note says
    ``não reconhecida``. The same decision as the note's (:func:`_climb`).

    Raises:
        ModelError: as :func:`describe`.
    """
    rung = _climb(probs, names, config, kinds, named)
    if rung.step == "head":
        return rung.at.name
    if rung.step == "kind":
        return kinds.kinds[rung.at].pt_br
    return None if rung.step == "lost" else names[rung.at]


def _ranked(probs: torch.Tensor) -> list[tuple[int, float]]:
    """The :data:`KIND_CANDIDATES` most probable classes, as (class, probability), best first."""
    top = probs.topk(min(KIND_CANDIDATES, probs.shape[-1]))
    return [(int(c), float(p)) for p, c in zip(top.values, top.indices)]


def _head_wins(named: tuple[NamedPicture, float] | None, config: LabelerConfig, p1: float) -> bool:
    """Whether the names head's picture is named instead of ImageNet's (top-1 probability ``p1``)."""
    return named is not None and 0 < config.names_confident <= named[1] and p1 < config.names_yield


def _named(picture: NamedPicture) -> str:
    """The names head's note: its name, and its kind unless the name already says it."""
    kind_noun = picture.kind.split(" ", 1)[-1]
    said = not picture.kind or f" {kind_noun} " in f" {picture.name} "
    return f"parece ser {picture.name}" + ("." if said else f" ({picture.kind}).")


class Labeler(nn.Module):
    """A tower with a class head (``classify(pixels) -> (n, classes)`` probabilities), its class
    names, its kinds (None: no kinds table), the note settings, the names head and the glyph
    reader (None: none)."""

    def __init__(self, tower: nn.Module, names: tuple[str, ...], config: LabelerConfig,
                 kinds: KindIndex | None = None, names_head: NamesHead | None = None,
                 glyphs: GlyphReader | None = None) -> None:
        super().__init__()
        if getattr(tower.config, "num_classes", len(names)) != len(names):
            raise ModelError(f"the tower has {tower.config.num_classes} classes but {len(names)} class names were given")
        if config.style == "kinds" and kinds is None:
            raise ModelError("the labeler style 'kinds' needs a kinds table")
        if config.names_confident > 0 and names_head is None:
            raise ModelError("the labeler setting names_confident needs a names head")
        if config.glyph_confident > 0 and glyphs is None:
            raise ModelError("the labeler setting glyph_confident needs a glyph reader")
        self.tower, self.names, self.config, self.kinds, self.names_head = tower, names, config, kinds, names_head
        self.glyphs = glyphs if config.glyph_confident > 0 else None

    @property
    def image_spec(self) -> ImageSpec:
        return efficientnet_lite.lite_image_spec(self.tower.config)

    def classify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(n, 3, S, S) -> (n, classes) probabilities."""
        return self.tower.classify(pixel_values)

    @torch.no_grad()
    def note(self, image: Image.Image) -> str:
        """An RGB image -> its note: the glyph reader's name when it reads one, else from the
        probabilities (and pooled features) averaged over the config's views."""
        glyph = self._glyph(image)
        if glyph is not None:
            return NOTE.format(f"{glyph}.")
        probs, pooled = self._read(self._views(image))
        return self._describe(probs.mean(0), pooled.mean(0))

    @torch.no_grad()
    def things(self, images: list[Image.Image]) -> list[str | None]:
        """RGB images (a video's frames) -> for each, the one thing its :meth:`note` would name
        (:func:`named_thing`; None where the note names nothing), from the same views, in one pass."""
        if not images:
            return []
        probs, pooled = self._read(torch.cat([self._views(image) for image in images]))
        shape = (len(images), len(self.config.views))
        probs, pooled = probs.unflatten(0, shape).mean(1), pooled.unflatten(0, shape).mean(1)
        things = [named_thing(p, self.names, self.config, self.kinds, self._nearest(f)) for p, f in zip(probs, pooled)]
        return [self._glyph(image) or thing for image, thing in zip(images, things)]

    def _glyph(self, image: Image.Image) -> str | None:
        """The glyph reader's name for the picture (None: no reader, or not a glyph it is sure of)."""
        glyph = self.glyphs.read(image) if self.glyphs is not None else None
        return glyph.name if glyph is not None else None

    def _views(self, image: Image.Image) -> torch.Tensor:
        """An RGB image -> (views, 3, S, S): the config's views of it, preprocessed for the tower."""
        return torch.stack([image_to_tensor(view(image, name), self.image_spec) for name in self.config.views])

    @torch.no_grad()
    def notes(self, pixel_values: torch.Tensor) -> list[str]:
        """(n, 3, S, S) preprocessed images -> one note per image."""
        probs, pooled = self._read(pixel_values)
        return [self._describe(p, f) for p, f in zip(probs, pooled)]

    def _read(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, 3, S, S) -> (n, classes) probabilities and (n, width) features pooled as the names
        head wants them (the tower's pooled output without a head), one pass."""
        out = self.tower(pixels, output_hidden_states=False)
        pooling = "mean" if self.names_head is None else self.names_head.pooling
        pooled = out.pooler_output.float() if pooling == "mean" else pool(out.last_hidden_state, pooling)
        return torch.softmax(out.logits.float(), dim=-1), pooled

    def _describe(self, probs: torch.Tensor, pooled: torch.Tensor) -> str:
        return describe(probs, self.names, self.config, self.kinds, self._nearest(pooled))

    def _nearest(self, pooled: torch.Tensor) -> tuple[NamedPicture, float] | None:
        """The names head's nearest picture to one picture's pooled features (None: no head in use)."""
        return self.names_head.nearest(pooled) if self.names_head is not None and self.config.names_confident else None


def save_labeler(tower_dir: Path, names_table: Path, config: LabelerConfig, directory: Path,
                 kinds_table: Path = KINDS_TABLE) -> Path:
    """Write ``directory/labeler/`` from a prepared tower directory, a class-name table and a kinds
    table (both checked by loading them: a bad table is an error here, at prepare time). Returns the folder."""
    names = class_names(names_table)  # raises CheckpointError on a missing or malformed table
    KindIndex.load(kinds_table, len(names))
    out = directory / LABELER_DIR
    shutil.copytree(tower_dir, out, ignore=shutil.ignore_patterns("lhama-prepared.json", "quant-*"))
    shutil.copyfile(names_table, out / NAMES_FILE)
    shutil.copyfile(kinds_table, out / KINDS_FILE)
    (out / SETTINGS_FILE).write_text(json.dumps(to_dict(config), indent=2) + "\n", encoding="utf-8")
    return out


def load_labeler(model_dir: Path, dtype: torch.dtype = torch.float32) -> Labeler | None:
    """The labeler saved in ``model_dir/labeler/``; None when the model has none.

    Raises:
        CheckpointError: the folder exists but its tower, names, kinds, names head or settings do
            not load (a folder without ``class_kinds.tsv`` loads without kinds unless its style
            needs them; one without a names head, without it unless ``names_confident`` is set).
    """
    folder = model_dir / LABELER_DIR
    if not folder.is_dir():
        return None
    try:
        config = from_dict(LabelerConfig, json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{folder / SETTINGS_FILE} is unreadable ({exc}); run `lhama models prepare` again") from None
    tower = efficientnet_lite.load_tower(folder).to(dtype)
    names = class_names(folder / NAMES_FILE)
    has_kinds = (folder / KINDS_FILE).is_file() or config.style == "kinds"
    kinds = KindIndex.load(folder / KINDS_FILE, len(names)) if has_kinds else None
    has_head = (folder / FEATURES_FILE).is_file() or config.names_confident > 0
    head = NamesHead.load(folder) if has_head else None
    glyphs = GlyphReader.load(folder, GlyphConfig(confident=config.glyph_confident)) if config.glyph_confident else None
    if head is not None and head.width != tower.config.head_width:
        raise CheckpointError(f"the names head in {folder} has {head.width}-wide features but the tower "
                              f"{tower.config.head_width}; run `lhama models prepare` again")
    return Labeler(tower, names, config, kinds, head, glyphs).eval()
