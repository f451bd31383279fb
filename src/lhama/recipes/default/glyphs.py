"""Train the labeler's glyph reader (:mod:`lhama.model.glyph`) on glyphs rendered from free fonts.

The classes are the 26 letters (upper and lower case together), the 10 digits, the accented
letters of Portuguese and the few of German and Spanish a Tux Paint picture shows, and ten
arithmetic signs, each with its pt-BR name (:data:`CLASSES`); plus ``other``: drawings that are
not glyphs. Glyphs are rendered in black on white from every font file given, then shown the way
Tux Paint's letter stamps are drawn (filled, or outlined: the glyph's contour as a black stroke),
thicker or thinner, slanted and stretched a little, and go through the reader's own gate and
cropping (:func:`lhama.model.glyph.glyph_mask`) so training sees what reading sees. ``other``
pictures are given by the caller (e.g. Tux Paint stamps that are in no evaluation set) and
mirrored and turned for more samples. Nothing here reads an evaluation picture.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from lhama.model.glyph import OTHER, GlyphNet, GlyphReader, glyph_mask, square_tensor

_LETTERS = [(c, f"a letra {c.upper()}") for c in "abcdefghijklmnopqrstuvwxyz"]
_DIGITS = [(d, f"o número {d}") for d in "0123456789"]
_MARKED = [
    ("á", "a letra Á (A com acento agudo)"), ("é", "a letra É (E com acento agudo)"),
    ("í", "a letra Í (I com acento agudo)"), ("ó", "a letra Ó (O com acento agudo)"),
    ("ú", "a letra Ú (U com acento agudo)"), ("â", "a letra Â (A com acento circunflexo)"),
    ("ê", "a letra Ê (E com acento circunflexo)"), ("ô", "a letra Ô (O com acento circunflexo)"),
    ("à", "a letra À (A com crase)"), ("ã", "a letra Ã (A com til)"), ("õ", "a letra Õ (O com til)"),
    ("ç", "a letra Ç (C cedilha)"), ("ñ", "a letra Ñ (N com til, do espanhol)"),
    ("ä", "a letra Ä (A com trema)"), ("ö", "a letra Ö (O com trema)"), ("ü", "a letra Ü (U com trema)"),
    ("ß", "a letra ß (o S duplo do alemão)"),
]
_SIGNS = [
    ("+", "o sinal de mais (+)"), ("−", "o sinal de menos (−)"), ("×", "o sinal de vezes (×)"),
    ("÷", "o sinal de dividir (÷)"), ("=", "o sinal de igual (=)"), ("<", "o sinal de menor que (<)"),
    (">", "o sinal de maior que (>)"), ("≤", "o sinal de menor ou igual (≤)"),
    ("≥", "o sinal de maior ou igual (≥)"), ("≠", "o sinal de diferente (≠)"),
]
CLASSES: tuple[tuple[str, str], ...] = tuple(_LETTERS + _DIGITS + _MARKED + _SIGNS + [(OTHER, "outra coisa")])
# Glyph-like shapes that are none of the classes: rendered as ``other`` so that the net does not
# call every glyph-shaped thing a letter (Greek and Cyrillic letters, punctuation, symbols, arrows).
OTHER_CHARS = ("αβγδεζηθλμπσφψωΓΔΘΛΞΠΣΦΨΩбгдëжзилфцчшщъыэюяБГДЖЗИЛФЦЧШЩЭЮЯ?!&@#%$€£¥§¶*/\\|()[]{}"
               "~^°±√∞∫∑∂∇∈∩∪⊂⊃←↑→↓↔♠♣♥♦★☆☺☻♪♫☀☂☎✓✗⌘©®™")


@dataclass(frozen=True)
class GlyphTrainConfig:
    variants: int = 4  # rendered samples per (font, class, case)
    other_variants: int = 8  # samples per "other" picture
    size: int = 72  # font size in pixels
    epochs: int = 6
    batch: int = 128
    lr: float = 3e-3
    width: int = 32  # GlyphNet width
    seed: int = 0


def render(char: str, font: ImageFont.FreeTypeFont, rng: random.Random) -> Image.Image | None:
    """One glyph drawn like a Tux Paint letter stamp (filled or outlined), black on white, with a
    random stroke weight, slant and stretch; None when the font has no such glyph (empty ink)."""
    box = font.getbbox(char)
    w, h = box[2] - box[0], box[3] - box[1]
    if w <= 0 or h <= 0:
        return None
    pad = 16
    page = Image.new("L", (w + 2 * pad, h + 2 * pad), 0)
    ImageDraw.Draw(page).text((pad - box[0], pad - box[1]), char, fill=255, font=font)
    ink = np.asarray(page) > 127
    if ink.sum() < 20:
        return None
    ink = _weight(ink, rng)
    if rng.random() < 0.45:  # outlined: the contour as a stroke, the inside white
        stroke = max(1, round(rng.uniform(0.03, 0.07) * h))
        ink = ink & ~ndimage.binary_erosion(ink, iterations=stroke)
    drawn = Image.fromarray(np.where(ink, 0, 255).astype(np.uint8))
    drawn = drawn.transform(drawn.size, Image.Transform.AFFINE, (1, rng.uniform(-0.2, 0.2), 0, 0, 1, 0),
                            fillcolor=255, resample=Image.Resampling.BILINEAR)
    drawn = drawn.rotate(rng.uniform(-6, 6), fillcolor=255, expand=True, resample=Image.Resampling.BILINEAR)
    stretch = rng.uniform(0.8, 1.25)
    drawn = drawn.resize((max(8, round(drawn.width * stretch)), drawn.height), Image.Resampling.BILINEAR)
    return drawn.convert("RGB")


def _weight(ink: np.ndarray, rng: random.Random) -> np.ndarray:
    """The glyph made a little bolder or lighter (or left as is)."""
    step = rng.choice([-1, 0, 0, 1, 2])
    if step > 0:
        return ndimage.binary_dilation(ink, iterations=step)
    eroded = ndimage.binary_erosion(ink, iterations=-step) if step < 0 else ink
    return eroded if eroded.sum() > 0.4 * ink.sum() else ink


def glyph_samples(fonts: list[Path], config: GlyphTrainConfig) -> tuple[list[torch.Tensor], list[int]]:
    """(1, SIDE, SIDE) samples and class indices for every font x class x case x variant that
    the reader's gate accepts."""
    rng = random.Random(config.seed)
    xs, ys = [], []
    for path in fonts:
        font = ImageFont.truetype(str(path), config.size)
        for index, (glyph, _) in enumerate(CLASSES[:-1]):
            for char in {glyph, glyph.upper()} if glyph != "ß" else {glyph}:
                for _ in range(config.variants):
                    picture = render(char, font, rng)
                    mask = None if picture is None else glyph_mask(picture)
                    if mask is not None:
                        xs.append(square_tensor(mask))
                        ys.append(index)
    return xs, ys


