"""Pruning: output loads in transformers with the right shapes and finite logits; the least
influential layers go first; limits are one-line errors and leave nothing behind."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from lhama.errors import ConfigError, DataError, ModelError
from lhama.model.build import load_model
from lhama.train.prune import PruneConfig, prune
from tests.train.students import save_decoder, tiny_decoder, write_calibration


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    return write_calibration(tmp_path_factory.mktemp("calib") / "calib.txt")


@pytest.mark.parametrize("family", ["qwen2", "llama"])
def test_depth_and_width_pruned_model_loads_with_new_shapes(tmp_path, calib, family):
    source = save_decoder(tiny_decoder(family, layers=4, hidden=32, heads=4, kv=2), tmp_path / "src")
    result = prune(PruneConfig(str(source), str(tmp_path / "out"), layers=1, mlp_ratio=0.5, heads=2, calib=str(calib)),
                   echo=lambda _: None)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    c = model.config
    assert (c.num_hidden_layers, c.intermediate_size, c.num_attention_heads, c.num_key_value_heads) == (3, 32, 2, 2)
    layer = model.model.layers[0]
    assert layer.self_attn.q_proj.weight.shape == (2 * 8, 32)  # 2 heads of dim 8 (32 / 4 originally)
    assert layer.self_attn.o_proj.weight.shape == (32, 16)
    assert layer.self_attn.k_proj.weight.shape == (2 * 8, 32)  # KV heads untouched
    assert layer.mlp.down_proj.weight.shape == (32, 32)
    logits = model(torch.tensor([[1, 5, 9, 12, 40]])).logits
    assert torch.isfinite(logits).all() and logits.shape == (1, 5, 128)
    assert result.layers == (4, 3) and result.heads == (4, 2) and result.parameters[1] < result.parameters[0]
    assert load_model(tmp_path / "out").model.language_model.config.num_hidden_layers == 3
    assert (tmp_path / "out" / "tokenizer.json").is_file()


def test_width_pruning_keeps_the_important_channels(tmp_path, calib):
    model = tiny_decoder("qwen2", layers=2)
    with torch.no_grad():  # channel 5 of layer 0 carries a huge down_proj column
        model.model.layers[0].mlp.down_proj.weight[:, 5] *= 100
    source = save_decoder(model, tmp_path / "src")
    prune(PruneConfig(str(source), str(tmp_path / "out"), mlp_ratio=0.25, calib=str(calib)), echo=lambda _: None)
    pruned = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    kept_column = model.model.layers[0].mlp.down_proj.weight[:, 5]
    assert any(torch.equal(col, kept_column) for col in pruned.model.layers[0].mlp.down_proj.weight.T)


def test_layers_that_change_nothing_are_dropped_first(tmp_path, calib):
    model = tiny_decoder("llama", layers=4)
    with torch.no_grad():  # layers 1 and 2 add nothing to the residual stream: identity blocks
        for i in (1, 2):
            model.model.layers[i].self_attn.o_proj.weight.zero_()
            model.model.layers[i].mlp.down_proj.weight.zero_()
    source = save_decoder(model, tmp_path / "src")
    result = prune(PruneConfig(str(source), str(tmp_path / "out"), layers=2, calib=str(calib)), echo=lambda _: None)
    assert result.dropped_layers == (1, 2)
    assert result.block_influence[1] < 1e-6 and result.block_influence[0] > 1e-3
    assert result.calib_nll[1] == pytest.approx(result.calib_nll[0], abs=1e-4)  # identity layers: same model
    pruned = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert torch.equal(pruned.model.layers[1].mlp.down_proj.weight, model.model.layers[3].mlp.down_proj.weight)


def test_drop_layers_needs_no_calibration(tmp_path):
    source = save_decoder(tiny_decoder("qwen2", layers=3), tmp_path / "src")
    result = prune(PruneConfig(str(source), str(tmp_path / "out"), drop_layers=(0, 2)), echo=lambda _: None)
    assert result.dropped_layers == (0, 2) and result.calib_nll is None
    config = AutoModelForCausalLM.from_pretrained(tmp_path / "out").config
    assert config.num_hidden_layers == 1 and len(config.layer_types) == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layers": 4}, "has 4 decoder layers; remove at most 3"),
    ({"drop_layers": (0, 1, 2, 3)}, "removes all 4 decoder layers"),
    ({"drop_layers": (7,)}, "numbered 0..3"),
    ({"heads": 0}, "at least one query head"),
    ({"heads": 3}, "does not split evenly over the 2 key-value groups; use one of 2, 4"),
    ({"heads": 8}, "keep at most 4"),
    ({"mlp_ratio": 0.0}, "(0, 1]"),
    ({}, "nothing to prune"),
    ({"layers": 1, "drop_layers": (1,)}, "not both"),
])
def test_limits_are_one_line_errors_and_nothing_is_written(tmp_path, calib, kwargs, message):
    source = save_decoder(tiny_decoder("qwen2", layers=4), tmp_path / "src")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")) as error:
        prune(PruneConfig(str(source), str(tmp_path / "out"), calib=str(calib), **kwargs), echo=lambda _: None)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_importance_pruning_needs_calibration_text(tmp_path):
    source = save_decoder(tiny_decoder("qwen2", layers=2), tmp_path / "src")
    with pytest.raises(ConfigError, match="--calib FILE"):
        prune(PruneConfig(str(source), str(tmp_path / "out"), layers=1), echo=lambda _: None)
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataError, match="no calibration text"):
        prune(PruneConfig(str(source), str(tmp_path / "out"), layers=1, calib=str(tmp_path / "empty.txt")))


def test_a_model_without_llama_style_layers_is_refused(tmp_path, calib):
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests.conftest import tiny_tokenizer

    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=128))
    save_decoder(gpt2, tmp_path / "src", tiny_tokenizer())
    with pytest.raises(ModelError, match="Llama-style"):
        prune(PruneConfig(str(tmp_path / "src"), str(tmp_path / "out"), layers=1, calib=str(calib)))


def test_a_prepared_name_is_resolved_and_the_result_reports_the_change(tmp_path, calib, monkeypatch):
    """``lhama prune``'s one call: the name resolves to its prepared copy, and the summary line
    carries the shapes and the calibration perplexity before -> after (exp of the mean loss)."""
    from lhama.weights.manifest import write_manifest

    monkeypatch.setenv("LHAMA_HOME", str(tmp_path / "home"))
    source = save_decoder(tiny_decoder("qwen2", layers=4), tmp_path / "home" / "models" / "smollm2-135m-instruct")
    write_manifest(source, {"test": True}, {})
    result = prune(PruneConfig("smollm2-135m-instruct", str(tmp_path / "out"), layers=1, calib=str(calib)),
                   echo=lambda _: None)
    before, after = (math.exp(nll) for nll in result.calib_nll)
    assert result.perplexity == pytest.approx((before, after))
    assert result.summary() == (
        f"dropped layers {list(result.dropped_layers)}; layers 4 -> 3, MLP 64 -> 64, heads 4 -> 4, parameters "
        f"{result.parameters[0]:,} -> {result.parameters[1]:,}; calibration perplexity {before:.2f} -> {after:.2f}")
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "out").config.num_hidden_layers == 3
    dropped = prune(PruneConfig(str(source), str(tmp_path / "out2"), drop_layers=(0,)), echo=lambda _: None)
    assert dropped.perplexity is None and dropped.summary().endswith(f"parameters {dropped.parameters[0]:,} -> "
                                                                     f"{dropped.parameters[1]:,}")
