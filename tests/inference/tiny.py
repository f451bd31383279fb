"""Tiny random decoders for the inference tests: wide enough for int4 groups (64 inputs),
with a sharpened output layer so that greedy choices have clear margins, as in a trained LM."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from lhama.model.build import LoadedModel
from lhama.model.config import LhamaConfig
from lhama.model.lhama import LhamaModel
from tests.conftest import tiny_tokenizer


def decoder_config(layers: int = 2, tie: bool = False) -> LlamaConfig:
    return LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=128, max_position_embeddings=512,
        tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2, pad_token_id=3,
    )


def tiny_decoder(seed: int = 0, layers: int = 2, tie: bool = False, sharpen: float = 4.0) -> LoadedModel:
    """A text-only LoadedModel (Llama layout, width 64, vocab 128), random but peaked."""
    torch.manual_seed(seed)
    language_model = AutoModelForCausalLM.from_config(decoder_config(layers, tie)).eval()
    with torch.no_grad():
        language_model.get_output_embeddings().weight.mul_(sharpen)
    loaded = LoadedModel(LhamaModel(LhamaConfig(), language_model), tiny_tokenizer())
    loaded.name = f"tiny-{seed}"
    return loaded


def prompt_ids(seed: int, length: int = 12) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(4, 120, (length,), generator=generator).tolist()
