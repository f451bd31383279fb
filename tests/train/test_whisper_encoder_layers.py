"""Session 8 (#28): LoRA on Whisper's top two encoder layers, whole, on stored "pre2" states (the
states entering the second layer from the top). A tiny random two-layer encoder in CTranslate2
layout: its two-layer top recomputes the output from pre2, every one of its twelve encoder LoRAs
trains, and the adapter merges into both layers of the CTranslate2 encoder."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from lhama.errors import ConfigError, DataError
from lhama.train.whisper import (ENCODER_ATTN_TARGETS, PRE, EncoderTop, WhisperTuneConfig, add_encoder_lora,
                                 encoder_inner, pre_key, tune_whisper)
from lhama.weights.whisper_ct2 import load_encoder, read_ct2
from tests.train.test_whisper_encoder_ffn import mel, tiny_encoder, tune_tiny, with_encoder, write_shards
from tests.train.test_whisper_tune import config, whisper_dir
from tests.weights.test_whisper_ct2 import tiny_ct2

PRE2 = pre_key(2)
NAMES = (*ENCODER_ATTN_TARGETS, "fc1", "fc2")


def test_the_two_layer_top_recomputes_the_output_from_the_states_entering_it():
    loaded = load_encoder(with_encoder(tiny_ct2()[0], tiny_encoder()))
    with torch.no_grad():
        found = encoder_inner(loaded, mel())
        assert torch.allclose(EncoderTop(loaded, attention=True, layers=2)(found[PRE2]), found["output"], atol=1e-5)
        assert torch.allclose(EncoderTop(loaded, attention=True)(found[PRE]), found["output"], atol=1e-5)
        assert not torch.allclose(found[PRE2], found[PRE], atol=0.1)  # the lower layer does real work
    assert PRE2 == "pre2"
    assert EncoderTop(loaded, attention=True, layers=2).targets == [f"layers.{i}.{n}" for i in (0, 1) for n in NAMES]


def test_two_layers_tune_and_merge_into_both_ct2_encoder_layers(tmp_path):
    model, adapter, tuned = tune_tiny(tmp_path, PRE2, lambda encoder, mels: encoder_inner(encoder, mels)[PRE2],
                                      encoder_attn=True, encoder_layers=2)
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    for index in (0, 1):
        for name in NAMES:
            assert tensors[f"encoder.layers.{index}.{name}.lora_B"].abs().sum() > 0, (index, name)
    assert len(json.loads((adapter / "adapter_config.json").read_text())["encoder_targets"]) == 12
    top = add_encoder_lora(load_encoder(model), 4, 2.0, attention=True, layers=2)
    loaded = top.load_state_dict({k.removeprefix("encoder."): v.float() for k, v in tensors.items()
                                  if k.startswith("encoder.")}, strict=False)
    assert not loaded.unexpected_keys
    pre2 = torch.load(tmp_path / "data" / "dev" / "shard-00000.pt")[PRE2].float()
    with torch.no_grad():
        trained, merged = top(pre2), EncoderTop(tuned, attention=True, layers=2)(pre2)
        before = EncoderTop(load_encoder(model), attention=True, layers=2)(pre2)
    assert (trained - before).abs().max() > 0.05  # the LoRA changed the encoder's output
    assert torch.allclose(merged, trained, atol=3e-2)  # and the merged CTranslate2 weights compute that change
    for index in (0, 1):
        assert not torch.equal(tuned.layers[index].self_attn.q_proj.weight,
                               load_encoder(model).layers[index].self_attn.q_proj.weight)


def test_two_layers_on_pre_shards_name_the_data_step_and_need_encoder_attn(tmp_path):
    base = whisper_dir(tmp_path)
    model = with_encoder(read_ct2(base / "model.bin"), tiny_encoder())
    write_shards(tmp_path, PRE, lambda mels: encoder_inner(load_encoder(model), mels)[PRE])
    with pytest.raises(DataError, match=r"hold no 'pre2' tensors.*data --pre --layers 2"):
        tune_whisper(config(tmp_path, encoder_attn=True, encoder_layers=2))
    with pytest.raises(ConfigError, match="encoder_layers=2"):
        WhisperTuneConfig(data_dir="d", whisper_dir="w", encoder_layers=2)
    with pytest.raises(ConfigError, match="attention=True"):
        EncoderTop(load_encoder(model), layers=2)


def test_three_of_four_layers_tune_and_merge_leaving_the_bottom_layer_alone(tmp_path):
    """Session 9: the top three layers ("pre3") of a four-layer encoder, as Whisper-base's top three
    of six: the three-layer top recomputes the output, all eighteen LoRAs train, they merge into
    CTranslate2 layers 1-3, and layer 0 keeps its weights."""
    pre3 = pre_key(3)
    model, adapter, tuned = tune_tiny(tmp_path, pre3, lambda encoder, mels: encoder_inner(encoder, mels)[pre3],
                                      layers=4, encoder_attn=True, encoder_layers=3)
    original = load_encoder(model)
    with torch.no_grad():
        found = encoder_inner(original, mel())
        assert torch.allclose(EncoderTop(original, attention=True, layers=3)(found[pre3]), found["output"], atol=1e-5)
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    assert {k for k in tensors if k.startswith("encoder.")} == {
        f"encoder.layers.{i}.{n}.lora_{ab}" for i in (1, 2, 3) for n in NAMES for ab in "AB"}
    assert all(tensors[f"encoder.layers.{i}.{n}.lora_B"].abs().sum() > 0 for i in (1, 2, 3) for n in NAMES)
    assert json.loads((adapter / "adapter_config.json").read_text())["encoder_targets"] == [
        f"layers.{i}.{n}" for i in (1, 2, 3) for n in NAMES]
    top = add_encoder_lora(load_encoder(model), 4, 2.0, attention=True, layers=3)
    loaded = top.load_state_dict({k.removeprefix("encoder."): v.float() for k, v in tensors.items()
                                  if k.startswith("encoder.")}, strict=False)
    assert not loaded.unexpected_keys and not [k for k in loaded.missing_keys if "lora_" in k]
    states = torch.load(tmp_path / "data" / "dev" / "shard-00000.pt")[pre3].float()
    with torch.no_grad():
        assert torch.allclose(EncoderTop(tuned, attention=True, layers=3)(states), top(states), atol=3e-2)
    for name, weight in original.layers[0].state_dict().items():
        assert torch.equal(tuned.layers[0].state_dict()[name], weight), name
    assert not torch.equal(tuned.layers[1].fc1.weight, original.layers[1].fc1.weight)