def rendered_others(fonts: list[Path], config: GlyphTrainConfig) -> list[torch.Tensor]:
    """``other`` samples rendered from :data:`OTHER_CHARS` (two per font and character)."""
    rng = random.Random(config.seed + 2)
    out = []
    for path in fonts:
        font = ImageFont.truetype(str(path), config.size)
        for char in OTHER_CHARS:
            for _ in range(2):
                picture = render(char, font, rng)
                mask = None if picture is None else glyph_mask(picture)
                if mask is not None:
                    out.append(square_tensor(mask))
    return out


def other_samples(pictures: list[Image.Image], config: GlyphTrainConfig) -> list[torch.Tensor]:
    """Samples of the ``other`` class: each picture (RGB) mirrored, turned and scaled, those the
    gate accepts (a gate-rejected picture never reaches the net)."""
    rng = random.Random(config.seed + 1)
    out = []
    for picture in pictures:
        for k in range(config.other_variants):
            shown = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if k % 2 else picture
            shown = shown.rotate(rng.uniform(-20, 20), fillcolor=(255, 255, 255), expand=True)
            mask = glyph_mask(shown)
            if mask is not None:
                out.append(square_tensor(mask))
    return out


def train_reader(fonts: list[Path], others: list[Image.Image], config: GlyphTrainConfig) -> tuple[GlyphReader, dict]:
    """Render, train and return the reader and a summary (samples per kind, last epoch's loss)."""
    torch.manual_seed(config.seed)
    xs, ys = glyph_samples(fonts, config)
    negatives = other_samples(others, config) + rendered_others(fonts, config)
    x = torch.stack(xs + negatives)  # (n, 1, SIDE, SIDE)
    y = torch.tensor(ys + [len(CLASSES) - 1] * len(negatives))
    net = GlyphNet(len(CLASSES), config.width)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)
    steps = config.epochs * ((len(y) + config.batch - 1) // config.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=steps)
    loss = torch.tensor(0.0)
    net.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(y))
        for start in range(0, len(y), config.batch):
            batch = order[start: start + config.batch]
            loss = torch.nn.functional.cross_entropy(net(_jitter(x[batch])), y[batch], label_smoothing=0.05)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    reader = GlyphReader(net.eval(), tuple(g for g, _ in CLASSES), tuple(n for _, n in CLASSES))
    return reader, {"glyph_samples": len(xs), "other_samples": len(negatives), "last_loss": float(loss.detach())}


def _jitter(x: torch.Tensor) -> torch.Tensor:
    """A shift of up to one pixel, so that the net does not learn the exact centring."""
    dy, dx = random.randint(-1, 1), random.randint(-1, 1)
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))
