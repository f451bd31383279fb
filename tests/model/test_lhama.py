from __future__ import annotations

import pytest
import torch

from lhama.data.conversation import encode_prompt
from lhama.errors import ModelError
from lhama.model.encoders import encode_images
from tests.conftest import tiny_loaded


def _prompt_ids(loaded, text: str) -> torch.Tensor:
    return torch.tensor([encode_prompt(loaded.tokenizer, text, loaded.expansions())])


def test_forward_shapes_and_expansion(tiny_vlm) -> None:
    ids = _prompt_ids(tiny_vlm, "<image>\nDescreva a imagem.")
    image_id = tiny_vlm.model.token_ids["image"]
    assert int((ids == image_id).sum()) == 16  # (32 / 8)^2 patches, CLS dropped
    out = tiny_vlm.model(ids, media={"image": torch.randn(1, 3, 32, 32)})
    assert out.logits.shape == (1, ids.shape[1], 128)


def test_image_features_land_exactly_at_placeholder_rows(tiny_vlm) -> None:
    model = tiny_vlm.model
    ids = _prompt_ids(tiny_vlm, "Compare <image> com <image> agora.")
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        embeds = model.embed(ids, {"image": pixels})[0]  # (T, D)
        text_embeds = model.language_model.get_input_embeddings()(ids)[0]
        expected = model.multi_modal_projector(encode_images(model.vision_tower, pixels, model.config.branches["image"]))
    rows = (ids[0] == model.token_ids["image"]).nonzero().squeeze(1)
    assert rows.numel() == 32
    torch.testing.assert_close(embeds[rows], expected.reshape(32, -1))
    others = (ids[0] != model.token_ids["image"]).nonzero().squeeze(1)
    torch.testing.assert_close(embeds[others], text_embeds[others])
    # the first image fills the first 16 rows, in order
    torch.testing.assert_close(embeds[rows[:16]], expected[0])


def test_placeholder_count_mismatch_is_a_clear_error(tiny_vlm) -> None:
    ids = _prompt_ids(tiny_vlm, "<image> e <image>")
    with pytest.raises(ModelError, match=r"32 image token positions, but 1 image\(s\) x 16 tokens = 16"):
        tiny_vlm.model(ids, media={"image": torch.randn(1, 3, 32, 32)})


def test_text_only_model_rejects_images(tiny_lm) -> None:
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(ModelError, match="no image branch"):
        tiny_lm.model(ids, media={"image": torch.randn(1, 3, 32, 32)})


def test_full_select_keeps_cls() -> None:
    from lhama.model.config import ImageConfig

    loaded = tiny_loaded(ImageConfig(select="full", feature_layer=-1))
    assert loaded.expansions() == {loaded.model.token_ids["image"]: 17}


def test_an_audio_model_is_built_directly_from_its_config() -> None:
    """Every branch is a constructor argument: no attribute set or config swapped afterwards."""
    from transformers import AutoModelForCausalLM

    from lhama.model.branches import lhama_config
    from lhama.model.config import AudioConfig
    from lhama.model.lhama import LhamaModel
    from lhama.model.projector import MultiModalProjector
    from tests.audio_fixtures import tiny_whisper_encoder
    from tests.conftest import tiny_text_config

    config = lhama_config(audio=AudioConfig(encoder="in-test", tokens=4))
    lm = AutoModelForCausalLM.from_config(tiny_text_config())
    tower = tiny_whisper_encoder()
    projector = MultiModalProjector(tower.config.d_model, lm.config.hidden_size, config.branches["audio"].projector)
    model = LhamaModel(config, lm, {"audio_tower": tower, "audio_projector": projector}, {"audio": 5})
    assert [b.name for b in model.branches()] == ["audio"] and model.branches()[0].projector is projector
    with pytest.raises(ModelError, match="the audio branch needs audio_projector; none was given"):
        LhamaModel(config, lm, {"audio_tower": tower}, {"audio": 5})
    with pytest.raises(ModelError, match="the audio branch needs token id"):
        LhamaModel(config, lm, {"audio_tower": tower, "audio_projector": projector})
