"""The lean decode step computes exactly what the transformers forward computes (same bits)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from lhama.inference.generate import GenerationConfig, generate_ids
from lhama.inference.kv import KVState, prefill
from lhama.inference.lean import Fused, _Parts, lean_decoder, usable
from lhama.inference.quant import quantize_linears
from lhama.model.config import LhamaConfig
from lhama.model.lhama import LhamaModel


def _model(kind: str = "qwen2", quant: str = "int4", heads: int = 4, seed: int = 0) -> LhamaModel:
    """A tiny random decoder, width 128 (head dim 128 / heads), peaked output layer, quantised."""
    torch.manual_seed(seed)
    config = (Qwen2Config if kind == "qwen2" else LlamaConfig)(
        hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=heads,
        num_key_value_heads=2, vocab_size=200, max_position_embeddings=512, tie_word_embeddings=False)
    language_model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        language_model.lm_head.weight.mul_(4)
    return LhamaModel(LhamaConfig(), quantize_linears(language_model, quant, 64))


def _prompt(seed: int = 1) -> list[int]:
    return torch.randint(0, 200, (13,), generator=torch.Generator().manual_seed(seed)).tolist()


@torch.inference_mode()
def _compare(model: LhamaModel, steps: int = 12) -> None:
    language_model = model.language_model
    ids = _prompt()
    plain, lean = KVState(), KVState()
    token = int(prefill(model, ids, None, plain, 32).logits[0, -1].argmax())
    assert int(prefill(model, ids, None, lean, 32).logits[0, -1].argmax()) == token
    decoder = lean_decoder(language_model)
    assert usable(decoder, lean.cache)
    for _ in range(steps):
        expected = language_model(input_ids=torch.tensor([[token]]), past_key_values=plain.cache, use_cache=True,
                                  logits_to_keep=1).logits[0, -1]
        got = decoder.step(token, lean.cache)[0]
        assert got.dtype == expected.dtype and torch.equal(got, expected)
        token = int(expected.argmax())
    for a, b in zip(plain.cache.layers, lean.cache.layers):
        assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
        assert int(a.cumulative_length) == int(b.cumulative_length) == len(ids) + steps


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
@pytest.mark.parametrize("quant", ["int4", "int8", "bf16"])
def test_lean_step_gives_the_same_logits_and_cache_as_the_forward(kind: str, quant: str) -> None:
    model = _model(kind, quant)
    _compare(model)
    layer = lean_decoder(model.language_model).layers[0]
    if quant in ("int4", "int8"):  # query/key/value and gate/up run as one product each
        assert isinstance(layer.qkv, Fused) and isinstance(layer.gate_up, Fused)
        assert layer.qkv.out_features == 128 + 2 * 64 and layer.gate_up.out_features == 512
    else:
        assert isinstance(layer.qkv, _Parts)


def test_int4_parts_that_do_not_fill_64_row_blocks_run_apart_and_still_match() -> None:
    model = _model("qwen2", "int4", heads=8)  # head dim 16: key/value projections have 32 rows
    _compare(model)
    layer = lean_decoder(model.language_model).layers[0]
    assert isinstance(layer.qkv, _Parts) and isinstance(layer.gate_up, Fused)


def test_fused_weights_are_shared_views_and_the_forward_still_matches_an_unfused_copy() -> None:
    fused, unfused = _model(seed=3), _model(seed=3)
    lean_decoder(fused.language_model)
    attn = fused.language_model.model.layers[0].self_attn
    qkv = lean_decoder(fused.language_model).layers[0].qkv
    assert attn.k_proj.weight.untyped_storage().data_ptr() == qkv.weight.untyped_storage().data_ptr()
    ids = torch.tensor([_prompt(5)])
    with torch.inference_mode():
        assert torch.equal(fused(ids).logits, unfused(ids).logits)  # prefill through the views


def test_generate_ids_takes_the_lean_step_with_the_same_greedy_tokens() -> None:
    model, reference = _model(seed=4), _model(seed=4)
    config = GenerationConfig(max_new_tokens=24)
    got = list(generate_ids(model, _prompt(2), config))
    assert lean_decoder(model.language_model) is not None
    with torch.inference_mode():  # the transformers forward, step by step
        kv = KVState()
        out = prefill(reference, _prompt(2), None, kv, 24)
        expected = []
        for _ in range(24):
            expected.append(int(out.logits[0, -1].float().argmax()))
            out = reference.language_model(input_ids=torch.tensor([[expected[-1]]]), past_key_values=kv.cache,
                                           use_cache=True, logits_to_keep=1)
    assert got == expected and len(set(got)) > 3


def test_models_it_does_not_cover_get_none() -> None:
    model = _model()
    model.language_model.train()
    assert lean_decoder(model.language_model) is None  # being trained: left alone
    sliding = _model()
    sliding.language_model.config.use_sliding_window = True
    assert lean_decoder(sliding.language_model) is None
    assert not usable(None, KVState().cache)


def test_the_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model()
    monkeypatch.setenv("LHAMA_LEAN_DECODE", "0")
    assert lean_decoder(model.language_model) is None
    monkeypatch.setenv("LHAMA_LEAN_DECODE", "1")
    assert lean_decoder(model.language_model) is not None


def test_a_cached_int4_copy_loads_fused_projections_side_by_side(tmp_path) -> None:
    from lhama.inference.quant_cache import load_for_inference
    from tests.conftest import tiny_tokenizer

    model = _model(quant="none", seed=6)  # fp32 tiny Qwen2, saved as a plain causal-LM directory
    model.language_model.save_pretrained(tmp_path / "lm")
    tiny_tokenizer().save_pretrained(tmp_path / "lm")
    fresh = load_for_inference(tmp_path / "lm", "int4", group_size=64)  # quantised now, then cached
    cached = load_for_inference(tmp_path / "lm", "int4", group_size=64)  # read from the cache
    attn = cached.model.language_model.model.layers[1].self_attn
    assert attn.q_proj.weight.data_ptr() + attn.q_proj.weight.nbytes == attn.k_proj.weight.data_ptr()
    loaded_at = attn.q_proj.weight.data_ptr(), cached.model.language_model.model.layers[1].mlp.gate_proj.weight.data_ptr()
    layer = lean_decoder(cached.model.language_model).layers[1]
    assert (layer.qkv.weight.data_ptr(), layer.gate_up.weight.data_ptr()) == loaded_at  # views: no copies
    config = GenerationConfig(max_new_tokens=16)
    assert list(generate_ids(cached.model, _prompt(7), config)) == list(generate_ids(fresh.model, _prompt(7), config))


def test_the_step_passes_attention_the_additive_mask_sdpa_makes_of_a_bool_one() -> None:
    """The step converts its bool mask once (not in each layer's attention call): the same values SDPA builds from
    the bool mask itself, so the same bits; a wrong conversion (e.g. a large negative instead of -inf, or the mask
    inverted) would change them."""
    from lhama.inference.lean import _additive

    torch.manual_seed(0)
    query, keys, values = (torch.randn(1, 2, 6, 64, dtype=torch.bfloat16),
                           torch.randn(1, 2, 40, 64, dtype=torch.bfloat16), torch.randn(1, 2, 40, 64, dtype=torch.bfloat16))
    allowed = (torch.arange(40) <= 17).view(1, 1, 1, -1)
    additive = _additive(allowed, torch.bfloat16)
    assert additive.dtype == torch.bfloat16 and additive[..., :18].eq(0).all() and additive[..., 18:].isneginf().all()
    by_bool = torch.nn.functional.scaled_dot_product_attention(query, keys, values, attn_mask=allowed, scale=0.125)
    by_additive = torch.nn.functional.scaled_dot_product_attention(query, keys, values, attn_mask=additive, scale=0.125)
    assert torch.equal(by_bool.view(torch.int16), by_additive.view(torch.int16))
    assert _additive(additive, torch.bfloat16) is additive  # already additive: passed on as it is
