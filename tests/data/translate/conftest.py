"""Fixtures for the translation tests: small real-shaped LLaVA records and a tiny Marian model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def turn(who: str, value: str) -> dict[str, str]:
    return {"from": who, "value": value}


SAMPLE: list[dict[str, Any]] = [
    {"id": "a1", "image": "a1.jpg", "conversations": [
        turn("human", "<image>\nWhat is the man holding?"),
        turn("gpt", "The man is holding a red umbrella. He is standing near 3 cars."),
    ]},
    {"id": "b2", "image": "b2.jpg", "extra": {"k": [1, 2]}, "conversations": [
        turn("human", "Where is the dog?\n<image>"),
        turn("gpt", "The dog [0.12, 0.34, 0.56, 0.78] is sleeping on the sofa.\n\n1. It looks tired.\n2. It has a blue collar."),
    ]},
    {"id": "c3", "image": "c3.jpg", "conversations": [
        turn("human", "<image>\nWhat does the sign say?"),
        turn("gpt", "The sign shows `print(42)` and the address https://example.com/menu, which costs $12.50."),
    ]},
]


def write_json(path: Path, records: list[Any]) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_marian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer, width-32 MarianMT model with a word-level fast tokenizer (no downloads)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("marian")
    words = "the a man dog car is on in of and with holding red umbrella o um homem cão carro".split()
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in words + list(".,?!:;0123456789X"):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>").save_pretrained(out)
    cfg = MarianConfig(
        vocab_size=128, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, forced_eos_token_id=1,
    )
    torch.manual_seed(0)
    model = MarianMTModel(cfg)
    with torch.no_grad():
        model.final_logits_bias[0, 1] = 0.2  # random weights never stop; make </s> a bit likelier
    model.save_pretrained(out)
    return out
