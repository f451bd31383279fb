"""Tiny random decoders saved as Hugging Face directories, for the pruning and distillation tests."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from tests.conftest import CORPUS, tiny_tokenizer

CALIBRATION = CORPUS + [
    "O gato dorme no sofá e o cachorro brinca no quintal.",
    "A capital do Brasil é Brasília, e a maior cidade é São Paulo.",
]


def tiny_decoder(family: str = "qwen2", layers: int = 4, hidden: int = 32, heads: int = 4, kv: int = 2, seed: int = 0):
    """A random-initialised causal LM (vocab 128) of ``family`` ("qwen2" or "llama")."""
    torch.manual_seed(seed)
    common = dict(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=kv, vocab_size=128, max_position_embeddings=256, tie_word_embeddings=False,
        bos_token_id=1, eos_token_id=2, pad_token_id=3,
    )
    config = Qwen2Config(**common) if family == "qwen2" else LlamaConfig(**common)
    return AutoModelForCausalLM.from_config(config).eval()


def save_decoder(model, directory: Path, tokenizer=None) -> Path:
    model.save_pretrained(directory)
    (tokenizer or tiny_tokenizer()).save_pretrained(directory)
    return directory


def write_calibration(path: Path) -> Path:
    path.write_text("\n".join(CALIBRATION) + "\n", encoding="utf-8")
    return path
