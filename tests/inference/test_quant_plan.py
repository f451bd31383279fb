"""int4 plans: group sizes and layers kept int8 (as llama.cpp's Q4_K_M keeps some tensors at 6 bits)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from lhama.errors import ConfigError
from lhama.inference import quant_cache
from lhama.inference.lean import Fused, _Parts, lean_decoder
from lhama.inference.qlinear import Int4Linear, Int8Linear, int4_groups, on_grid
from lhama.inference.quant import DEFAULT_INT4, QuantPlan, check_quant, plan_for, quantize_linears
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
    assert repr(QuantPlan("int8")) == "QuantPlan(quant='int8', group_size=128, int8=(), grid=False, kscales=False)"  # the name is derived
    grid = plan_for("int4-g32-grid+lossy")
    assert grid == QuantPlan("int4", 32, ("lossy",), True) and grid.name == "int4-g32-grid+lossy" and plan_for(grid.name) == grid
    assert quant_dir("m", "int4-g32-grid").name == "quant-int4-g32-grid" and plan_for("int4-g32-grid") != plan_for("int4-g32")
    for bad in ("int4-g48", "int4-g32+up", "int4-gx", "int5", "int4-g32-grd", "int4-grid"):
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


def _on_grid(shape: tuple[int, int], seed: int, group_size: int = 32) -> torch.Tensor:
    """Weights as a Q4_K GGUF de-quantises them: each group ``q * scale - offset``, q spanning
    fewer than 16 levels in some groups (then plain 15-step rounding cannot hit them)."""
    generator = torch.Generator().manual_seed(seed)
    rows, cols = shape
    groups = cols // group_size
    q = torch.randint(0, 16, (rows, groups, group_size), generator=generator).float()
    span = torch.randint(6, 16, (rows, groups, 1), generator=generator).float()  # levels used: 7..16
    q = torch.minimum(q, span)
    q[..., 0], q[..., 1] = 0, span[..., 0]  # each group reaches its own ends
    scale = torch.rand(rows, groups, 1, generator=generator) * 0.02 + 0.005
    return (q * scale - 0.3 * span * scale).reshape(rows, cols)


def test_grid_rounding_stores_grid_weights_exactly_and_is_never_worse_per_group() -> None:
    weight = _on_grid((64, 128), seed=0).reshape(64, -1, 32)
    for grid, exact in ((True, True), (False, False)):
        q, scale, low = int4_groups(weight, grid)
        error = (q * scale + low - weight).abs().amax()
        assert bool(error < 1e-6) is exact, (grid, float(error))
    noise = torch.randn(64, 4, 32, generator=torch.Generator().manual_seed(1))
    errors = [(q * s + lo - noise).square().sum(-1) for q, s, lo in (int4_groups(noise, g) for g in (False, True))]
    assert bool((errors[1] <= errors[0]).all()) and float(errors[1].sum()) < float(errors[0].sum())
    assert on_grid(_on_grid((48, 64), seed=2), 32) and not on_grid(torch.randn(48, 64), 32)


def _grid_decoder(model_dir) -> None:
    """A tiny decoder saved with every linear on a 4-bit grid except layer 1's down projection
    and the output layer (as a Q4_K_M GGUF keeps some layers at 6 bits)."""
    loaded = tiny_decoder(seed=4, layers=4)
    language_model = loaded.model.language_model
    with torch.no_grad():
        for index, (name, module) in enumerate(language_model.named_modules()):
            if isinstance(module, torch.nn.Linear) and name not in ("lm_head", "model.layers.1.mlp.down_proj"):
                module.weight.copy_(_on_grid(tuple(module.weight.shape), seed=index))
    language_model.save_pretrained(model_dir)
    loaded.tokenizer.save_pretrained(model_dir)


def test_lossy_keeps_off_grid_layers_int8_and_the_cache_reloads_them(tmp_path, monkeypatch) -> None:
    model_dir = tmp_path / "lm"
    _grid_decoder(model_dir)
    fresh = load_for_inference(model_dir, "int4-g32-grid+lossy")
    monkeypatch.setattr(quant_cache, "quantize_from", lambda *a, **k: pytest.fail("quantised again"))
    cached = load_for_inference(model_dir, "int4-g32-grid+lossy")
    for loaded in (fresh, cached):
        model = loaded.model.language_model
        assert isinstance(model.lm_head, Int8Linear)
        assert [type(layer.mlp.down_proj) for layer in model.model.layers] == [Int4Linear, Int8Linear, Int4Linear, Int4Linear]
        assert all(isinstance(layer.self_attn.v_proj, Int4Linear) for layer in model.model.layers)
    ids = torch.tensor([prompt_ids(3, 20)])
    with torch.inference_mode():
        assert torch.equal(cached.model(ids).logits, fresh.model(ids).logits)
    grid = fresh.model.language_model.model.layers[0].mlp.up_proj  # stored exactly, up to bf16 scales
    source = AutoModelForCausalLM.from_pretrained(model_dir).model.layers[0].mlp.up_proj.weight.detach()
    x = torch.eye(grid.in_features, dtype=torch.bfloat16)
    with torch.inference_mode():
        dequantised = grid(x).float().T  # (out, in)
    assert float((dequantised - source).abs().max()) < 0.01 * float(source.abs().max())
