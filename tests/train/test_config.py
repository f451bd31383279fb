"""Recipe configs: presets load, unknown keys and bad values are one-line errors."""

from __future__ import annotations

import pytest

from lhama.config import from_dict, load, to_dict
from lhama.errors import ConfigError
from lhama.model.config import AudioConfig, ImageConfig, VideoConfig
from lhama.train.config import ModelSpec, TrainConfig
from lhama.train.recipes import find_recipe


DATA = ["data.path=captions.tsv", "data.image_dir=images"]


@pytest.mark.parametrize("name", ["stage1-tuxpaint", "stage2-lora"])
def test_presets_load(name: str) -> None:
    cfg = load(TrainConfig, find_recipe(name), DATA)
    assert cfg.optim.lr == (1e-3 if cfg.stage == "align" else 2e-4)
    assert cfg.optim.schedule == "cosine" and cfg.optim.warmup_ratio == 0.03
    assert (cfg.data.path, cfg.data.image_dir) == ("captions.tsv", "images")


@pytest.mark.parametrize("name", ["stage1-tuxpaint", "stage2-lora"])
def test_generic_presets_ask_for_the_data_in_one_line(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(TrainConfig, find_recipe(name))
    assert str(info.value) == f"{name}.yaml needs data.path, data.image_dir: add data.path=... data.image_dir=... to the command"
    assert load(TrainConfig, find_recipe(name), ["data.path=x.json", "~data.image_dir"]).data.image_dir is None


def test_no_shipped_preset_points_outside_the_repository() -> None:
    presets = find_recipe("stage1-tuxpaint").parent
    for preset in presets.glob("*.yaml"):
        assert "../" not in preset.read_text(encoding="utf-8"), preset.name


@pytest.mark.parametrize("name", ["default-stage1", "default-stage2"])
def test_default_model_presets_hold_out_tuxpaint_and_train_their_stage(name: str) -> None:
    cfg = load(TrainConfig, find_recipe(name))
    assert cfg.eval_data.path == "runs/default-mix/heldout.jsonl"  # the hold-out: loss only
    assert cfg.data.path == f"runs/default-mix/{name.split('-')[1]}.jsonl"
    assert cfg.trainable == (("multi_modal_projector",) if cfg.stage == "align" else ("multi_modal_projector", "lora_"))


def test_the_default_presets_chain_stage0_stage1_stage2() -> None:
    stage0, stage1, stage2 = (load(TrainConfig, find_recipe(f"default-stage{n}")) for n in range(3))
    assert stage0.stage == "prealign" and stage0.trainable == ("multi_modal_projector",)
    assert stage0.data.path == stage1.data.path and stage0.eval_data.path == stage1.eval_data.path
    assert stage0.prealign.prompt == "Descreva a imagem brevemente."
    assert stage0.model.branches["image"].projector.norm == "layernorm" and stage0.model.vision == "open-nsfw-resnet50"
    # each stage starts from the previous one's model; stage 1 keeps stage 0's contrast as a second term
    assert stage1.model.init == f"{stage0.output_dir}/model" and stage2.model.init == f"{stage1.output_dir}/model"
    assert stage1.loss.image_caption_contrast == 0.5 and stage2.loss.image_caption_contrast == 0.0


def test_unknown_key_names_it_and_the_valid_keys() -> None:
    with pytest.raises(ConfigError) as info:
        load(TrainConfig, find_recipe("stage1-tuxpaint"), [*DATA, "optim.learning_rate=1e-4"])
    message = str(info.value)
    assert "optim.learning_rate" in message and "valid keys: betas, lr, max_grad_norm" in message
    assert "\n" not in message


def test_bad_values_are_errors() -> None:
    with pytest.raises(ConfigError, match="stage must be one of"):
        load(TrainConfig, None, ["model.lm=x", "stage=pretrain"])
    with pytest.raises(ConfigError, match="micro_batch_size must be >= 1"):
        load(TrainConfig, None, ["model.lm=x", "micro_batch_size=0"])
    with pytest.raises(ConfigError, match="model.init"):
        load(TrainConfig, None, [])


def test_trainable_patterns_follow_the_stage() -> None:
    assert load(TrainConfig, None, ["model.lm=x"]).trainable == ("multi_modal_projector",)
    lora = load(TrainConfig, None, ["model.lm=x", "stage=finetune", "model.lora.r=8"])
    assert lora.trainable == ("multi_modal_projector", "lora_")


def test_unknown_recipe_lists_presets() -> None:
    with pytest.raises(ConfigError, match="presets: default-stage0, default-stage1, default-stage2, stage1-audio, stage1-tuxpaint, stage1-video, stage2-lora"):
        find_recipe("nope")


def test_model_branches_are_read_per_kind_in_merge_order() -> None:
    spec = from_dict(ModelSpec, {"lm": "x", "branches": {"audio": {"tokens": 8}, "image": {"feature_layer": -1}}})
    assert list(spec.branches) == ["image", "audio"]
    assert spec.branches == {"image": ImageConfig(feature_layer=-1), "audio": AudioConfig(tokens=8)}
    with pytest.raises(ConfigError, match="^unknown branch kind model.branches.smell; kinds: image, video, audio$"):
        from_dict(ModelSpec, {"lm": "x", "branches": {"smell": {}}})
    with pytest.raises(ConfigError, match="^model.branches.audio.tokens must be int"):
        from_dict(ModelSpec, {"lm": "x", "branches": {"audio": {"tokens": "many"}}})


def test_recipe_keys_from_before_branches_still_load_as_they_were_read() -> None:
    old = {"lm": "x", "vision": "t", "image": {"feature_layer": -1}, "video": {"frames": 2}, "audio": {"tokens": 8}}
    assert from_dict(ModelSpec, old).branches == {"image": ImageConfig(feature_layer=-1), "video": VideoConfig(frames=2),
                                                  "audio": AudioConfig(tokens=8)}
    # an init model kept its own image branch; video was dropped without init or vision; null was unset
    assert list(from_dict(ModelSpec, {"init": "m", "image": {}, "video": {"frames": 2}}).branches) == ["video"]
    assert from_dict(ModelSpec, {"lm": "x", "image": {}, "video": {"frames": 2}, "audio": None}).branches == {}
    # an old-style override lies over the recipe's branches entry, key by key
    cfg = load(TrainConfig, find_recipe("stage1-video"), ["model.video.pooling=mean", "model.video.projector.kind=linear"])
    video = cfg.model.branches["video"]
    assert (video.pooling, video.frames, video.num_queries, video.projector.kind) == ("mean", 8, 32, "linear")


def test_a_written_train_config_loads_back_with_its_branches() -> None:
    cfg = load(TrainConfig, find_recipe("stage1-audio"), ["model.branches.audio.tokens=16"])
    again = from_dict(TrainConfig, to_dict(cfg))
    assert again == cfg and again.model.branches["audio"].tokens == 16
