"""The labeler: class probabilities -> a Portuguese note for a text-only LM, and its folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from lhama.errors import CheckpointError, ModelError
from PIL import Image

from lhama.data.media import image_to_tensor
from lhama.model.labeler import (KINDS_FILE, LABELER_DIR, NAMES_FILE, SETTINGS_FILE, Labeler, LabelerConfig, describe,
                                 load_labeler, named_thing, pad_square, save_labeler, view)
from lhama.model.names_head import FEATURES_FILE, NamedPicture, NamesHead, pool
from lhama.model.towers.imagenet_kinds import Kind, KindIndex, kinds_of
from lhama.model.towers.efficientnet_lite import EfficientNetLiteTower, save_tower
from lhama.model.towers.imagenet_names import TABLE, class_names
from tests.model.towers.test_efficientnet_lite import TINY

NAMES = ("galo", "galinha", "pato", "ganso")
TINY_1000 = dataclasses.replace(TINY, num_classes=1000)


def probs(*values: float) -> torch.Tensor:
    return torch.tensor(values)


def test_styles() -> None:
    p = probs(0.6, 0.3, 0.08, 0.02)
    assert describe(p, NAMES, LabelerConfig(style="top1")) == "[Imagem anexada: galo.]"
    assert describe(p, NAMES, LabelerConfig(style="topk")) == "[Imagem anexada; classes prováveis: galo (60%), galinha (30%), pato (8%).]"
    assert describe(p, NAMES, LabelerConfig(style="hedged")) == "[Imagem anexada: galo.]"


def test_hedged_thresholds() -> None:
    config = LabelerConfig(style="hedged", confident=0.5, min_prob=0.1, second_min=0.1)
    assert describe(probs(0.3, 0.25, 0.25, 0.2), NAMES, config) == "[Imagem anexada: parece ser galo (ou talvez galinha).]"
    assert describe(probs(0.4, 0.05, 0.06, 0.49), NAMES, config) == "[Imagem anexada: parece ser ganso (ou talvez galo).]"
    assert describe(probs(0.4, 0.05, 0.05, 0.5), NAMES, config) == "[Imagem anexada: ganso.]"  # confident from 0.5
    assert describe(probs(0.07, 0.06, 0.05, 0.04), NAMES, config) == "[Imagem anexada: não reconhecida.]"
    assert describe(probs(0.45, 0.05, 0.05, 0.02), NAMES, config) == "[Imagem anexada: parece ser galo.]"


KINDS = (Kind("n01789386", "uma galinácea", "gallinaceous bird", (0, 1)), Kind("n01503061", "uma ave", "bird", (0, 1, 2, 3)),
         Kind("n01846331", "um pato", "duck", (2,)))
INDEX = KindIndex(KINDS, kinds_of(KINDS, 4))


def test_kinds_name_the_confident_kind_instead_of_a_wrong_species() -> None:
    config = LabelerConfig(style="kinds", confident=0.5, min_prob=0.1, second_min=0.1, kind_confident=0.5)
    note = lambda *p: describe(probs(*p), NAMES, config, INDEX)  # noqa: E731
    assert note(0.6, 0.3, 0.08, 0.02) == "[Imagem anexada: galo (uma galinácea).]"  # the most specific kind
    assert note(0.05, 0.05, 0.6, 0.3) == "[Imagem anexada: pato (um pato).]"
    assert note(0.3, 0.25, 0.25, 0.2) == "[Imagem anexada: parece ser uma galinácea, talvez galo ou galinha.]"
    assert note(0.31, 0.05, 0.28, 0.36) == "[Imagem anexada: parece ser uma ave, talvez ganso ou galo.]"
    assert note(0.3, 0.05, 0.05, 0.05) == "[Imagem anexada: parece ser galo.]"  # no kind reaches 0.5: hedged
    assert describe(probs(0.31, 0.05, 0.28, 0.36), NAMES, dataclasses.replace(config, kind_confident=0.9), INDEX) == \
        "[Imagem anexada: parece ser uma ave, talvez ganso ou galo.]"  # sums to 1.0 >= 0.9
    with pytest.raises(ModelError, match="needs the kinds table"):
        describe(probs(0.3, 0.05, 0.3, 0.35), NAMES, config)


def test_the_frame_name_and_the_note_are_one_decision_even_on_a_tie() -> None:
    """named_thing climbs describe's ladder (one ranking): on a flat tie (where topk's order among
    equal values depends on k) both name the same class; both refuse ``kinds`` without a table."""
    many, flat = tuple(f"coisa {i}" for i in range(1000)), torch.full((1000,), 0.001)
    for config in (LabelerConfig(style="top1"), LabelerConfig(style="hedged", min_prob=0.0)):
        thing, note = named_thing(flat, many, config), describe(flat, many, config)
        assert note in (f"[Imagem anexada: {thing}.]", f"[Imagem anexada: parece ser {thing}.]"), (thing, note)
    for call in (describe, named_thing):
        with pytest.raises(ModelError, match="needs the kinds table"):
            call(probs(0.6, 0.3, 0.08, 0.02), NAMES, LabelerConfig(style="kinds"))  # a confident class too

def test_config_and_count_errors() -> None:
    with pytest.raises(ValueError, match="min_prob <= confident"):
        LabelerConfig(confident=0.2, min_prob=0.5)
    with pytest.raises(ValueError, match="kind_confident"):
        LabelerConfig(kind_confident=0)
    with pytest.raises(ValueError, match="views must be some of"):
        LabelerConfig(views=("crop",))


def test_views_keep_the_shape_and_mirror() -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.putpixel((0, 0), (0, 0, 255))
    padded = pad_square(image)
    assert padded.size == (40, 40) and padded.getpixel((0, 0)) == (255, 255, 255) and padded.getpixel((0, 10)) == (0, 0, 255)
    assert view(image, "squash") is image and view(image, "squash_flip").getpixel((39, 0)) == (0, 0, 255)
    assert view(image, "pad_flip").getpixel((39, 10)) == (0, 0, 255)


def test_fit_view_crops_the_page_and_keeps_a_margin() -> None:
    page = Image.new("RGB", (200, 100), (255, 255, 255))
    page.paste((200, 0, 0), (10, 10, 30, 50))  # a 20x40 drawing in a corner of a white page
    page.putpixel((150, 80), (250, 250, 250))  # near-white specks are page, not drawing
    fitted = view(page, "fit")
    assert fitted.size == (47, 47)  # the drawing's longer side (40) fills 0.85 of the square
    red, white = (200, 0, 0), (255, 255, 255)  # centred: the drawing spans x 13..32, y 3..42
    assert [fitted.getpixel(p) for p in ((13, 3), (32, 42), (12, 23), (33, 23), (23, 2), (23, 43))] == [red, red] + [white] * 4
    flipped = view(page, "fit_flip")
    assert flipped.getpixel((33, 4)) == red and flipped.getpixel((13, 4)) == white
    blank = Image.new("RGB", (30, 10), (255, 255, 255))
    assert view(blank, "fit").size == (35, 35)  # nothing drawn: the whole page, padded
    with pytest.raises(ModelError, match="4 classes but 3 class names"):
        describe(probs(0.1, 0.2, 0.3, 0.4), NAMES[:3], LabelerConfig())


def _tower_dir(tmp_path: Path) -> Path:
    tower_dir = tmp_path / "tower"
    tower_dir.mkdir()
    torch.manual_seed(0)
    save_tower(EfficientNetLiteTower(TINY_1000).eval(), tower_dir)
    return tower_dir


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    tower_dir = _tower_dir(tmp_path)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    assert load_labeler(model_dir) is None  # no labeler/ folder: not a cascade model
    save_labeler(tower_dir, TABLE, LabelerConfig(style="top1"), model_dir)
    labeler = load_labeler(model_dir)
    assert isinstance(labeler, Labeler) and labeler.config.style == "top1" and labeler.config.views == ("squash",)
    assert labeler.names == class_names() and labeler.image_spec.size == TINY.image_size
    pixels = torch.rand(2, 3, 37, 37) * 2 - 1
    top = labeler.classify(pixels).argmax(-1)
    assert labeler.notes(pixels) == [f"[Imagem anexada: {class_names()[int(i)]}.]" for i in top]
    assert labeler.kinds is not None and labeler.kinds.kinds == KindIndex.load().kinds
    image = Image.new("RGB", (50, 30), (200, 30, 30))
    assert labeler.note(image) == labeler.notes(image_to_tensor(image, labeler.image_spec)[None])[0]  # one view: squash
    averaged = dataclasses.replace(labeler.config, views=("pad", "pad_flip"))
    two = Labeler(labeler.tower, labeler.names, averaged, labeler.kinds)
    probs = torch.stack([labeler.classify(image_to_tensor(view(image, v), labeler.image_spec)[None])[0] for v in averaged.views]).mean(0)
    assert two.note(image) == describe(probs, labeler.names, averaged, labeler.kinds)


def test_a_labeler_saved_before_kinds_loads_without_them(tmp_path: Path) -> None:
    save_labeler(_tower_dir(tmp_path), TABLE, LabelerConfig(style="kinds", views=("pad", "pad_flip")), tmp_path)
    assert load_labeler(tmp_path).config == LabelerConfig(style="kinds", views=("pad", "pad_flip"))
    (tmp_path / LABELER_DIR / SETTINGS_FILE).write_text(json.dumps({"style": "hedged"}))
    (tmp_path / LABELER_DIR / KINDS_FILE).unlink()
    assert load_labeler(tmp_path).kinds is None  # an older model directory: hedged notes, no kinds
    (tmp_path / LABELER_DIR / SETTINGS_FILE).write_text(json.dumps({"style": "kinds"}))
    with pytest.raises(CheckpointError, match="cannot read the ImageNet kinds"):
        load_labeler(tmp_path)


def test_a_bad_class_table_fails_at_prepare_time(tmp_path: Path) -> None:
    bad = tmp_path / "names.tsv"
    bad.write_text("\n".join(TABLE.read_text(encoding="utf-8").splitlines()[:-3]) + "\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="classes, expected 1000"):
        save_labeler(_tower_dir(tmp_path), bad, LabelerConfig(), tmp_path)
    assert not (tmp_path / LABELER_DIR).exists()


def test_damaged_labeler_folders_are_one_line_errors(tmp_path: Path) -> None:
    save_labeler(_tower_dir(tmp_path), TABLE, LabelerConfig(), tmp_path)
    folder = tmp_path / LABELER_DIR
    (folder / SETTINGS_FILE).write_text(json.dumps({"style": "poem"}))
    with pytest.raises(CheckpointError, match="lhama_labeler.json is unreadable"):
        load_labeler(tmp_path)
    (folder / SETTINGS_FILE).write_text(json.dumps({"style": "top1"}))
    (folder / NAMES_FILE).write_text("index\tsynset\n")
    with pytest.raises(CheckpointError, match="header must be"):
        load_labeler(tmp_path)
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot load the tower"):
        load_labeler(tmp_path)


def test_a_confident_names_head_name_wins_over_an_unsure_imagenet_note() -> None:
    config = LabelerConfig(style="kinds", kind_confident=0.5, names_confident=0.8, names_yield=0.5)
    grave, iris = NamedPicture("uma lápide", "", "g"), NamedPicture("uma íris", "uma flor", "i")
    coin = NamedPicture("uma moeda de 5 ienes", "uma moeda", "y")
    unsure = probs(0.3, 0.05, 0.05, 0.05)
    assert describe(unsure, NAMES, config, INDEX, (grave, 0.85)) == "[Imagem anexada: parece ser uma lápide.]"
    assert describe(unsure, NAMES, config, INDEX, (iris, 0.8)) == "[Imagem anexada: parece ser uma íris (uma flor).]"
    assert describe(unsure, NAMES, config, INDEX, (coin, 0.9)) == "[Imagem anexada: parece ser uma moeda de 5 ienes.]"  # kind said
    assert describe(unsure, NAMES, config, INDEX, (grave, 0.79)) == "[Imagem anexada: parece ser galo.]"  # not similar enough
    sure = probs(0.6, 0.3, 0.08, 0.02)  # ImageNet at names_yield keeps its own note
    assert describe(sure, NAMES, config, INDEX, (grave, 0.99)) == "[Imagem anexada: galo (uma galinácea).]"
    off = dataclasses.replace(config, names_confident=0.0)
    assert describe(unsure, NAMES, off, INDEX, (grave, 0.99)) == "[Imagem anexada: parece ser galo.]"
    with pytest.raises(ValueError, match="names thresholds"):
        LabelerConfig(names_yield=0)


def test_a_labeler_folder_with_a_names_head(tmp_path: Path) -> None:
    config = LabelerConfig(style="kinds", names_confident=0.5)
    save_labeler(_tower_dir(tmp_path), TABLE, config, tmp_path)
    with pytest.raises(CheckpointError, match="cannot read the names head"):
        load_labeler(tmp_path)  # the setting needs a head: missing is an error, not a silent fallback
    folder = tmp_path / LABELER_DIR
    torch.manual_seed(1)
    entries = (NamedPicture("uma lápide", "", "a"), NamedPicture("o planeta Marte", "um planeta", "b"))
    NamesHead(torch.rand(2, TINY_1000.head_width), entries).save(folder)
    labeler = load_labeler(tmp_path)
    image = Image.new("RGB", (50, 30), (200, 30, 30))
    pixels = image_to_tensor(image, labeler.image_spec)[None]
    out = labeler.tower(pixels, output_hidden_states=False)
    picture, similarity = labeler.names_head.nearest(out.pooler_output[0])
    expected = describe(labeler.classify(pixels)[0], labeler.names, config, labeler.kinds, (picture, similarity))
    assert labeler.note(image) == expected == labeler.notes(pixels)[0]
    assert ("lápide" in expected or "Marte" in expected) == (similarity >= 0.5)
    NamesHead(torch.rand(2, TINY_1000.head_width), entries, torch.randn(16, 16), "gem").save(folder)
    gem = load_labeler(tmp_path)  # a whitened GeM head: the labeler pools the head map as the head says
    pooled = pool(gem.tower(pixels).last_hidden_state, "gem").detach()
    assert torch.allclose(gem._read(pixels)[1], pooled) and not torch.allclose(pooled, out.pooler_output)
    named = gem.names_head.nearest(pooled[0])
    assert gem.note(image) == describe(gem.classify(pixels)[0], gem.names, config, gem.kinds, named)
    NamesHead(torch.rand(2, 5), entries).save(folder)
    with pytest.raises(CheckpointError, match="5-wide features but the tower 16"):
        load_labeler(tmp_path)
    (folder / FEATURES_FILE).unlink()
    (folder / SETTINGS_FILE).write_text(json.dumps({"style": "kinds"}))
    assert load_labeler(tmp_path).names_head is None  # an older folder: no head, none needed
