"""A recipe's ``model.lm`` + ``model.vision`` become ``build_model``'s LM and image encoder: the
image branch takes its default config unless ``model.branches.image`` sets it (session 12 of #25:
``build_model`` takes encoders by kind instead of a ``vision_dir``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lhama.errors import ConfigError
from lhama.model.config import ImageConfig
from lhama.model.towers import resnet
from lhama.train.config import ModelSpec
from lhama.train.recipes import _load
from tests.model.test_adapters import _parts


def test_lm_and_vision_build_the_image_branch_with_its_default_or_the_recipe_s_config(tmp_path: Path) -> None:
    lm, tower = _parts(tmp_path)
    saved = resnet.load_tower(tower).state_dict()
    plain = _load(ModelSpec(lm=str(lm), vision=str(tower)))
    assert plain.config.branches == {"image": ImageConfig()}
    assert all(torch.equal(value, saved[key]) for key, value in plain.model.vision_tower.state_dict().items())
    last = _load(ModelSpec(lm=str(lm), vision=str(tower), branches={"image": {"feature_layer": -1}}))
    assert last.config.branches == {"image": ImageConfig(feature_layer=-1)} and last.specs == plain.specs
    with_video = _load(ModelSpec(lm=str(lm), vision=str(tower), branches={"video": {"frames": 2}}))
    assert list(with_video.config.branches) == ["image", "video"] and with_video.config.branches["video"].frames == 2


def test_a_branch_without_the_one_it_builds_on_is_a_config_error(tmp_path: Path) -> None:
    lm, _ = _parts(tmp_path)
    with pytest.raises(ConfigError, match="^model.branches: a video branch needs the image branch"):
        _load(ModelSpec(lm=str(lm), branches={"video": {"frames": 2}}))


def test_the_recipe_names_its_encoders_by_kind() -> None:
    assert ModelSpec(lm="x", vision="open-nsfw-resnet50").encoders == {"image": "open-nsfw-resnet50"}
    assert ModelSpec(lm="x").encoders == {}
