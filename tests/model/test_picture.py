"""LoadedModel.picture: one picture as the model takes it (its image branch's placeholder and
pixels, or a cascade model's labeler note), the one decision eval and ``bench decode`` share."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from lhama.data.media import load_image
from lhama.errors import DataError, ModelError
from tests.conftest import tiny_loaded
from tests.model.views_labeler import views_labeler


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "foto.png"
    Image.fromarray((torch.rand(40, 56, 3, generator=torch.Generator().manual_seed(1)) * 255).byte().numpy()).save(path)
    return path


def test_an_image_branch_gets_its_placeholder_and_the_pixels_read_gives(photo: Path) -> None:
    loaded = tiny_loaded()
    assert loaded.sees_pictures
    stand_in, pixels = loaded.picture(photo)
    assert stand_in == loaded.config.placeholders["image"]
    assert torch.equal(pixels, loaded.read("image", photo))
    assert torch.equal(loaded.picture(photo.read_bytes())[1], pixels)  # an upload's bytes
    assert torch.equal(loaded.picture(load_image(photo))[1], pixels)  # a decoded picture


def test_a_cascade_model_gets_its_labelers_note_and_no_pixels(photo: Path) -> None:
    loaded = tiny_loaded(image=None)
    loaded.labeler = views_labeler()
    assert loaded.sees_pictures
    assert loaded.picture(photo) == (loaded.labeler.note(load_image(photo)), None)
    assert loaded.picture(load_image(photo)) == loaded.picture(photo)


def test_a_text_only_model_sees_no_picture_and_says_so_in_one_line(photo: Path) -> None:
    loaded = tiny_loaded(image=None)
    loaded.name = "texto"
    assert not loaded.sees_pictures
    with pytest.raises(ModelError, match=r"^the model texto has no vision tower, so it cannot see images$"):
        loaded.picture(photo)


def test_an_unreadable_picture_is_a_data_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "notas.png"
    bad.write_text("não é uma imagem")
    for loaded in (tiny_loaded(), tiny_loaded(image=None)):
        loaded.labeler = views_labeler() if "image" not in loaded.config.branches else None
        with pytest.raises(DataError, match="notas.png"):
            loaded.picture(bad)
