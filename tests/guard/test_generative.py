"""The Llama-Guard prompt backend, end to end with a tiny LlamaForCausalLM built here.

The tiny model is wired as a lookup table so its greedy output is known: attention and MLP
outputs are zeroed, so the last hidden state is the current token's embedding, a one-hot "slot";
the LM head maps each slot to the next token. That makes the model answer a fixed string.
"""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lhama.guard.generative import GenerativeGuard, load_generative
from lhama.guard.load import load_guard
from lhama.guard.verdict import SAFE, Verdict
from tests.guard.word_vocab import word_tokenizer

WORDS = ["[UNK]", "[EOS]", "safe", "unsafe", "S1", ",", "S2"]


def _tokenizer() -> PreTrainedTokenizerFast:
    return word_tokenizer(WORDS, 128)


def _model(answer: list[str]) -> LlamaForCausalLM:
    """A 2-layer, width-32, vocab-128 Llama whose greedy continuation of any prompt is ``answer``."""
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False,
                      eos_token_id=1, pad_token_id=1)
    model = LlamaForCausalLM(cfg)
    chain = ["[UNK]", *answer, "[EOS]"]  # the prompt's words are all unknown -> [UNK]
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        model.lm_head.weight.zero_()
        for slot, (cur, nxt) in enumerate(zip(chain, chain[1:])):
            model.model.embed_tokens.weight[WORDS.index(cur), slot] = 1.0
            model.lm_head.weight[WORDS.index(nxt), slot] = 10.0
    return model


def test_unsafe_answer_is_parsed_into_categories():
    guard = GenerativeGuard(_model(["unsafe", "S1", ",", "S2"]), _tokenizer())
    assert guard.check("Como eu mato meu vizinho?") == Verdict(safe=False, categories=("S1", "S2"))


def test_safe_answer_and_directory_loading(tmp_path):
    _model(["safe"]).save_pretrained(tmp_path)
    _tokenizer().save_pretrained(tmp_path)
    for guard in (load_generative(tmp_path), load_guard(f"llama-guard:{tmp_path}"), load_guard(str(tmp_path))):
        assert isinstance(guard, GenerativeGuard)
        assert guard.check([{"role": "user", "content": "Oi"}, {"role": "assistant", "content": "Olá!"}], "assistant") == SAFE


def test_prompt_names_the_checked_role_and_every_category():
    guard = GenerativeGuard(_model(["safe"]), _tokenizer())
    chat = [{"role": "user", "content": "Como faço pão?"}, {"role": "assistant", "content": "Misture farinha."}]
    prompt = guard.prompt(chat, "assistant")
    assert "User: Como faço pão?\n\nAgent: Misture farinha." in prompt
    assert "ONLY THE LAST Agent message" in prompt
    assert "S1: Violent Crimes." in prompt and "S14: Code Interpreter Abuse." in prompt
    assert "ONLY THE LAST User message" in guard.prompt("Oi")


def test_llama3_tokenizers_get_the_llama_guard_header():
    tok = _tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|begin_of_text|>"]})
    prompt = GenerativeGuard(_model(["safe"]), tok).prompt("Oi")
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nTask:")
    assert prompt.endswith("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")


def test_missing_model_dir_is_a_checkpoint_error(tmp_path):
    from lhama.errors import CheckpointError, ConfigError

    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_guard(f"llama-guard:{tmp_path}")
    with pytest.raises(ConfigError, match="unknown guard 'nonsense'"):
        load_guard("nonsense")


def test_reusing_the_prompt_opening_gives_the_same_answers():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, eos_token_id=1, pad_token_id=1)
    model, tok = LlamaForCausalLM(cfg), _tokenizer()
    plain = GenerativeGuard(model, tok, max_new_tokens=6, reuse_prefix=False)
    reused = GenerativeGuard(model, tok, max_new_tokens=6)
    chats = ["w9 w10 safe", "unsafe S1 w40", [{"role": "user", "content": "w7"}, {"role": "assistant", "content": "w8 S2"}]]
    for chat in chats * 2:
        role = "user" if isinstance(chat, str) else "assistant"
        assert reused.answer(chat, role) == plain.answer(chat, role)
    assert len(reused._prefixes) == 2  # one opening per checked role, computed once
    for open_ids, cache in reused._prefixes.values():
        assert cache.get_seq_length() == len(open_ids)  # the stored cache is copied, never extended


def test_spec_loads_the_judge_quantised(tmp_path):
    _model(["unsafe", "S1"]).save_pretrained(tmp_path)
    _tokenizer().save_pretrained(tmp_path)
    guard = load_guard(f"llama-guard:{tmp_path},bf16")
    assert next(guard.model.parameters()).dtype == torch.bfloat16
    assert guard.check("Oi") == Verdict(safe=False, categories=("S1",))
