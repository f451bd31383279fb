"""The video branch on a tiny model: token counts, where features land, temporal order,
save/load, growing a branch on an image model, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lhama.data.conversation import encode_prompt
from lhama.errors import ConfigError, ModelError
from lhama.model.build import add_branch, load_model, save_model
from lhama.model.branches import lhama_config
from lhama.model.config import ImageConfig, VideoConfig
from lhama.model.video import VIDEO_MODULES
from tests.conftest import tiny_loaded, tiny_video_loaded


def _ids(loaded, text: str) -> torch.Tensor:
    return torch.tensor([encode_prompt(loaded.tokenizer, text, loaded.expansions())])


def _frames(n: int = 1, count: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, count, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_video_expands_to_the_query_count_and_reaches_the_logits() -> None:
    loaded = tiny_video_loaded()
    video_id = loaded.model.token_ids["video"]
    assert loaded.expansions()[video_id] == 6
    ids = _ids(loaded, "<video>\nO que acontece?")
    assert int((ids == video_id).sum()) == 6
    with torch.no_grad():
        a = loaded.model(ids, media={"video": _frames(seed=1)}).logits
        b = loaded.model(ids, media={"video": _frames(seed=2)}).logits
    assert a.shape == (1, ids.shape[1], loaded.model.language_model.config.vocab_size)
    assert not torch.allclose(a[0, -1], b[0, -1])  # the answer depends on the frames


def test_features_land_at_video_rows_and_frame_order_matters() -> None:
    loaded = tiny_video_loaded()
    model = loaded.model
    ids = _ids(loaded, "Veja <video> agora.")
    frames = _frames()
    with torch.no_grad():
        embeds = model.embed(ids, {"video": frames})[0]
        expected = model.video_projector(model.video_temporal.encode(model.vision_tower, frames, model.config.branches["video"]))
        reversed_ = model.video_temporal.encode(model.vision_tower, frames.flip(1), model.config.branches["video"])
    rows = (ids[0] == model.token_ids["video"]).nonzero().squeeze(1)
    torch.testing.assert_close(embeds[rows], expected[0])
    assert not torch.allclose(model.video_projector(reversed_), expected, atol=1e-4)  # temporal embedding


def test_mean_pooling_counts_patches_plus_frames() -> None:
    loaded = tiny_video_loaded(VideoConfig(frames=3, pooling="mean"))
    assert loaded.expansions()[loaded.model.token_ids["video"]] == 16 + 3
    ids = _ids(loaded, "<video> e <image>")
    with torch.no_grad():
        out = loaded.model(ids, media={"video": _frames(count=3), "image": torch.randn(1, 3, 32, 32)})
    assert torch.isfinite(out.logits).all()


def test_only_new_modules_are_added_and_the_tower_is_shared() -> None:
    image_model = tiny_loaded()
    grown = add_branch(image_model, "video", VideoConfig(frames=4, num_queries=6))
    assert grown.model.vision_tower is image_model.model.vision_tower
    assert grown.model.multi_modal_projector is image_model.model.multi_modal_projector
    before = set(image_model.model.state_dict())
    added = {k.split(".")[0] for k in grown.model.state_dict() if k not in before}
    assert added == set(VIDEO_MODULES)


def test_growing_a_video_branch_keeps_image_answers() -> None:
    image_model = tiny_loaded()
    ids = _ids(image_model, "<image>\nDescreva.")
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = image_model.model(ids, media={"image": pixels}).logits
        grown = add_branch(image_model, "video", VideoConfig(frames=4))
        after = grown.model(ids, media={"image": pixels}).logits
    torch.testing.assert_close(after[..., : before.shape[-1]], before)


def test_save_load_round_trip_gives_identical_logits(tmp_path: Path) -> None:
    loaded = tiny_video_loaded()
    ids = _ids(loaded, "<image> <video>\nO que acontece?")
    media = {"video": _frames(), "image": torch.randn(1, 3, 32, 32)}
    with torch.no_grad():
        expected = loaded.model(ids, media=media).logits
        again = load_model(save_model(loaded, tmp_path / "m"))
        assert again.config.branches["video"] == loaded.config.branches["video"] and again.expansions() == loaded.expansions()
        torch.testing.assert_close(again.model(ids, media=media).logits, expected)


def test_errors() -> None:
    with pytest.raises(ConfigError, match="does not divide"):
        tiny_video_loaded(VideoConfig(qformer_heads=5))
    with pytest.raises(ValueError, match="needs the image branch"):
        lhama_config(image=None, video=VideoConfig())
    with pytest.raises(ModelError, match="text-only"):
        add_branch(tiny_loaded(image=None), "video", VideoConfig())
    with pytest.raises(ModelError, match="already has a video branch"):
        add_branch(tiny_video_loaded(), "video", VideoConfig())
    loaded = tiny_video_loaded()
    with pytest.raises(ModelError, match=r"\(n, 4, 3, H, W\)"):
        loaded.model(_ids(loaded, "<video>"), media={"video": _frames(count=5)})
    with pytest.raises(ModelError, match="no video branch"):
        tiny_loaded().model(torch.tensor([[5, 6]]), media={"video": _frames()})


def test_video_feature_layer_overrides_the_image_choice() -> None:
    loaded = tiny_video_loaded(VideoConfig(frames=2, feature_layer=-1, pooling="mean"))
    assert loaded.model.video_temporal.frames_as == ImageConfig(feature_layer=-1)


def test_video_model_directory_still_loads_as_llava_for_images(tmp_path: Path) -> None:
    import json

    from transformers import LlavaForConditionalGeneration
    from transformers.utils import logging

    loaded = tiny_video_loaded()
    save_model(loaded, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "llava"
    ids = _ids(loaded, "<image>\nDescreva.")
    pixels = torch.randn(1, 3, 32, 32)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # it reports the video weights it does not use
    try:
        llava = LlavaForConditionalGeneration.from_pretrained(tmp_path / "m").eval()
    finally:
        logging.set_verbosity(verbosity)
    with torch.no_grad():
        ours = loaded.model(ids, media={"image": pixels}).logits
        theirs = llava(input_ids=ids, pixel_values=pixels).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_adapter_export_carries_the_video_branch(tmp_path: Path) -> None:
    from lhama.model.adapters import load_adapter, save_adapter
    from lhama.model.build import compose
    from tests.conftest import tiny_text_config, tiny_tokenizer, tiny_vision_config
    from transformers import AutoModel, AutoModelForCausalLM

    trained = tiny_video_loaded(seed=3)
    save_adapter(trained, tmp_path / "adapter", "tiny", None)
    torch.manual_seed(3)  # the same LM and tower (the base), fresh projectors and video branch
    base = compose(trained.config, AutoModelForCausalLM.from_config(tiny_text_config()), tiny_tokenizer(),
                   {"image": AutoModel.from_config(tiny_vision_config())})
    base.model.eval()
    load_adapter(base, tmp_path / "adapter")
    ids = _ids(trained, "<video>\nO que acontece?")
    with torch.no_grad():
        torch.testing.assert_close(base.model(ids, media={"video": _frames()}).logits,
                                   trained.model(ids, media={"video": _frames()}).logits)
