"""Session 7 (#28): LoRA on Whisper's whole last encoder layer (self-attention q/k/v/out and
fc1/fc2), on stored "pre" states (the states entering that layer). A tiny random encoder in
CTranslate2 layout: its top recomputes the output from the pre states, it tunes, and the
adapter's attention and feed-forward LoRAs merge into the CTranslate2 encoder tensors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from lhama.errors import DataError
from lhama.train.whisper import PRE, EncoderTop, add_encoder_lora, encoder_inner, tune_whisper
from lhama.weights.whisper_ct2 import load_encoder, read_ct2
from tests.train.test_whisper_encoder_ffn import mel, tiny_encoder, tune_tiny, with_encoder
from tests.train.test_whisper_tune import config, whisper_dir
from tests.weights.test_whisper_ct2 import tiny_ct2


def test_the_attention_top_recomputes_the_output_from_the_pre_states():
    loaded = load_encoder(with_encoder(tiny_ct2()[0], tiny_encoder()))
    with torch.no_grad():
        found = encoder_inner(loaded, mel())
        assert torch.allclose(EncoderTop(loaded, attention=True)(found[PRE]), found["output"], atol=1e-5)
        assert torch.allclose(EncoderTop(loaded)(found["mid"]), found["output"], atol=1e-5)
        assert not torch.allclose(found[PRE], found["mid"], atol=0.1)  # the attention block does real work
    assert EncoderTop(loaded, attention=True).targets == [f"layers.1.self_attn.{n}_proj" for n in "qkv"] + [
        "layers.1.self_attn.out_proj", "layers.1.fc1", "layers.1.fc2"]


def test_encoder_attn_tunes_and_merges_attention_and_ffn_into_the_ct2_encoder(tmp_path):
    model, adapter, tuned = tune_tiny(tmp_path, PRE, lambda encoder, mels: encoder_inner(encoder, mels)[PRE],
                                      encoder_attn=True)
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    for name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "fc1", "fc2"):
        assert tensors[f"encoder.layers.1.{name}.lora_B"].abs().sum() > 0, name  # every encoder LoRA trained
    assert json.loads((adapter / "adapter_config.json").read_text())["encoder_targets"][0] == "layers.1.self_attn.q_proj"
    top = add_encoder_lora(load_encoder(model), 4, 2.0, attention=True)
    loaded = top.load_state_dict({k.removeprefix("encoder."): v.float() for k, v in tensors.items()
                                  if k.startswith("encoder.")}, strict=False)
    assert not loaded.unexpected_keys  # every encoder LoRA tensor is named as the top names it
    pre = torch.load(tmp_path / "data" / "dev" / "shard-00000.pt")[PRE].float()
    with torch.no_grad():
        trained, merged = top(pre), EncoderTop(tuned, attention=True)(pre)
        before = EncoderTop(load_encoder(model), attention=True)(pre)
    assert (trained - before).abs().max() > 0.05  # the LoRA changed the encoder's output
    assert torch.allclose(merged, trained, atol=3e-2)  # and the merged CTranslate2 weights compute that change
    assert not torch.equal(tuned.layers[1].self_attn.k_proj.weight, load_encoder(model).layers[1].self_attn.k_proj.weight)
    assert torch.equal(tuned.layers[0].self_attn.q_proj.weight, load_encoder(model).layers[0].self_attn.q_proj.weight)


def test_encoder_attn_on_shards_with_only_mids_is_a_one_line_error(tmp_path):
    from tests.train.test_whisper_encoder_ffn import shards_with_mids

    base = whisper_dir(tmp_path)
    model = with_encoder(read_ct2(base / "model.bin"), tiny_encoder())
    shards_with_mids(tmp_path, load_encoder(model))
    with pytest.raises(DataError, match="hold no 'pre' tensors.*data --pre"):
        tune_whisper(config(tmp_path, encoder_attn=True))
