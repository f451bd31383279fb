"""The drawing recogniser: a low-rank correction of the labeler's ImageNet logits, its file, its
place in a labeler folder and in a cascade's settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from PIL import Image

from lhama.data.media import image_to_tensor
from lhama.errors import CheckpointError, ConfigError, ModelError
from lhama.model.drawings import FILE, DrawingHead, copy_drawings
from lhama.model.labeler import LABELER_DIR, Labeler, LabelerConfig, describe, load_labeler, save_labeler
from lhama.model.towers.imagenet_names import TABLE, class_names
from lhama.weights.cascade import V2_GENERATION, CascadeSettings, assemble_labeler, settings_current, settings_digest
from tests.model.test_labeler import TINY_1000, _tower_dir

WIDTH = TINY_1000.head_width


def _head(bias_class: int | None = None, seed: int = 0) -> DrawingHead:
    torch.manual_seed(seed)
    bias = torch.zeros(1000)
    if bias_class is not None:
        bias[bias_class] = 50.0
    return DrawingHead(torch.randn(WIDTH, 4), torch.randn(4, 1000) * 0.1, bias)


def test_the_correction_adds_the_low_rank_product_and_the_bias() -> None:
    head = _head(3)
    pooled, logits = torch.randn(2, WIDTH), torch.randn(2, 1000)
    expected = logits + pooled @ head.a @ head.b + head.bias
    assert torch.allclose(head.correct(pooled, logits), expected)
    assert head.correct(pooled, logits).argmax(-1).tolist() == [3, 3]  # +50 on class 3 wins


def test_a_labeler_with_the_recogniser_reads_corrected_probabilities(tmp_path: Path) -> None:
    config = LabelerConfig(style="kinds", kind_confident=0.3, drawings=True)
    save_labeler(_tower_dir(tmp_path), TABLE, config, tmp_path)
    with pytest.raises(CheckpointError, match="cannot read the drawing recogniser"):
        load_labeler(tmp_path)  # the setting needs the file: missing is an error, not a silent fallback
    _head(bias_class=7).save(tmp_path / LABELER_DIR)
    labeler = load_labeler(tmp_path)
    image = Image.new("RGB", (50, 30), (200, 30, 30))
    assert labeler.note(image).startswith(f"[Imagem anexada: {class_names()[7]}")  # +50 on class 7: a confident name
    pixels = image_to_tensor(image, labeler.image_spec)[None]
    out = labeler.tower(pixels, output_hidden_states=False)
    probs = torch.softmax(labeler.drawings.correct(out.pooler_output, out.logits), -1)[0]
    assert labeler.note(image) == describe(probs, labeler.names, config, labeler.kinds)
    plain = Labeler(labeler.tower, labeler.names, dataclasses.replace(config, drawings=False), labeler.kinds)
    assert plain.note(image) == describe(labeler.classify(pixels)[0], labeler.names, plain.config, labeler.kinds)
    assert plain.note(image) != labeler.note(image)  # the tiny tower's own top-1 is not class 7's +50


def test_bad_recogniser_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="a drawing recogniser needs"):
        DrawingHead(torch.zeros(WIDTH, 4), torch.zeros(5, 1000), torch.zeros(1000))
    (tmp_path / FILE).write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot read the drawing recogniser"):
        DrawingHead.load(tmp_path)
    with pytest.raises(CheckpointError):
        copy_drawings(tmp_path, tmp_path / "nowhere")
    tower = load_labeler_parts(tmp_path)
    small = DrawingHead(torch.zeros(WIDTH, 2), torch.zeros(2, 10), torch.zeros(10))
    with pytest.raises(ModelError, match="drawing recogniser with 1000 classes"):
        Labeler(tower.tower, tower.names, LabelerConfig(drawings=True), drawings=small)


def load_labeler_parts(tmp_path: Path) -> Labeler:
    folder = tmp_path / "plain"
    folder.mkdir()
    save_labeler(_tower_dir(folder), TABLE, LabelerConfig(), folder)
    return load_labeler(folder)


def test_cascade_settings_copy_the_recogniser_and_record_its_digest(tmp_path: Path) -> None:
    labeler = LabelerConfig(style="kinds", kind_confident=0.3, drawings=True)
    with pytest.raises(ConfigError, match="need a drawings folder"):
        CascadeSettings(V2_GENERATION, labeler)
    source = tmp_path / "drawings"
    source.mkdir()
    _head(bias_class=7).save(source)
    settings = CascadeSettings(V2_GENERATION, labeler, drawings=source)
    out = tmp_path / "model"
    out.mkdir()
    folder = assemble_labeler(_tower_dir(tmp_path), settings, out)
    assert (folder / FILE).read_bytes() == (source / FILE).read_bytes()
    assert load_labeler(out).drawings is not None
    recorded = settings_digest(settings)
    assert "drawings_sha256" in recorded and settings_current(recorded, settings)
    _head(bias_class=8).save(source)  # another recogniser: a prepared copy is out of date
    assert not settings_current(recorded, settings)
    plain = CascadeSettings(V2_GENERATION, dataclasses.replace(labeler, drawings=False))
    assert "drawings_sha256" not in settings_digest(plain)
