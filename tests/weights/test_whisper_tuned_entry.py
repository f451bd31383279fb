"""The default's transcriber, ``whisper-base-ptbr``: Whisper-base + the decoder LoRA lhama
ships, merged at prepare time (tiny random Whisper here; the shipped adapter is only read)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lhama.weights import registry
from lhama.weights.manifest import ADAPTER_CONFIG, ADAPTER_WEIGHTS, sha256, shipped_adapter, write_manifest
from lhama.weights.prepare import is_current, prepare
from lhama.weights.whisper_ct2 import WHISPER_FILES, load_decoder, read_ct2, write_ct2
from tests.weights.test_whisper_ct2 import WIDTH, tiny_ct2

TUNED = "whisper-base-ptbr"


def test_the_shipped_adapter_is_small_and_fits_whisper_base():
    source = registry.registry_entry(TUNED)
    assert source.kind == "audio-tuned" and source.parts == ("whisper-base",) and source.distribution == "lhama"
    folder = shipped_adapter(source)
    assert (folder / ADAPTER_WEIGHTS).stat().st_size < 3_500_000
    config = json.loads((folder / ADAPTER_CONFIG).read_text())
    assert config["rank"] == 16 and len(config["base_model_sha256"]) == 64
    tensors = load_file(str(folder / ADAPTER_WEIGHTS))
    # 10 linears (the cross-attention keys and values too) x 6 decoder layers x (A, B), the last encoder
    # layer's fc1 and fc2 x (A, B) since session 6, its self-attention q/k/v/out x (A, B) since session 7,
    # and the same six linears of the layer below (layer 4) since session 8, and of layer 3 since session 9
    assert len(tensors) == 156
    assert {"encoder.layers.5.fc1.lora_A", "encoder.layers.5.fc2.lora_B", "encoder.layers.5.self_attn.k_proj.lora_A",
            "encoder.layers.3.self_attn.v_proj.lora_A", "encoder.layers.3.fc1.lora_B",
            "encoder.layers.5.self_attn.out_proj.lora_B", "encoder.layers.4.self_attn.q_proj.lora_A",
            "encoder.layers.4.fc2.lora_B"} <= set(tensors)
    assert config["encoder_targets"] == [f"layers.{i}.{name}" for i in (3, 4, 5) for name in (
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "fc1", "fc2")]
    for name, tensor in tensors.items():
        assert tensor.dtype == torch.float16 and 16 in tensor.shape and set(tensor.shape) <= {16, 512, 2048}, name
    assert {"layers.5.encoder_attn.k_proj.lora_A", "layers.5.encoder_attn.v_proj.lora_B"} <= set(tensors)  # session 5


def test_the_cascade_and_chat_hear_with_the_tuned_whisper():
    from lhama.serve import cascade, terminal

    assert cascade.WHISPER == terminal.WHISPER == TUNED  # lhama chat's transcriber is the cascade's


def _tiny_base(home: Path) -> Path:
    """A prepared (manifest and all) tiny CTranslate2-layout Whisper standing in for whisper-base."""
    base = registry.models_dir(home) / "whisper-base"
    base.mkdir(parents=True)
    write_ct2(base / "model.bin", tiny_ct2()[0])
    for name in WHISPER_FILES:
        (base / name).write_text(name)
    write_manifest(base, {"package": "tiny"}, {})
    return base


def _adapter(folder: Path, base: Path, seed: int) -> None:
    folder.mkdir(exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    save_file({"layers.0.fc1.lora_A": torch.randn(2, WIDTH, generator=g).half(),
               "layers.0.fc1.lora_B": torch.randn(32, 2, generator=g).half()}, str(folder / ADAPTER_WEIGHTS))
    (folder / ADAPTER_CONFIG).write_text(json.dumps({"scale": 1.0, "base_model_sha256": sha256(base / "model.bin")}))


def test_prepare_merges_the_shipped_adapter_and_a_new_adapter_makes_it_out_of_date(tmp_path, monkeypatch):
    from lhama.model import audio
    from lhama.weights import manifest

    base = _tiny_base(tmp_path)
    shipped = tmp_path / "shipped"
    _adapter(shipped, base, seed=0)
    monkeypatch.setattr(manifest, "shipped_adapter", lambda source: shipped)
    monkeypatch.setattr(audio, "check_ct2_whisper", lambda path: {"states_shape": [1, 1500, WIDTH]})
    out = prepare(TUNED, home=tmp_path)
    merged = load_decoder(read_ct2(out / "model.bin")).state_dict()["layers.0.fc1.weight"]
    original = load_decoder(read_ct2(base / "model.bin")).state_dict()["layers.0.fc1.weight"]
    tensors = load_file(str(shipped / ADAPTER_WEIGHTS))
    delta = tensors["layers.0.fc1.lora_B"].float() @ tensors["layers.0.fc1.lora_A"].float()
    assert torch.allclose(merged, original + delta, atol=2e-2) and not torch.allclose(merged, original, atol=1e-2)
    assert (out / "tokenizer.json").read_text() == "tokenizer.json" and is_current(TUNED, home=tmp_path)
    _adapter(shipped, base, seed=1)  # an upgrade ships a retrained adapter
    assert not is_current(TUNED, home=tmp_path)
    assert prepare(TUNED, home=tmp_path) == out and is_current(TUNED, home=tmp_path)


def test_an_adapter_for_another_base_is_a_one_line_error(tmp_path, monkeypatch):
    from lhama.errors import CheckpointError
    from lhama.weights import manifest

    base = _tiny_base(tmp_path)
    shipped = tmp_path / "shipped"
    _adapter(shipped, base, seed=0)
    (shipped / ADAPTER_CONFIG).write_text(json.dumps({"scale": 1.0, "base_model_sha256": "0" * 64}))
    monkeypatch.setattr(manifest, "shipped_adapter", lambda source: shipped)
    with pytest.raises(CheckpointError, match="trained on another model"):
        prepare(TUNED, home=tmp_path)
    assert not (registry.models_dir(tmp_path) / TUNED).exists()
