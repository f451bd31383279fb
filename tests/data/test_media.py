from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from lhama.data.media import ImageSpec, check_image, image_to_tensor, load_image
from lhama.errors import DataError


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = _save(image, tmp_path / "r.jpg", exif=exif)
    assert load_image(path).size == (20, 40)


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "LA", "CMYK"])
def test_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    image = Image.new(mode, (8, 8))
    path = _save(image, tmp_path / f"x.{'jpg' if mode == 'CMYK' else 'png'}")
    assert load_image(path).mode == "RGB"


def test_transparent_pixels_are_flattened_on_white(tmp_path: Path) -> None:
    path = _save(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), tmp_path / "t.png")
    assert load_image(path).getpixel((0, 0)) == (255, 255, 255)


def test_large_images_are_downscaled() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (5000, 2500)).save(buffer, format="PNG")
    assert load_image(buffer.getvalue(), max_side=1000).size == (1000, 500)


def test_corrupt_and_missing_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match="corrupt.jpg"):
        load_image(bad)
    good = _save(Image.new("RGB", (64, 64), (1, 2, 3)), tmp_path / "trunc.jpg")
    good.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match="trunc.jpg"):
        load_image(good)
    with pytest.raises(DataError, match="not found: .*nope.png"):
        load_image(tmp_path / "nope.png")


def test_to_tensor_crops_center_and_normalises() -> None:
    image = Image.new("RGB", (60, 30), (255, 255, 255))
    image.paste((0, 0, 0), (0, 0, 8, 30))  # black left strip, cropped away by the center crop
    spec = ImageSpec(size=16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    tensor = image_to_tensor(image, spec)
    assert tensor.shape == (3, 16, 16)
    torch.testing.assert_close(tensor, torch.ones(3, 16, 16))


def test_preprocessor_config_round_trip(tmp_path: Path) -> None:
    import json

    spec = ImageSpec(size=224, mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps(spec.to_preprocessor_config()))
    assert ImageSpec.from_preprocessor_config(path, default_size=1) == spec
    assert ImageSpec.from_preprocessor_config(tmp_path / "none.json", 336).size == 336


@pytest.mark.parametrize("data", [b"hello, not an image\n", b""])
def test_a_text_file_is_named_not_an_image_without_pil_internals(tmp_path: Path, data: bytes) -> None:
    notes = tmp_path / "notas.txt"
    notes.write_bytes(data)
    with pytest.raises(DataError) as error:
        load_image(notes)
    assert str(error.value) == f"cannot read image {notes}: not an image file PIL can read (PNG, JPEG, WebP, GIF...)"
    with pytest.raises(DataError, match="^cannot read image image bytes: not an image file"):
        load_image(data)
    for source in (notes, data, tmp_path / "sumiu.png"):  # chat's look at the header says what load_image says
        with pytest.raises(DataError) as early:
            check_image(source)
        with pytest.raises(DataError) as late:
            load_image(source)
        assert str(early.value) == str(late.value)
