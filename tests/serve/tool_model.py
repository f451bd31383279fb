"""A tiny Qwen2 model whose answers are scripted, with Qwen2.5's real chat template (tools
section included), for testing tool calling end to end without a real model.

Each decoder layer's output projections are zeroed, so the hidden state at a position is the
embedding of the token there; the output layer then maps chosen "trigger" tokens to one whole
scripted answer (a single added token) and that answer to EOS. So the model answers a prompt by
the prompt's last token alone: greedy decoding is an exact script.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, Qwen2Config

from lhama.model.build import LoadedModel, compose
from lhama.model.config import LhamaConfig
from tests.conftest import tiny_tokenizer

QWEN25_TEMPLATE = (Path(__file__).parent / "qwen25_chat_template.jinja").read_text()
GENERATION_PROMPT = "<|im_start|>assistant\n"  # how Qwen2.5's template ends a prompt


def scripted_model(script: dict[str, str], template: str | None = QWEN25_TEMPLATE) -> LoadedModel:
    """A model that answers ``script[t]`` when the prompt ends with the text ``t`` (an added token).

    Triggers and answers become added tokens; any other prompt end gives an arbitrary answer.
    """
    tokenizer = tiny_tokenizer(vocab_size=90)
    tokenizer.add_tokens(["<|im_start|>", "<|im_end|>", *script, *script.values()])
    tokenizer.chat_template = template
    config = Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=128, max_position_embeddings=2048,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    torch.manual_seed(0)
    loaded = compose(LhamaConfig(), AutoModelForCausalLM.from_config(config), tokenizer)
    _script(loaded, script)
    loaded.model.eval()
    return loaded


def _script(loaded: LoadedModel, script: dict[str, str]) -> None:
    lm, tokenizer = loaded.model.language_model, loaded.tokenizer
    with torch.no_grad():
        for layer in lm.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = lm.get_input_embeddings().weight
        head = lm.get_output_embeddings().weight
        head.zero_()
        eos = tokenizer.convert_tokens_to_ids("</s>")
        for trigger, answer in script.items():
            trigger_id, answer_id = _id(tokenizer, trigger), _id(tokenizer, answer)
            head[answer_id] = 20 * embed[trigger_id] / embed[trigger_id].norm()
            head[eos] += 20 * embed[answer_id] / embed[answer_id].norm()


def _id(tokenizer, text: str) -> int:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1, f"{text!r} is not one token: {ids}"
    return ids[0]
