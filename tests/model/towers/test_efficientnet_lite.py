"""The EfficientNet-Lite tower with random weights: shapes per map, "same" padding, the pixel
convention, class probabilities, composition with a tiny LM and the save/load round trips.
Real weights against the reference package: tests/weights/test_efficientnet.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoModelForCausalLM

from lhama.data.media import image_to_tensor
from lhama.errors import CheckpointError
from lhama.model.build import build_model, compose, load_model, save_model
from lhama.model.branches import lhama_config
from lhama.model.config import ImageConfig
from lhama.model.encoders import encode_images, image_feature_width, image_token_count
from lhama.model.towers.efficientnet_lite import (
    EfficientNetLiteConfig,
    EfficientNetLiteTower,
    lite_image_spec,
    load_tower,
    save_tower,
    tower_from_config,
)
from tests.conftest import tiny_text_config, tiny_tokenizer

# 37 px keeps the odd-size "same" padding honest: 37 -> 19 -> 19, 10, 5 (stride 1, 2, 2).
TINY = EfficientNetLiteConfig(
    image_size=37, stem_width=8, widths=(4, 8, 8), depths=(1, 2, 2), kernels=(3, 5, 3),
    strides=(1, 2, 2), expand_ratios=(1, 3, 2), head_width=16, num_classes=7,
)


def tiny_tower(seed: int = 0) -> EfficientNetLiteTower:
    torch.manual_seed(seed)
    tower = EfficientNetLiteTower(TINY)
    # Random batch-norm statistics, so that a buffer lost on save/load would change outputs.
    for name, buffer in tower.named_buffers():
        buffer.copy_(torch.rand_like(buffer) + (0.5 if name.endswith("scale") else -0.5))
    return tower.eval()


def test_default_config_is_lite2() -> None:
    config = EfficientNetLiteConfig()
    grids = [g for g, _ in config.hidden_state_shapes]
    assert grids == [130, 130, 65, 33, 17, 17, 9, 9, 9]
    assert config.hidden_state_shapes[-1] == (9, 1280) and config.hidden_state_shapes[-2] == (9, 352)
    assert (config.image_size, config.patch_size, config.hidden_size) == (260, 28, 352)
    assert config.model_type == "lhama_efficientnet_lite"
    assert EfficientNetLiteConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    # Lite2: 6.09M weights, of which the convolutions and the classifier (the rest: batch-norm affines).
    assert sum(p.numel() for p in EfficientNetLiteTower(config).parameters()) == 6_033_976


def test_stage_tuples_must_agree() -> None:
    with pytest.raises(ValueError, match="one entry per stage"):
        EfficientNetLiteConfig(depths=(1, 2))


def test_hidden_states_and_logits_have_the_announced_shapes() -> None:
    tower = tiny_tower()
    assert TINY.hidden_state_shapes == ((19, 8), (19, 4), (10, 8), (5, 8), (5, 16))
    with torch.no_grad():
        out = tower(torch.randn(3, 3, 37, 37))
    assert [tuple(h.shape) for h in out.hidden_states] == [(3, g * g, c) for g, c in TINY.hidden_state_shapes]
    assert torch.equal(out.last_hidden_state, out.hidden_states[-1])
    torch.testing.assert_close(out.pooler_output, out.hidden_states[-1].mean(dim=1))
    torch.testing.assert_close(out.logits, tower.classifier(out.pooler_output))
    assert out.logits.shape == (3, 7)
    assert tower(torch.randn(1, 3, 37, 37), output_hidden_states=False).hidden_states is None


def test_classify_gives_probabilities() -> None:
    tower = tiny_tower()
    x = torch.randn(4, 3, 37, 37)
    probs = tower.classify(x)
    assert probs.shape == (4, 7)
    torch.testing.assert_close(probs.sum(dim=-1), torch.ones(4))
    assert (probs >= 0).all()
    with torch.no_grad():
        assert torch.equal(probs.argmax(-1), tower(x).logits.argmax(-1))


def test_same_padding_puts_the_odd_pixel_bottom_right() -> None:
    # A stride-2 3x3 convolution on an even side pads one pixel, at the bottom/right (TensorFlow).
    tower = tiny_tower()
    x = torch.randn(1, 3, 36, 36)
    conv = tower.stem.conv
    with torch.no_grad():
        ours = tower.stem.bn(conv(torch.nn.functional.pad(x, (0, 1, 0, 1))))
        got = tower(x).hidden_states[0]  # (1, 18*18, 8)
    expected = torch.nn.functional.relu6(ours).flatten(2).transpose(1, 2)
    torch.testing.assert_close(got, expected)


def test_residual_only_where_the_shape_is_kept() -> None:
    tower = tiny_tower()
    flags = [[block.residual for block in stage] for stage in tower.stages]
    assert flags == [[False], [False, True], [False, True]]
    assert tower.stages[0][0].expand is None and tower.stages[1][0].expand is not None


@pytest.mark.parametrize(("layer", "tokens", "width"), [(-1, 81, 1280), (-2, 81, 352), (4, 289, 88)])
def test_token_count_and_width_follow_feature_layer(layer: int, tokens: int, width: int) -> None:
    image = ImageConfig(feature_layer=layer)
    assert image_token_count(EfficientNetLiteConfig(), image) == tokens
    assert image_feature_width(EfficientNetLiteConfig(), image) == width


def test_encode_images_keeps_every_cell() -> None:
    features = encode_images(tiny_tower(), torch.randn(2, 3, 37, 37), ImageConfig(feature_layer=-1))
    assert features.shape == (2, 25, 16)  # 5x5 head map, no CLS dropped


def test_spec_is_x_minus_127_over_128_squashed() -> None:
    spec = lite_image_spec(EfficientNetLiteConfig())
    pixels = image_to_tensor(Image.new("RGB", (300, 200), (255, 127, 0)), spec)
    assert pixels.shape == (3, 260, 260)  # squashed, not cropped
    expected = torch.tensor([128 / 128, 0.0, -127 / 128]).view(3, 1, 1)
    torch.testing.assert_close(pixels, expected.expand(3, 260, 260), atol=1e-5, rtol=0)


def test_save_and_load_tower(tmp_path: Path) -> None:
    tower = tiny_tower()
    save_tower(tower, tmp_path)
    again = load_tower(tmp_path)
    x = torch.randn(2, 3, 37, 37)
    with torch.no_grad():
        assert torch.equal(tower(x).logits, again(x).logits)
        assert torch.equal(tower(x).hidden_states[2], again(x).hidden_states[2])
    assert again.config == TINY and not again.training
    spec = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert spec["image_mean"] == [127 / 255] * 3 and spec["do_center_crop"] is False


def test_bad_tower_directories_are_checkpoint_errors(tmp_path: Path) -> None:
    save_tower(tiny_tower(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "head_width": 32}))
    with pytest.raises(CheckpointError, match="does not fit its config.json"):
        load_tower(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot load the tower"):
        load_tower(tmp_path)
    with pytest.raises(CheckpointError, match="not a lhama EfficientNet-Lite config"):
        tower_from_config({"model_type": "lhama_resnet"})


def test_model_with_the_tower_saves_and_loads(tmp_path: Path) -> None:
    config = lhama_config(image=ImageConfig(feature_layer=-1))
    lm = AutoModelForCausalLM.from_config(tiny_text_config())
    loaded = compose(config, lm, tiny_tokenizer(), {"image": tiny_tower()})
    assert loaded.specs["image"] == lite_image_spec(TINY)
    assert loaded.expansions()[loaded.model.token_ids["image"]] == 25
    save_model(loaded, tmp_path / "m")
    raw = json.loads((tmp_path / "m" / "config.json").read_text())
    assert raw["model_type"] == "lhama" and raw["vision_config"]["model_type"] == "lhama_efficientnet_lite"
    again = load_model(tmp_path / "m")
    assert isinstance(again.model.vision_tower, EfficientNetLiteTower)
    assert again.specs == loaded.specs
    x = torch.randn(1, 3, 37, 37)
    with torch.no_grad():
        assert torch.equal(loaded.model.vision_tower(x).logits, again.model.vision_tower(x).logits)


def test_build_model_takes_a_tower_directory(tmp_path: Path) -> None:
    lm_dir, tower_dir = tmp_path / "lm", tmp_path / "tower"
    AutoModelForCausalLM.from_config(tiny_text_config()).save_pretrained(lm_dir)
    tiny_tokenizer().save_pretrained(lm_dir)
    tower_dir.mkdir()
    save_tower(tiny_tower(), tower_dir)
    loaded = build_model(lm_dir, {"image": tower_dir})
    assert isinstance(loaded.model.vision_tower, EfficientNetLiteTower)
    assert loaded.specs["image"] == lite_image_spec(TINY)
