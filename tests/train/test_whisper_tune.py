"""LoRA tuning of Whisper's decoder on stored encoder states: a tiny decoder, a word-level
tokenizer, random states; it learns, it resumes to the same adapter, the adapter merges."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from lhama.errors import DataError
from lhama.train.config import OptimConfig
from lhama.train.whisper import CROSS_KV_TARGETS, END, PROMPT, WhisperTuneConfig, add_lora, batch_loss, tune_whisper
from lhama.weights.whisper_ct2 import load_decoder, merge_lora, read_ct2, write_ct2
from tests.weights.test_whisper_ct2 import WIDTH, tiny_ct2

WORDS = ["pão", "leite", "casa", "janela", "sala", "água", "compre", "feche"]
TEXTS = ["compre pão", "feche janela", "água sala", "leite casa"]


def whisper_dir(tmp_path):
    model, _ = tiny_ct2()
    out = tmp_path / "whisper"
    out.mkdir()
    write_ct2(out / "model.bin", model)
    vocab = {t: i for i, t in enumerate([*PROMPT, END, "[UNK]", *WORDS])}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(out / "tokenizer.json"))
    return out


def shards(tmp_path, count: int = 8):
    generator = torch.Generator().manual_seed(0)
    for split in ("train", "dev"):
        (tmp_path / "data" / split).mkdir(parents=True)
        texts = [TEXTS[i % len(TEXTS)] for i in range(count)]
        # each text gets its own fixed states: there is something to learn
        states = torch.stack([torch.randn(6, WIDTH, generator=torch.Generator().manual_seed(TEXTS.index(t)))
                              for t in texts]).half()
        torch.save({"states": states + 0.01 * torch.randn(states.shape, generator=generator).half(), "texts": texts},
                   tmp_path / "data" / split / "shard-00000.pt")
    return tmp_path / "data"


def config(tmp_path, **changes) -> WhisperTuneConfig:
    base = WhisperTuneConfig(data_dir=str(shards(tmp_path) if not (tmp_path / "data").exists() else tmp_path / "data"),
                             whisper_dir=str(whisper_dir(tmp_path) if not (tmp_path / "whisper").exists()
                                             else tmp_path / "whisper"),
                             output_dir=str(tmp_path / "run"), rank=4, alpha=8.0, epochs=15, batch_size=4,
                             optim=OptimConfig(lr=3e-2, warmup_ratio=0.0), checkpoint_every=10)
    return replace(base, **changes)


def test_tuning_lowers_the_dev_loss_and_writes_a_mergeable_adapter(tmp_path):
    rows = []
    adapter = tune_whisper(config(tmp_path), report=rows.append)
    dev = [r["dev_loss"] for r in rows if "dev_loss" in r]
    assert dev[-1] < 0.7 * dev[0]
    settings = json.loads((adapter / "adapter_config.json").read_text())
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    assert settings["rank"] == 4 and settings["scale"] == 2.0
    assert "layers.0.self_attn.q_proj.lora_A" in tensors and all(t.dtype == torch.float16 for t in tensors.values())
    # the merged plain decoder scores like the trained LoRA decoder
    model = read_ct2(tmp_path / "whisper" / "model.bin")
    merged = load_decoder(model)
    merged.load_state_dict(merge_lora(merged.state_dict(), tensors, settings["scale"]))
    lora = add_lora(load_decoder(model), 4, 2.0)
    lora.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)
    data = torch.load(tmp_path / "data" / "dev" / "shard-00000.pt")
    ids = [[0, 1, 2, 3, 6 + WORDS.index("compre"), 6 + WORDS.index("pão"), 4]]
    with torch.no_grad():
        assert abs(batch_loss(merged, data["states"][:1], ids) - batch_loss(lora.eval(), data["states"][:1], ids)) < 1e-2


def test_cross_attention_keys_and_values_tune_and_merge_into_the_fused_ct2_tensor(tmp_path):
    from lhama.weights.whisper_ct2 import build_tuned

    adapter = tune_whisper(config(tmp_path, targets=CROSS_KV_TARGETS, epochs=3))
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    assert json.loads((adapter / "adapter_config.json").read_text())["targets"][-2:] == ["encoder_attn.k_proj",
                                                                                          "encoder_attn.v_proj"]
    assert tensors["layers.0.encoder_attn.v_proj.lora_B"].abs().sum() > 0
    for name in ("config.json", "vocabulary.json"):  # copied beside the tuned model.bin
        (tmp_path / "whisper" / name).write_text("{}")
    build_tuned(tmp_path / "whisper", adapter, tmp_path / "tuned")
    base, tuned = (load_decoder(read_ct2(d / "model.bin")) for d in (tmp_path / "whisper", tmp_path / "tuned"))
    lora = add_lora(load_decoder(read_ct2(tmp_path / "whisper" / "model.bin")), 4, 2.0, CROSS_KV_TARGETS)
    lora.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)
    for name in ("k_proj", "v_proj"):  # both halves of CTranslate2's fused linear_1 carry their own change
        expected = getattr(lora.layers[0].encoder_attn, name)
        delta = expected.scale * expected.lora_B @ expected.lora_A
        assert delta.abs().max() > 0.1  # a change the comparison below can see
        assert torch.allclose(getattr(tuned.layers[0].encoder_attn, name).weight,
                              getattr(base.layers[0].encoder_attn, name).weight + delta, atol=2e-2)


def test_a_stopped_run_resumes_to_the_same_adapter(tmp_path):
    whole = tune_whisper(config(tmp_path))
    expected = load_file(str(whole / "adapter_model.safetensors"))
    stopped = config(tmp_path, output_dir=str(tmp_path / "split"), max_minutes=1e-9)
    assert tune_whisper(stopped) is None  # one step, a checkpoint, stop
    resumed = tune_whisper(replace(stopped, max_minutes=0.0), resume=True)
    actual = load_file(str(resumed / "adapter_model.safetensors"))
    assert all(torch.equal(actual[k], expected[k]) for k in expected)


def test_missing_shards_are_a_one_line_error(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError, match="no train shards"):
        tune_whisper(config(tmp_path))
