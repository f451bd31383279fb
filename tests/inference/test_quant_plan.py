"""int4 plans: group sizes and layers kept int8 (as llama.cpp's Q4_K_M keeps some tensors at 6 bits)."""

from __future__ import annotations

import pytest
import torch

from lhama.errors import ConfigError
from lhama.inference import quant_cache
from lhama.inference.lean import Fused, _Parts, lean_decoder
from lhama.inference.quant import DEFAULT_INT4, Int4Linear, Int8Linear, QuantPlan, check_quant, plan_for, quantize_linears
from lhama.inference.quant_cache import load_for_inference, quant_dir
from tests.inference.test_lean import _compare, _model
from tests.inference.tiny import prompt_ids, tiny_decoder


def test_plan_names_parse_and_name_their_cache() -> None:
    assert plan_for("int4") == DEFAULT_INT4 and plan_for("int4", 64) == QuantPlan("int4", 64)
    plan = plan_for("int4-g32+head+v+down-half")
    assert plan == QuantPlan("int4", 32, ("head", "v", "down-half"))
    assert plan.name == "int4-g32+head+v+down-half" and plan_for(plan.name) == plan
    assert plan_for("int8").name == "int8" and plan_for("int4-g128").name == "int4-g128"
    assert quant_dir("m", "int4", 128).name == "quant-int4-g128"  # the caches made before plans still match
    assert check_quant("int4-g64+head") == QuantPlan("int4", 64, ("head",))  # the load path's one look at the plan
    assert repr(QuantPlan("int8")) == "QuantPlan(quant='int8', group_size=128, int8=())"  # the name is derived, not a setting
    for bad in ("int4-g48", "int4-g32+up", "int4-gx", "int5"):
        with pytest.raises(ConfigError, match="--quant|group size"):
            plan_for(bad)


def test_down_half_is_llama_cpps_more_bits_layers() -> None:
    plan = plan_for("int4-g128+down-half")
    int8 = [i for i in range(28) if plan.layer_quant(f"model.layers.{i}.mlp.down_proj", 28) == "int8"]
    assert int8 == [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]  # Qwen2.5-1.5B's 28 layers
    assert plan.layer_quant("model.layers.5.mlp.up_proj", 28) == "int4"
    assert plan_for("int4-g64+head").layer_quant("lm_head", 28) == "int8"


def test_a_plan_quantises_each_role_as_it_says_and_stays_closer_to_fp32() -> None:
    reference = tiny_decoder(seed=3, layers=8)
    ids = torch.tensor([prompt_ids(0, 24)])
    with torch.inference_mode():
        want = reference.model(ids).logits.float()
    errors = {}
    for name in ("int4-g64", "int4-g64+head+v+down"):
        loaded = tiny_decoder(seed=3, layers=8)
        model = quantize_linears(loaded.model.language_model, name)
        block = model.model.layers[4]
        assert isinstance(block.self_attn.q_proj, Int4Linear) and isinstance(block.mlp.up_proj, Int4Linear)
        kept = "+v" in name
        assert isinstance(block.self_attn.v_proj, Int8Linear if kept else Int4Linear)
        assert isinstance(block.mlp.down_proj, Int8Linear if kept else Int4Linear)
        assert isinstance(model.lm_head, Int8Linear if kept else Int4Linear)
        with torch.inference_mode():
            got = loaded.model(ids).logits.float()
        errors[name] = float((got - want).norm() / want.norm())
    assert errors["int4-g64+head+v+down"] < 0.7 * errors["int4-g64"]


def test_a_plans_cache_reloads_the_same_layers_and_logits(tmp_path, monkeypatch) -> None:
    model_dir = tmp_path / "lm"
    loaded = tiny_decoder(seed=2, layers=8)
    loaded.model.language_model.save_pretrained(model_dir)
    loaded.tokenizer.save_pretrained(model_dir)
    fresh = load_for_inference(model_dir, "int4-g32+head+down-half")
    assert (model_dir / "quant-int4-g32+head+down-half" / "quant.json").is_file()
    monkeypatch.setattr(quant_cache, "quantize_from", lambda *a, **k: pytest.fail("quantised again"))
    cached = load_for_inference(model_dir, "int4-g32+head+down-half")
    layers = cached.model.language_model.model.layers
    assert [type(layer.mlp.down_proj) for layer in layers] == [Int8Linear if i in (0, 3, 6, 7) else Int4Linear for i in range(8)]
    assert isinstance(cached.model.language_model.lm_head, Int8Linear)
    ids = torch.tensor([prompt_ids(1, 20)])
    with torch.inference_mode():
        assert torch.equal(cached.model(ids).logits, fresh.model(ids).logits)


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_the_lean_step_runs_a_mixed_plan_with_the_same_bits(kind: str) -> None:
    model = _model(kind, "int4-g64+head+v+down")
    _compare(model)
    layer = lean_decoder(model.language_model).layers[0]
    assert isinstance(layer.qkv, _Parts)  # an int8 value projection does not fuse with int4 query/key
    assert isinstance(layer.gate_up, Fused) and layer.down.kind is Int8Linear
