"""Reading text in images with the real tesseract (Debian tesseract-ocr + tesseract-ocr-por)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from lhama.data import ocr
from lhama.data.ocr import NOTE_PREFIX, OcrConfig, image_note, ocr_note, read_text, tesseract_available
from lhama.errors import DataError

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
needs_tesseract = pytest.mark.skipif(not tesseract_available(), reason="apt install tesseract-ocr tesseract-ocr-por")


def sign(lines: list[str], size: int = 40, rotate: int = 0) -> Image.Image:
    """Dark text on a light background, as a shop sign."""
    font = ImageFont.truetype(FONT, size)
    width = max(round(font.getlength(line)) for line in lines) + 2 * size
    image = Image.new("RGB", (width, round(1.5 * size) * len(lines) + 2 * size), "#fbf8f0")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((size, size + row * round(1.5 * size)), line, font=font, fill="#202020")
    return image.rotate(rotate, expand=True, fillcolor="#fbf8f0") if rotate else image


@needs_tesseract
def test_reads_portuguese_with_accents() -> None:
    result = read_text(sign(["FARMÁCIA SÃO JOÃO", "Aberta 24 horas"]))
    assert result.text.splitlines() == ["FARMÁCIA SÃO JOÃO", "Aberta 24 horas"]
    assert result.confidence > 70 and result.seconds > 0


@needs_tesseract
def test_reads_a_sign_turned_on_its_side() -> None:
    assert "PROIBIDO ESTACIONAR" in read_text(sign(["PROIBIDO ESTACIONAR"], rotate=90)).text


@needs_tesseract
def test_small_text_is_upscaled_first() -> None:
    assert "Validade: 12/03/2027" in read_text(sign(["Validade: 12/03/2027"], size=14)).text


@needs_tesseract
def test_text_free_images_say_nothing() -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    for image in (Image.new("RGB", (320, 240), (90, 160, 60)), noise):
        assert read_text(image).text == "" and image_note(image, True) == ""


def test_note_is_one_portuguese_line() -> None:
    assert ocr_note("CAFÉ 500 g\nValidade: 12/03/2027") == f"{NOTE_PREFIX} CAFÉ 500 g | Validade: 12/03/2027"
    assert ocr_note("  \n") == ""


def test_off_or_missing_tesseract(monkeypatch: pytest.MonkeyPatch) -> None:
    image = sign(["PARE"])
    assert image_note(image, False) == ""  # off: tesseract is not even looked for
    monkeypatch.setattr(ocr.shutil, "which", lambda name: None)
    assert not tesseract_available() and image_note(image) == ""  # auto: off without tesseract
    with pytest.raises(DataError, match="apt-get install tesseract-ocr tesseract-ocr-por"):
        image_note(image, True)


@needs_tesseract
def test_missing_language_model_is_a_one_line_error() -> None:
    with pytest.raises(DataError, match="tesseract failed on the image"):
        read_text(sign(["PARE"]), OcrConfig(lang="xyz"))
