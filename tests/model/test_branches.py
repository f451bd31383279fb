"""The branch table: one call builds every configured branch, so a model with image, video and
audio branches is composed directly (no growing after construction); one function builds a
model's branch configs from it, and they are read and written in config.json's per-kind format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM

from lhama.data.conversation import encode_prompt
from lhama.errors import CheckpointError, ConfigError, DataError, ModelError
from lhama.model import branches
from lhama.model.branches import lhama_config
from lhama.model.branch_files import AUDIO_FILES, IMAGE_FILES, BranchFiles
from lhama.model.build import add_branch, compose, load_model, save_model
from lhama.model.config import ImageConfig, LhamaConfig, VideoConfig
from tests.audio_fixtures import AUDIO, tiny_whisper_encoder, write_wav
from tests.conftest import tiny_loaded, tiny_text_config, tiny_tokenizer, tiny_vision_config

ALL = lhama_config(image=ImageConfig(), video=VideoConfig(frames=2, num_queries=4, qformer_heads=2), audio=AUDIO)


def test_every_branch_is_composed_at_once_and_each_reaches_the_logits() -> None:
    torch.manual_seed(0)
    tower, whisper = AutoModel.from_config(tiny_vision_config()), tiny_whisper_encoder()
    loaded = compose(ALL, AutoModelForCausalLM.from_config(tiny_text_config()), tiny_tokenizer(),
                     {"image": tower, "audio": whisper})
    model = loaded.model.eval()
    expected = {attribute for kind in branches.KIND.values() for attribute in kind.attributes}
    assert set(model.branch_modules()) == expected and model.vision_tower is tower and model.audio_tower is whisper
    assert [b.name for b in model.branches()] == ["image", "video", "audio"]
    ids = torch.tensor([encode_prompt(loaded.tokenizer, "<image>\n<video>\n<audio>\nO que é?", loaded.expansions())])
    assert sorted(loaded.expansions().values()) == [4, 4, 16]  # audio tokens, video queries, image patches
    media, changed = _media(seed=1), _media(seed=2)
    with torch.no_grad():
        base = model(ids, media=media).logits[0, -1]
        for kind in media:  # another item of one kind alone: the answer changes
            assert not torch.allclose(model(ids, media={**media, kind: changed[kind]}).logits[0, -1], base), kind


def test_each_kind_is_saved_and_loaded_by_its_entry(tmp_path: Path) -> None:
    torch.manual_seed(0)
    loaded = compose(ALL, AutoModelForCausalLM.from_config(tiny_text_config()), tiny_tokenizer(),
                     {"image": AutoModel.from_config(tiny_vision_config()), "audio": tiny_whisper_encoder()})
    assert [kind.files for kind in branches.KIND.values()] == [IMAGE_FILES, BranchFiles(), AUDIO_FILES]  # video: weights only
    save_model(loaded, tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["model_type"] == "lhama" and saved["image_token_index"] == loaded.model.token_ids["image"]
    assert saved["vision_config"]["hidden_size"] == 24 and saved["audio_config"]["d_model"] == 16
    assert saved["lhama"] == branches.config_to_dict(ALL) and (tmp_path / "m" / "preprocessor_config.json").is_file()
    again = load_model(tmp_path / "m")
    assert again.config == ALL and again.specs == loaded.specs and again.expansions() == loaded.expansions()
    ids = torch.tensor([encode_prompt(loaded.tokenizer, "<image>\n<video>\n<audio>\nO que é?", loaded.expansions())])
    with torch.no_grad():
        assert torch.equal(again.model(ids, media=_media(1)).logits, loaded.model.eval()(ids, media=_media(1)).logits)


def _media(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    audio = torch.cat([torch.randn(1, 80, 200, generator=generator), torch.ones(1, 1, 200)], dim=1)  # mel + real-frame mask
    return {"image": torch.randn(1, 3, 32, 32, generator=generator),
            "video": torch.randn(1, 2, 3, 32, 32, generator=generator), "audio": audio}


def test_an_image_branch_without_a_tower_is_an_error() -> None:
    with pytest.raises(CheckpointError, match="image branch but no vision tower"):
        compose(lhama_config(image=ImageConfig()), AutoModelForCausalLM.from_config(tiny_text_config()), tiny_tokenizer())


def test_compose_given_one_tower_not_towers_by_kind_says_how_to_pass_them() -> None:
    lm, tower = AutoModelForCausalLM.from_config(tiny_text_config()), AutoModel.from_config(tiny_vision_config())
    with pytest.raises(ConfigError, match=r"^compose\(\) takes the towers by branch kind, not a CLIPVisionModel: pass \{'image': tower\}"):
        compose(lhama_config(image=ImageConfig()), lm, tiny_tokenizer(), tower)  # the pre-table call
    with pytest.raises(ConfigError, match="no branch kind 'vision' for a tower; kinds: image, video, audio"):
        compose(lhama_config(image=ImageConfig()), lm, tiny_tokenizer(), {"vision": tower})


def test_lhama_config_puts_branches_in_merge_order_and_checks_kinds() -> None:
    config = lhama_config(audio=AUDIO, image=ImageConfig(), video=None)
    assert list(config.branches) == ["image", "audio"] and config.branches["audio"] is AUDIO
    assert config.placeholders == {"image": "<image>", "audio": "<audio>"}
    with pytest.raises(ConfigError, match="no branch kind 'smell'; the kinds are image, video, audio"):
        lhama_config(smell=AUDIO)
    with pytest.raises(ConfigError, match="the audio branch takes AudioConfig, got ImageConfig"):
        lhama_config(audio=ImageConfig())
    with pytest.raises(ValueError, match="a video branch needs the image branch"):
        lhama_config(video=VideoConfig())


def test_the_config_cannot_be_changed_through_the_dict_it_was_given() -> None:
    given = {"image": ImageConfig()}
    config = LhamaConfig(branches=given)
    given["audio"] = AUDIO
    assert list(config.branches) == ["image"]
    assert hash(config) == hash(LhamaConfig(branches={"image": ImageConfig()})) and config == lhama_config(image=ImageConfig())
    assert config != ALL and LhamaConfig() == lhama_config()


def test_config_json_keeps_one_key_per_kind_and_older_blocks_still_load() -> None:
    written = branches.config_to_dict(ALL)
    assert list(written) == ["image", "video", "audio"] and written["audio"]["tokens"] == 4
    assert written["video"]["num_queries"] == 4 and written["image"]["projector"]["kind"] == "mlp2x_gelu"
    assert branches.config_from_dict(written) == ALL
    image_only = branches.config_to_dict(lhama_config(image=ImageConfig(feature_layer=-1)))
    assert image_only["video"] is None and image_only["audio"] is None  # what older lhama wrote too
    older = {"image": {"feature_layer": -3}, "video": None}  # written before the audio branch existed
    assert branches.config_from_dict(older) == lhama_config(image=ImageConfig(feature_layer=-3))
    with pytest.raises(ConfigError, match="unknown config key smell; valid keys: audio, image, video"):
        branches.config_from_dict({"smell": {}})
    with pytest.raises(ConfigError, match="image.feature_layer"):
        branches.config_from_dict({"image": {"feature_layer": "x"}})
    with pytest.raises(ConfigError, match="a video branch needs the image branch"):
        branches.config_from_dict({"video": {}})


def test_add_branch_returns_a_new_model_sharing_the_old_parts() -> None:
    loaded = tiny_loaded()
    loaded.model.to(torch.bfloat16)
    grown = add_branch(loaded, "audio", AUDIO, tiny_whisper_encoder())
    assert [b.name for b in grown.model.branches()] == ["image", "audio"]
    assert [b.name for b in loaded.model.branches()] == ["image"] and "audio" not in loaded.config.branches
    assert grown.model.language_model is loaded.model.language_model and grown.model.vision_tower is loaded.model.vision_tower
    assert grown.tokenizer is loaded.tokenizer and grown.specs["image"] == loaded.specs["image"]
    assert next(grown.model.audio_projector.parameters()).dtype == torch.bfloat16  # the model's projectors' dtype
    assert next(grown.model.audio_tower.parameters()).dtype == torch.float32  # a given tower is kept as it is
    with pytest.raises(ModelError, match="is text-only; a video branch needs its image tower"):
        add_branch(tiny_loaded(image=None), "video", VideoConfig())


def test_each_kind_reads_its_medium_from_a_file_or_its_bytes_alike(tmp_path: Path) -> None:
    from PIL import Image

    from tests.data.video_files import tiny_mp4, with_audio_mp4

    loaded = compose(ALL, AutoModelForCausalLM.from_config(tiny_text_config()), tiny_tokenizer(),
                     {"image": AutoModel.from_config(tiny_vision_config()), "audio": tiny_whisper_encoder()})
    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "a.png")
    files = {"image": tmp_path / "a.png", "video": with_audio_mp4(tmp_path / "v.mp4"),
             "audio": write_wav(tmp_path / "a.wav")}
    size = loaded.specs["image"].size
    shapes = {"image": (3, size, size), "video": (2, 3, size, size), "audio": (81, 200)}  # 2 frames; 80 mels + mask
    for kind, path in files.items():
        item = loaded.read(kind, path)
        assert item.shape == shapes[kind] and torch.equal(item, loaded.read(kind, path.read_bytes())), kind
    for mute in (files["video"], tiny_mp4(tmp_path / "mute.mp4")):  # a silent sound track, none at all
        assert loaded.read_track("audio", mute) is None
    with pytest.raises(DataError, match="cannot read image"):
        loaded.read("image", b"not an image")
