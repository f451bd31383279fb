"""The ResNet tower with random weights: shapes per stage, token counts, the pixel convention,
composition with a tiny LM and its save/load round trip. Real weights: test_open_nsfw.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoModelForCausalLM

from lhama.data.media import image_to_tensor
from lhama.errors import CheckpointError, ConfigError
from lhama.model.build import compose, load_model, save_model
from lhama.model.branches import lhama_config
from lhama.model.config import ImageConfig
from lhama.model.encoders import encode_images, image_feature_width, image_token_count
from lhama.model.towers.resnet import (
    ResNetTower,
    ResNetTowerConfig,
    caffe_image_spec,
    load_tower,
    save_tower,
    tower_from_config,
)
from tests.conftest import tiny_text_config, tiny_tokenizer

# 50 px keeps the odd-size "same" pooling honest: 50 -> conv 25 -> pool 13 -> 13, 7, 4, 2.
TINY = ResNetTowerConfig(image_size=50, stem_width=8, widths=(4, 6, 8, 8), depths=(1, 2, 1, 1), expansion=2)


def tiny_tower(seed: int = 0) -> ResNetTower:
    torch.manual_seed(seed)
    tower = ResNetTower(TINY)
    # Random batch-norm statistics, so that a buffer lost on save/load would change outputs.
    for name, buffer in tower.named_buffers():
        buffer.copy_(torch.rand_like(buffer) + (0.5 if name.endswith("scale") else -0.5))
    return tower.eval()


def test_default_config_is_open_nsfw_layout() -> None:
    config = ResNetTowerConfig()
    assert config.hidden_state_shapes == ((56, 64), (56, 128), (28, 256), (14, 512), (7, 1024))
    assert (config.image_size, config.patch_size, config.hidden_size) == (224, 16, 512)
    assert config.model_type == "lhama_resnet"
    assert ResNetTowerConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_hidden_states_have_the_announced_shapes() -> None:
    tower = tiny_tower()
    assert TINY.hidden_state_shapes == ((13, 8), (13, 8), (7, 12), (4, 16), (2, 16))
    with torch.no_grad():
        out = tower(torch.randn(3, 3, 50, 50))
    assert [tuple(h.shape) for h in out.hidden_states] == [(3, g * g, c) for g, c in TINY.hidden_state_shapes]
    assert torch.equal(out.last_hidden_state, out.hidden_states[-1])
    torch.testing.assert_close(out.pooler_output, out.hidden_states[-1].mean(dim=1))
    assert tower(torch.randn(1, 3, 50, 50), output_hidden_states=False).hidden_states is None


def test_tokens_are_row_major_cells_of_the_map() -> None:
    tower = tiny_tower()
    x = torch.randn(1, 3, 50, 50)
    with torch.no_grad():
        out = tower(x)
        stage1 = tower.stages[0](tower.stem(x.flip(1)))  # (1, C, 13, 13), BGR input
    assert torch.equal(out.hidden_states[1][0, 13 * 2 + 5], stage1[0, :, 2, 5])


@pytest.mark.parametrize(("layer", "tokens", "width"), [(-1, 49, 1024), (-2, 196, 512), (0, 3136, 64)])
def test_token_count_and_width_follow_feature_layer(layer: int, tokens: int, width: int) -> None:
    image = ImageConfig(feature_layer=layer)
    assert image_token_count(ResNetTowerConfig(), image) == tokens
    assert image_feature_width(ResNetTowerConfig(), image) == width


def test_feature_layer_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"feature_layer=-6 is out of range: this tower has 5 hidden states"):
        image_token_count(ResNetTowerConfig(), ImageConfig(feature_layer=-6))


def test_encode_images_keeps_every_cell() -> None:
    tower = tiny_tower()
    features = encode_images(tower, torch.randn(2, 3, 50, 50), ImageConfig(feature_layer=-1))
    assert features.shape == (2, 4, 16)  # 2x2 map, no CLS dropped


def test_caffe_spec_subtracts_the_mean_in_pixel_units() -> None:
    spec = caffe_image_spec(ResNetTowerConfig())
    pixels = image_to_tensor(Image.new("RGB", (300, 200), (200, 100, 50)), spec)
    assert pixels.shape == (3, 224, 224)  # squashed, not cropped
    expected = torch.tensor([200 - 123, 100 - 117, 50 - 104], dtype=torch.float32).view(3, 1, 1)
    torch.testing.assert_close(pixels, expected.expand(3, 224, 224), atol=1e-3, rtol=0)


def test_save_and_load_tower(tmp_path: Path) -> None:
    tower = tiny_tower()
    save_tower(tower, tmp_path)
    again = load_tower(tmp_path)
    x = torch.randn(1, 3, 50, 50)
    with torch.no_grad():
        assert torch.equal(tower(x).pooler_output, again(x).pooler_output)
    spec = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert spec["image_std"] == [1 / 255] * 3 and spec["do_center_crop"] is False


def test_bad_tower_directories_are_checkpoint_errors(tmp_path: Path) -> None:
    save_tower(tiny_tower(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "stem_width": 16}))
    with pytest.raises(CheckpointError, match="does not fit its config.json"):
        load_tower(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot load the tower"):
        load_tower(tmp_path)
    with pytest.raises(CheckpointError, match="not a lhama tower config"):
        tower_from_config({"model_type": "clip_vision_model"})


def _tiny_resnet_vlm(feature_layer: int):
    torch.manual_seed(0)
    language_model = AutoModelForCausalLM.from_config(tiny_text_config())
    config = lhama_config(image=ImageConfig(feature_layer=feature_layer))
    loaded = compose(config, language_model, tiny_tokenizer(), {"image": tiny_tower()})
    loaded.model.eval()
    return loaded


@pytest.mark.parametrize("feature_layer", [-1, -2])
def test_compose_save_load_gives_identical_logits(tmp_path: Path, feature_layer: int) -> None:
    from lhama.data.conversation import encode_prompt

    loaded = _tiny_resnet_vlm(feature_layer)
    tokens = TINY.hidden_state_shapes[feature_layer][0] ** 2
    assert loaded.expansions() == {loaded.model.token_ids["image"]: tokens}
    assert loaded.specs["image"] == caffe_image_spec(TINY)
    ids = torch.tensor([encode_prompt(loaded.tokenizer, "<image>\nO que há na imagem?", loaded.expansions())])
    pixels = torch.randn(1, 3, 50, 50) * 60
    save_model(loaded, tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["model_type"] == "lhama"  # transformers' LLaVA cannot build this tower
    assert saved["vision_config"]["model_type"] == "lhama_resnet"
    assert saved["image_seq_length"] == tokens
    again = load_model(tmp_path / "m")
    with torch.no_grad():
        before = loaded.model(ids, media={"image": pixels}).logits
        after = again.model(ids, media={"image": pixels}).logits
    assert torch.equal(before, after)
    assert again.specs == loaded.specs
    assert again.expansions() == loaded.expansions()
