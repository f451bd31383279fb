"""CTranslate2 Whisper weights <-> a transformers WhisperDecoder, on a tiny random decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperDecoder

from lhama.errors import CheckpointError
from lhama.weights.whisper_ct2 import (Ct2Model, decoder_names, load_decoder, merge_lora, read_ct2, store_decoder,
                                       write_ct2)

WIDTH, LAYERS, VOCAB, FFN, POSITIONS = 16, 2, 40, 32, 12


def tiny_ct2() -> tuple[Ct2Model, WhisperDecoder]:
    """A CTranslate2-layout model holding a random tiny decoder (plus an encoder tensor and
    scalar config values that must survive untouched), and that decoder."""
    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=VOCAB, d_model=WIDTH, decoder_layers=LAYERS, decoder_attention_heads=2,
                           decoder_ffn_dim=FFN, max_target_positions=POSITIONS, encoder_layers=1, pad_token_id=0,
                           bos_token_id=0, eos_token_id=0, decoder_start_token_id=0)
    decoder = WhisperDecoder(config).eval()
    for name, p in decoder.named_parameters():  # non-trivial norms and biases
        torch.nn.init.normal_(p, mean=1.0 if "norm.weight" in name else 0.0, std=0.3)
    variables: dict[str, np.ndarray] = {"decoder/num_heads": np.array(2, np.int16),
                                        "encoder/conv1/bias": np.arange(WIDTH, dtype=np.float16)}
    for hf, (ct2, _, parts) in decoder_names(LAYERS).items():
        shape = tuple(decoder.state_dict()[hf].shape)
        variables.setdefault(ct2, np.zeros((shape[0] * parts, *shape[1:]), np.float16))
    empty = Ct2Model("WhisperSpec", 3, variables, [("decoder/projection/weight", "decoder/embeddings/weight")])
    return store_decoder(empty, decoder.state_dict()), decoder


def _run(decoder: WhisperDecoder) -> torch.Tensor:
    ids = torch.tensor([[1, 5, 7, 9, 3]])
    states = torch.randn(1, 6, WIDTH, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return decoder(input_ids=ids, encoder_hidden_states=states).last_hidden_state


def test_write_then_read_keeps_every_variable_and_alias(tmp_path):
    model, _ = tiny_ct2()
    write_ct2(tmp_path / "model.bin", model)
    back = read_ct2(tmp_path / "model.bin")
    assert (back.spec, back.revision, back.aliases) == (model.spec, model.revision, model.aliases)
    assert list(back.variables) == list(model.variables)
    for name, value in model.variables.items():
        assert back.variables[name].dtype == value.dtype and np.array_equal(back.variables[name], value), name
    write_ct2(tmp_path / "again.bin", back)
    assert (tmp_path / "again.bin").read_bytes() == (tmp_path / "model.bin").read_bytes()


def test_decoder_loaded_from_ct2_computes_what_the_original_does():
    model, original = tiny_ct2()
    loaded = load_decoder(model)
    # fp16 storage rounds the weights: same function up to that rounding
    assert torch.allclose(_run(loaded), _run(original), atol=2e-2)
    assert not torch.equal(_run(loaded), _run(WhisperDecoder(original.config).eval()))
    # the fused self-attention rows: q, then k (no bias: zero), then v
    fused = model.variables["decoder/layer_1/self_attention/linear_0/bias"]
    assert np.all(fused[WIDTH: 2 * WIDTH] == 0) and np.any(fused[:WIDTH] != 0)


def test_store_decoder_changes_only_the_decoder():
    model, original = tiny_ct2()
    state = {k: v + 1 for k, v in original.state_dict().items()}
    stored = store_decoder(model, state)
    assert np.array_equal(stored.variables["encoder/conv1/bias"], model.variables["encoder/conv1/bias"])
    assert stored.variables["decoder/num_heads"] == 2
    assert stored.variables["decoder/layer_0/ffn/linear_0/weight"].dtype == np.float16
    assert np.allclose(stored.variables["decoder/layer_0/ffn/linear_0/weight"],
                       model.variables["decoder/layer_0/ffn/linear_0/weight"].astype(np.float32) + 1, atol=1e-2)


def test_merge_lora_adds_the_low_rank_product_and_rejects_misfits():
    _, original = tiny_ct2()
    state = original.state_dict()
    a, b = torch.randn(3, WIDTH), torch.randn(FFN, 3)
    merged = merge_lora(state, {"layers.0.fc1.lora_A": a, "layers.0.fc1.lora_B": b}, scale=2.0)
    assert torch.allclose(merged["layers.0.fc1.weight"], state["layers.0.fc1.weight"] + 2.0 * b @ a)
    assert torch.equal(merged["layers.1.fc1.weight"], state["layers.1.fc1.weight"])
    with pytest.raises(CheckpointError, match="does not fit"):
        merge_lora(state, {"layers.0.fc2.lora_A": a, "layers.0.fc2.lora_B": b}, scale=1.0)


def test_unreadable_files_are_one_line_errors(tmp_path):
    model, _ = tiny_ct2()
    write_ct2(tmp_path / "model.bin", model)
    (tmp_path / "cut.bin").write_bytes((tmp_path / "model.bin").read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot read"):
        read_ct2(tmp_path / "cut.bin")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_ct2(tmp_path / "missing.bin")


def test_build_tuned_merges_the_adapter_and_refuses_another_base(tmp_path):
    import json

    from safetensors.torch import save_file

    from lhama.weights.manifest import sha256
    from lhama.weights.whisper_ct2 import WHISPER_FILES, build_tuned

    model, original = tiny_ct2()
    base, adapter = tmp_path / "base", tmp_path / "adapter"
    base.mkdir(), adapter.mkdir()
    write_ct2(base / "model.bin", model)
    for name in WHISPER_FILES:
        (base / name).write_text(f"{name} of the base")
    a, b = torch.randn(2, WIDTH), torch.randn(WIDTH, 2)
    save_file({"layers.1.self_attn.q_proj.lora_A": a.half(), "layers.1.self_attn.q_proj.lora_B": b.half()},
              str(adapter / "adapter_model.safetensors"))
    config = {"scale": 0.5, "base_model_sha256": sha256(base / "model.bin")}
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    checked = build_tuned(base, adapter, tmp_path / "out")
    assert checked["lora_tensors"] == 2 and (tmp_path / "out" / "tokenizer.json").read_text() == "tokenizer.json of the base"
    tuned = load_decoder(read_ct2(tmp_path / "out" / "model.bin")).state_dict()
    expected = load_decoder(model).state_dict()["layers.1.self_attn.q_proj.weight"] + 0.5 * b.half().float() @ a.half().float()
    assert torch.allclose(tuned["layers.1.self_attn.q_proj.weight"], expected, atol=1e-2)
    assert torch.equal(tuned["layers.0.fc1.weight"], load_decoder(model).state_dict()["layers.0.fc1.weight"])
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "base_model_sha256": "0" * 64}))
    with pytest.raises(CheckpointError, match="trained on another model"):
        build_tuned(base, adapter, tmp_path / "again")
