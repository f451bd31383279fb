import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from lhama.data.conversation import encode_prompt
from lhama.errors import CheckpointError, ConfigError
from lhama.model import adapters
from lhama.model.build import build_model
from lhama.model.branches import lhama_config
from lhama.model.config import ImageConfig, LoraSettings
from lhama.model.towers import resnet
from tests.conftest import tiny_text_config, tiny_tokenizer
from tests.model.towers.test_resnet import tiny_tower

CONFIG = lhama_config(image=ImageConfig(feature_layer=-1))


def _parts(tmp_path: Path) -> tuple[Path, Path]:
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_text_config()).save_pretrained(tmp_path / "lm")
    tiny_tokenizer().save_pretrained(tmp_path / "lm")
    (tmp_path / "tower").mkdir()
    resnet.save_tower(tiny_tower(), tmp_path / "tower")
    return tmp_path / "lm", tmp_path / "tower"


def _trained(lm: Path, tower: Path):
    """What a stage-2 run leaves: seed 0 before building (as recipes do), LoRA, moved weights."""
    torch.manual_seed(0)
    loaded = build_model(lm, {"image": tower}, CONFIG)
    adapters.apply_lora(loaded, LoraSettings(r=2, alpha=4, dropout=0.0, target_modules=("q_proj", "v_proj")))
    generator = torch.Generator().manual_seed(1)
    for name, param in loaded.model.named_parameters():
        if adapters.is_adapter_key(name):
            param.data += 0.1 * torch.randn(param.shape, generator=generator)
    return loaded


def test_compose_from_adapter_rebuilds_the_trained_model(tmp_path: Path) -> None:
    lm, tower = _parts(tmp_path)
    trained = _trained(lm, tower)
    adapters.save_adapter(trained, tmp_path / "adapter", "tiny", LoraSettings(r=2, alpha=4, target_modules=("q_proj", "v_proj")))
    adapters.merge_lora(trained)
    trained.model.eval()
    ids = torch.tensor([encode_prompt(trained.tokenizer, "<image>\nDescreva a imagem.", trained.expansions())])
    pixels = torch.rand(1, 3, 50, 50, generator=torch.Generator().manual_seed(2))
    rebuilt = adapters.compose_from_adapter(lm, [tower], tmp_path / "adapter")
    assert rebuilt.config == CONFIG
    with torch.no_grad():
        expected = trained.model(ids, media={"image": pixels}).logits
        actual = rebuilt.model(ids, media={"image": pixels}).logits
    assert torch.allclose(actual, expected, atol=1e-5)  # placeholder row included: same seeded draw
    assert not torch.allclose(actual, build_model(lm, {"image": tower}, CONFIG).model.eval()(ids, media={"image": pixels}).logits, atol=1e-3)


def test_an_adapter_for_another_base_is_refused(tmp_path: Path) -> None:
    lm, tower = _parts(tmp_path)
    trained = _trained(lm, tower)
    adapters.save_adapter(trained, tmp_path / "adapter", "tiny", LoraSettings(r=2, alpha=4, target_modules=("q_proj", "v_proj")))
    torch.manual_seed(0)
    other = tmp_path / "other"
    wider = tiny_text_config()
    wider.hidden_size, wider.head_dim = 48, 12
    AutoModelForCausalLM.from_config(wider).save_pretrained(other)
    tiny_tokenizer().save_pretrained(other)
    with pytest.raises(CheckpointError, match="does not fit this base model"):
        adapters.compose_from_adapter(other, [tower], tmp_path / "adapter")
    with pytest.raises(CheckpointError, match="not a lhama adapter directory"):
        adapters.compose_from_adapter(lm, [tower], tmp_path)


def test_export_adapter_casts_to_float16_and_keeps_the_model(tmp_path: Path) -> None:
    lm, tower = _parts(tmp_path)
    trained = _trained(lm, tower)
    adapters.save_adapter(trained, tmp_path / "adapter", "tiny", LoraSettings(r=2, alpha=4, target_modules=("q_proj", "v_proj")))
    out = adapters.export_adapter(tmp_path / "adapter", tmp_path / "ship", base="tiny base",
                                   settings={"system_prompt": "", "image_guidance": 1.0})
    shipped = load_file(out / adapters.ADAPTER_WEIGHTS)
    original = load_file(tmp_path / "adapter" / adapters.ADAPTER_WEIGHTS)
    assert shipped.keys() == original.keys() and all(v.dtype == torch.float16 for v in shipped.values())
    assert (out / adapters.ADAPTER_WEIGHTS).stat().st_size < 0.6 * (tmp_path / "adapter" / adapters.ADAPTER_WEIGHTS).stat().st_size
    assert adapters.adapter_generation_config(out).system_prompt == ""
    assert adapters.adapter_generation_config(out).image_guidance == 1.0
    with pytest.raises(ConfigError, match="image_guidance must be >= 0"):
        adapters.export_adapter(tmp_path / "adapter", tmp_path / "bad", settings={"image_guidance": -1.0})
    assert not (tmp_path / "bad").exists()
    assert json.loads((out / adapters.ADAPTER_CONFIG).read_text())["base_model"] == "tiny base"
    ids = torch.tensor([encode_prompt(trained.tokenizer, "<image>\nDescreva a imagem.", trained.expansions())])
    pixels = torch.rand(1, 3, 50, 50, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = adapters.compose_from_adapter(lm, [tower], tmp_path / "adapter").model(ids, media={"image": pixels}).logits
        half = adapters.compose_from_adapter(lm, [tower], out).model(ids, media={"image": pixels}).logits
    assert torch.allclose(full, half, atol=1e-2) and not torch.equal(full, half)  # rounded, not changed
    with pytest.raises(CheckpointError, match="not a lhama adapter directory"):
        adapters.export_adapter(tmp_path, tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_an_adapter_from_an_audio_model_keeps_its_trained_audio_projector(tmp_path: Path) -> None:
    from tests.audio_fixtures import tiny_audio_loaded

    loaded = tiny_audio_loaded(image=True)
    saved = load_file(adapters.save_adapter(loaded, tmp_path / "adapter", "tiny", None) / adapters.ADAPTER_WEIGHTS)
    audio = {k for k in loaded.model.state_dict() if k.startswith("audio_projector.")}
    assert audio and audio <= set(saved)
    assert not any(k.startswith("audio_tower.") for k in saved)  # the frozen encoder is not an adapter weight


def test_a_vision_tower_without_an_image_branch_is_refused(tmp_path: Path) -> None:
    lm, tower = _parts(tmp_path)
    with pytest.raises(ConfigError, match=r"^an encoder for the image branch was given \(.*tower\) but the config has no image branch"):
        build_model(lm, {"image": tower}, lhama_config())
