"""model/pictures: one picture as the model takes it (its image branch's placeholder and
pixels, or a cascade model's labeler note), the one decision eval and ``bench decode`` share."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from lhama.data.media import load_image
from lhama.errors import DataError, ModelError
from lhama.model.pictures import picture, pictures, sees_pictures
from tests.conftest import tiny_loaded
from tests.model.views_labeler import views_labeler


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "foto.png"
    Image.fromarray((torch.rand(40, 56, 3, generator=torch.Generator().manual_seed(1)) * 255).byte().numpy()).save(path)
    return path


def test_an_image_branch_gets_its_placeholder_and_the_pixels_read_gives(photo: Path) -> None:
    loaded = tiny_loaded()
    assert sees_pictures(loaded)
    stand_in, pixels = picture(loaded, photo)
    assert stand_in == loaded.config.placeholders["image"]
    assert torch.equal(pixels, loaded.read("image", photo))
    assert torch.equal(picture(loaded, photo.read_bytes())[1], pixels)  # an upload's bytes
    assert torch.equal(picture(loaded, load_image(photo))[1], pixels)  # a decoded picture


def test_a_cascade_model_gets_its_labelers_note_and_no_pixels(photo: Path) -> None:
    loaded = tiny_loaded(image=None)
    loaded.labeler = views_labeler()
    assert sees_pictures(loaded)
    assert picture(loaded, photo) == (loaded.labeler.note(load_image(photo)), None)
    assert picture(loaded, load_image(photo)) == picture(loaded, photo)


def test_a_text_only_model_sees_no_picture_and_says_so_in_one_line(photo: Path) -> None:
    loaded = tiny_loaded(image=None)
    loaded.name = "texto"
    assert not sees_pictures(loaded)
    with pytest.raises(ModelError, match=r"^the model texto has no vision tower, so it cannot see images$"):
        picture(loaded, photo)


def test_an_unreadable_picture_is_a_data_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "notas.png"
    bad.write_text("não é uma imagem")
    for loaded in (tiny_loaded(), tiny_loaded(image=None)):
        loaded.labeler = views_labeler() if "image" not in loaded.config.branches else None
        with pytest.raises(DataError, match="notas.png"):
            picture(loaded, bad)


def test_pictures_put_each_stand_in_on_its_line_and_stack_the_pixels(photo: Path) -> None:
    loaded = tiny_loaded()
    shown, media = pictures(loaded, [photo, photo])
    assert (shown, list(media)) == (f"{loaded.config.placeholders['image']}\n" * 2, ["image"])
    assert torch.equal(media["image"], torch.stack([loaded.read("image", photo)] * 2))
    assert (shown, media["image"].shape) == (loaded.show("image", media["image"])[0], media["image"].shape)
    cascade = tiny_loaded(image=None)
    cascade.labeler = views_labeler()
    assert pictures(cascade, [photo]) == (f"{cascade.labeler.note(load_image(photo))}\n", None)
    assert pictures(loaded, []) == ("", None)


def test_picture_branch_is_the_image_branch_or_none_and_decides_distillation_s_labeler(tmp_path: Path) -> None:
    from lhama.model.labeler import LABELER_DIR
    from lhama.model.pictures import picture_branch
    from lhama.train.told_images import labeler_source

    vlm, lm = tiny_loaded(), tiny_loaded(image=None)
    branch = picture_branch(vlm)
    assert branch.name == "image" and branch.tower is vlm.model.vision_tower and branch.token_id == vlm.model.token_ids["image"]
    assert picture_branch(lm) is None
    teacher = tmp_path / "teacher"
    (teacher / LABELER_DIR).mkdir(parents=True)
    assert labeler_source(lm, tmp_path / "student", teacher) == teacher  # told as the teacher's labeler notes
    assert labeler_source(vlm, tmp_path / "student", teacher) is None  # it sees pictures itself
