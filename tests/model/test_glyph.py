"""The glyph reader: its gate on real pictures, the shipped reader on real Tux Paint letters, its
files, and the labeler's note for a glyph."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from lhama.data.media import load_image
from lhama.errors import CheckpointError, ModelError
from lhama.model.glyph import (SHIPPED, SIDE, TABLE_FILE, WEIGHTS_FILE, GlyphConfig, GlyphNet, GlyphReader,
                               copy_reader, glyph_mask, square_tensor)
from lhama.model.labeler import Labeler, LabelerConfig, load_labeler, save_labeler
from lhama.model.towers.imagenet_names import TABLE
from tests.model.test_labeler import _tower_dir

ROOT = Path(__file__).resolve().parents[2]
TUXPAINT = ROOT.parent / "shared" / "data" / "tuxpaint_ptbr" / "images"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
needs_tuxpaint = pytest.mark.skipif(not TUXPAINT.is_dir(), reason="the shared Tux Paint pictures are not here")
needs_font = pytest.mark.skipif(not DEJAVU.is_file(), reason="fonts-dejavu is not installed")


def drawn(text: str, size: int = 90, ink: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    font = ImageFont.truetype(str(DEJAVU), size)
    left, top, right, bottom = font.getbbox(text)
    page = Image.new("RGB", (right - left + 40, bottom - top + 40), (255, 255, 255))
    ImageDraw.Draw(page).text((20 - left, 20 - top), text, fill=ink, font=font)
    return page


@needs_font
def test_the_gate_takes_dark_ink_on_a_page_and_refuses_photos_colour_and_many_pieces() -> None:
    mask = glyph_mask(drawn("R"))
    assert mask is not None and mask.max() == 1.0 and mask.min() == 0.0
    assert abs(mask.shape[0] / mask.shape[1] - 90 / 60) < 0.5  # cropped to the ink: taller than wide
    assert glyph_mask(load_image(ROOT / "examples" / "coruja.jpg")) is None  # a photo: its page is not light
    assert glyph_mask(drawn("R", ink=(220, 30, 30))) is None  # red ink is not a glyph stamp
    assert glyph_mask(drawn("abcde", size=40)) is None  # five pieces: a word, not one glyph
    assert glyph_mask(Image.new("RGB", (40, 40), (255, 255, 255))) is None  # a blank page
    tensor = square_tensor(mask)
    assert tensor.shape == (1, SIDE, SIDE) and tensor[0, :2].sum() == 0 and tensor[0, :, :2].sum() == 0


@needs_font
def test_the_shipped_reader_reads_rendered_glyphs() -> None:
    reader = GlyphReader.load(SHIPPED)
    for text, glyph in (("A", "a"), ("g", "g"), ("7", "7"), ("Ç", "ç"), ("+", "+")):
        read = reader.read(drawn(text))
        assert read is not None and read.glyph == glyph, (text, read)
    assert reader.read(drawn("A")).name == "a letra A"


@needs_tuxpaint
def test_the_shipped_reader_names_real_tux_paint_letters_and_not_animals() -> None:
    reader = GlyphReader.load(SHIPPED, GlyphConfig(confident=0.8))
    expected = {"symbols_alphabets_english_filled_lowercase__b_filled.jpg": "a letra B",
                "symbols_alphabets_english_outlined_uppercase__G_outline.jpg": "a letra G",
                "symbols_math__3.jpg": "o número 3"}
    for name, note in expected.items():
        read = reader.read(load_image(TUXPAINT / name))
        assert read is not None and read.name == note, (name, read)
    for name in ("animals_birds__crow.jpg", "seasonal_halloween__blackcat.jpg", "animals_mammals__pig.jpg"):
        assert reader.read(load_image(TUXPAINT / name)) is None, name


def test_save_load_and_damaged_files(tmp_path: Path) -> None:
    torch.manual_seed(0)
    reader = GlyphReader(GlyphNet(3, width=8), ("a", "b", "other"), ("a letra A", "a letra B", "outra coisa"))
    reader.save(tmp_path / "r")
    again = GlyphReader.load(tmp_path / "r")
    assert again.glyphs == ("a", "b", "other") and again.net.width == 8
    x = torch.rand(2, 1, SIDE, SIDE)
    assert torch.equal(again.net(x), reader.net(x))
    copy_reader(tmp_path / "r", tmp_path / "copy")
    assert (tmp_path / "copy" / TABLE_FILE).is_file() and (tmp_path / "copy" / WEIGHTS_FILE).is_file()
    (tmp_path / "r" / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="does not load"):
        GlyphReader.load(tmp_path / "r")
    with pytest.raises(CheckpointError, match="does not load"):
        copy_reader(tmp_path / "missing", tmp_path / "copy2")
    with pytest.raises(CheckpointError, match="'other' class"):
        GlyphReader(GlyphNet(2, width=8), ("a", "b"), ("a letra A", "a letra B"))


@needs_font
def test_the_labeler_names_a_glyph_before_asking_imagenet(tmp_path: Path) -> None:
    config = LabelerConfig(style="top1", glyph_confident=0.8)
    save_labeler(_tower_dir(tmp_path), TABLE, config, tmp_path)
    with pytest.raises(CheckpointError, match="does not load"):
        load_labeler(tmp_path)  # the setting needs a reader: missing is an error, not a silent fallback
    copy_reader(SHIPPED, tmp_path / "labeler")
    labeler = load_labeler(tmp_path)
    assert labeler.note(drawn("Q")) == "[Imagem anexada: a letra Q.]"
    assert labeler.things([drawn("Q"), drawn("5")]) == ["a letra Q", "o número 5"]
    red = Image.new("RGB", (50, 30), (200, 30, 30))
    off = Labeler(labeler.tower, labeler.names, dataclasses.replace(config, glyph_confident=0.0), labeler.kinds)
    assert labeler.note(red) == off.note(red)  # not a glyph: the ImageNet note, as without a reader
    assert off.note(drawn("Q")) != "[Imagem anexada: a letra Q.]"
    with pytest.raises(ModelError, match="needs a glyph reader"):
        Labeler(labeler.tower, labeler.names, config, labeler.kinds)
    with pytest.raises(ValueError, match="glyph_confident"):
        LabelerConfig(glyph_confident=1.5)
    assert np.isclose(labeler.glyphs.config.confident, 0.8)
