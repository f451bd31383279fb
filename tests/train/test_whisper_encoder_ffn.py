"""Session 6 (#28): LoRA on Whisper's last encoder feed-forward block, on stored "mid" states.
A tiny random encoder in CTranslate2 layout: it loads as a transformers WhisperEncoder that
computes what the original does, its top recomputes the output from the mids, it tunes, and the
adapter merges into the CTranslate2 encoder tensors."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from lhama.errors import DataError
from lhama.train.whisper import EncoderTop, add_encoder_lora, encoder_mid, tune_whisper
from lhama.weights.whisper_ct2 import (Ct2Model, build_tuned, encoder_names, load_encoder, read_ct2, store_decoder,
                                       write_ct2)
from tests.train.test_whisper_tune import TEXTS, config, whisper_dir
from tests.weights.test_whisper_ct2 import WIDTH, tiny_ct2

MELS, POSITIONS, LAYERS = 8, 6, 2


def tiny_encoder(layers: int = LAYERS) -> WhisperEncoder:
    torch.manual_seed(3)
    encoder = WhisperEncoder(WhisperConfig(d_model=WIDTH, num_mel_bins=MELS, encoder_layers=layers,
                                           encoder_attention_heads=2, encoder_ffn_dim=32,
                                           max_source_positions=POSITIONS)).eval()
    for name, p in encoder.named_parameters():
        torch.nn.init.normal_(p, mean=1.0 if "norm.weight" in name else 0.0, std=0.3)
    return encoder


def with_encoder(model: Ct2Model, encoder: WhisperEncoder) -> Ct2Model:
    """``model`` (tiny_ct2's decoder) with ``encoder`` stored in CTranslate2's encoder tensors."""
    variables = {**model.variables, "encoder/num_heads": np.array(2, np.int16)}
    for hf, (ct2, _, parts) in encoder_names(encoder.config.encoder_layers).items():
        shape = tuple(encoder.state_dict()[hf].shape)
        variables.setdefault(ct2, np.zeros((shape[0] * parts, *shape[1:]), np.float16))
    return store_decoder(Ct2Model(model.spec, model.revision, variables, model.aliases), encoder.state_dict(),
                         encoder=True)


def mel() -> torch.Tensor:
    return torch.randn(2, MELS, 2 * POSITIONS, generator=torch.Generator().manual_seed(5))


def test_the_encoder_loads_from_ct2_and_its_top_recomputes_the_output_from_mids():
    original = tiny_encoder()
    model = with_encoder(tiny_ct2()[0], original)
    loaded = load_encoder(model)
    with torch.no_grad():
        expected = original(mel()).last_hidden_state
        mid, output = encoder_mid(loaded, mel())
        assert torch.allclose(output, expected, atol=5e-2)  # fp16 storage rounds the weights
        assert torch.allclose(EncoderTop(loaded)(mid), output, atol=1e-5)
        assert not torch.allclose(mid, output, atol=0.1)  # the top does real work
    assert model.variables["decoder/num_heads"] == 2  # the decoder side is untouched


def write_shards(tmp_path, key: str, states: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """train and dev shards holding ``states(mels)`` under ``key``, on a fixed mel per text."""
    for split in ("train", "dev"):
        (tmp_path / "data" / split).mkdir(parents=True)
        texts = [TEXTS[i % len(TEXTS)] for i in range(8)]
        mels = torch.stack([torch.randn(MELS, 2 * POSITIONS, generator=torch.Generator().manual_seed(TEXTS.index(t)))
                            for t in texts])
        torch.save({key: states(mels).half(), "texts": texts}, tmp_path / "data" / split / "shard-00000.pt")


def shards_with_mids(tmp_path, encoder: WhisperEncoder) -> None:
    """train and dev shards whose mids are the encoder's on a fixed mel per text."""
    write_shards(tmp_path, "mid", lambda mels: encoder_mid(encoder, mels)[0])


def tune_tiny(tmp_path, key: str, states: Callable, layers: int = LAYERS,
              **options) -> tuple[Ct2Model, Path, WhisperEncoder]:
    """tiny_encoder(layers) in a tiny CTranslate2 Whisper, shards of its ``states(encoder, mels)`` under ``key``,
    tuned 6 epochs with ``options`` (its dev loss must fall) and merged into tmp_path/"tuned":
    (the original model, the adapter folder, the tuned encoder)."""
    base = whisper_dir(tmp_path)
    model = with_encoder(read_ct2(base / "model.bin"), tiny_encoder(layers))
    write_ct2(base / "model.bin", model)
    write_shards(tmp_path, key, partial(states, load_encoder(model)))
    rows = []
    adapter = tune_whisper(config(tmp_path, epochs=6, **options), report=rows.append)
    dev = [r["dev_loss"] for r in rows if "dev_loss" in r]
    assert dev[-1] < 0.8 * dev[0]
    for name in ("config.json", "vocabulary.json"):
        (base / name).write_text("{}")
    build_tuned(base, adapter, tmp_path / "tuned")
    return model, adapter, load_encoder(read_ct2(tmp_path / "tuned" / "model.bin"))


def test_encoder_ffn_tunes_and_merges_into_the_ct2_encoder(tmp_path):
    model, adapter, tuned = tune_tiny(tmp_path, "mid", lambda encoder, mels: encoder_mid(encoder, mels)[0],
                                      encoder_ffn=True)
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    assert {"encoder.layers.1.fc1.lora_A", "encoder.layers.1.fc2.lora_B", "layers.0.fc1.lora_A"} <= set(tensors)
    assert json.loads((adapter / "adapter_config.json").read_text())["encoder_targets"] == ["layers.1.fc1", "layers.1.fc2"]
    assert tensors["encoder.layers.1.fc2.lora_B"].abs().sum() > 0
    top = add_encoder_lora(load_encoder(model), 4, 2.0)
    loaded = top.load_state_dict({k.removeprefix("encoder."): v.float() for k, v in tensors.items()
                                  if k.startswith("encoder.")}, strict=False)
    assert not loaded.unexpected_keys  # every encoder LoRA tensor is named as the top names it
    mids = torch.load(tmp_path / "data" / "dev" / "shard-00000.pt")["mid"].float()
    with torch.no_grad():
        trained, merged, before = top(mids), EncoderTop(tuned)(mids), EncoderTop(load_encoder(model))(mids)
    assert (trained - before).abs().max() > 0.05  # the LoRA changed the encoder's output
    assert torch.allclose(merged, trained, atol=3e-2)  # and the merged CTranslate2 weights compute that change
    assert torch.equal(tuned.layers[0].fc1.weight, load_encoder(model).layers[0].fc1.weight)  # other layers kept


def test_encoder_ffn_on_shards_without_mids_is_a_one_line_error(tmp_path):
    from tests.train.test_whisper_tune import shards

    shards(tmp_path)
    with pytest.raises(DataError, match="hold no 'mid' tensors.*data --mid"):
        tune_whisper(config(tmp_path, encoder_ffn=True))
