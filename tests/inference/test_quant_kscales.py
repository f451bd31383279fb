"""Int4 "k-scales" (``-k`` plans: Q4_K's 6-bit scale and low codes under two fp16 super-scales per 256 inputs)
and the 6-bit layers of ``+lossy6`` plans (Q6_K's int8 scales under one fp16 super-scale)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, Qwen2Config

from lhama.inference import native, quant_cache
from lhama.inference.lean import Fused, lean_decoder
from lhama.inference.kscales import k_codes, k_scales, pack_q4k, q4k_codes, q6k_codes, unpack_q4k
from lhama.inference.qlinear import Int4KLinear, Int4Linear, Int6KLinear, Int8Linear, int4_groups, pack_high, unpack_high
from lhama.inference.quant import plan_for, quantize_from, quantize_linears
from lhama.inference.quant_cache import load_for_inference
from lhama.model.config import LhamaConfig
from lhama.model.lhama import LhamaModel
from tests.inference.test_lean import _compare
from tests.inference.tiny import tiny_tokenizer


def test_k_plan_names_parse_and_round_trip() -> None:
    plan = plan_for("int4-g32-grid-k+lossy")
    assert plan.kscales and plan.grid and plan.int8 == ("lossy",) and plan.name == "int4-g32-grid-k+lossy"
    assert plan_for("int4-g64-k").name == "int4-g64-k" and not plan_for("int4-g32-grid").kscales


def _q4k_scales(rows: int, supers: int, g: torch.Generator, least: int) -> tuple[torch.Tensor, ...]:
    """A Q4_K block's d, 6-bit sc (from ``least``) and m per group of 32, as llama.cpp stores them: the
    largest scale and min of a block are 63 steps."""
    d = (torch.rand(rows, supers, 1, 1, generator=g) * 4e-4 + 1e-4).half().float()
    sc = torch.randint(least, 64, (rows, supers, 8, 1), generator=g).float()
    sc[:, :, 0] = 63
    m = torch.randint(0, 64, (rows, supers, 8, 1), generator=g).float()
    m[:, :, 1] = 63
    return d, sc, m


def _q4k(rows: int, cols: int, seed: int) -> torch.Tensor:
    """Weights as a Q4_K GGUF de-quantises them: w = d sc q - dmin m, 6-bit sc and m (max 63) per 32."""
    g = torch.Generator().manual_seed(seed)
    supers = cols // 256
    d, sc, m = _q4k_scales(rows, supers, g, least=20)
    q = torch.randint(0, 16, (rows, supers, 8, 32), generator=g).float()
    q[..., 0], q[..., 1] = 0, 15
    return (d * sc * q - 2 * d * m).reshape(rows, cols)


def test_q4k_scales_and_lows_are_stored_exactly_and_codes_cost_fewer_bytes() -> None:
    groups = _q4k(64, 512, seed=0).reshape(64, -1, 32)
    scale = (groups.amax(-1, keepdim=True) - groups.amin(-1, keepdim=True)) / 15
    low = groups.amin(-1, keepdim=True)
    codes, supers, coded, coded_low = k_scales(scale, low, 8)
    assert torch.equal(coded, scale)  # whole multiples of the largest / 63: exact
    assert float((coded_low - low).abs().max()) <= 1e-6 * float(scale.min())  # -dmin m: exact
    noisy_scale, noisy_low = scale * (1 + 0.01 * torch.rand_like(scale)), low + 0.3 * scale  # on no 6-bit grid
    _, _, coded, coded_low = k_scales(noisy_scale, noisy_low, 8)
    assert float(((coded - noisy_scale).abs() / noisy_scale).amax()) < 0.02
    assert float((coded_low - noisy_low).abs().max()) <= float(noisy_low.abs().amax()) / 254 * 1.001
    sc, m, supers, coded, coded_low = q4k_codes(groups, scale, low, 8)
    assert int(sc.max()) <= 63 and int(m.max()) <= 63 and supers.dtype == torch.float16  # Q4_K's 6 bits, fp16
    assert float(((coded - scale).abs() / scale).max()) < 1e-6  # d sc: exact
    assert float((coded_low - low).abs().max()) <= 1e-6 * float(scale.min())  # -dmin m: exact
    low_bits, high_bits = pack_q4k(sc, m, 8)
    unpacked = unpack_q4k(low_bits.T, high_bits.T, 8)  # the layer's layout: groups first
    assert all(torch.equal(a, b.T.to(torch.uint8)) for a, b in zip((sc, m), unpacked))


def _bits(layer: nn.Module) -> float:
    """Bits per weight of ``layer``'s buffers (bias aside)."""
    return 8 * sum(b.numel() * b.element_size() for n, b in layer.named_buffers() if n != "bias") / (
        layer.in_features * layer.weight.shape[0])


def test_k_layers_cost_the_bytes_of_q4k_and_q6k() -> None:
    linear = nn.Linear(512, 128, bias=False)
    assert _bits(Int4Linear.from_linear(linear, 32)) == 5.0  # 4 + a bf16 (scale, zero) pair per 32
    assert _bits(Int4KLinear.from_linear(linear, 32)) == 4.5  # Q4_K: 4 + 6-bit sc, m per 32 + 2 fp16 per 256
    assert _bits(Int6KLinear.from_linear(linear)) == 6.5625  # Q6_K: 6 + an int8 per 16 + an fp16 per 256


def _q4k_sparse(rows: int, cols: int, seed: int) -> torch.Tensor:
    """Q4_K weights whose groups do not all reach level 0 and 15 (as the 1.5B's do): some skip levels,
    some use only every 2nd or 3rd, some have two values; the lows ``-dmin m`` not always on a used level."""
    g = torch.Generator().manual_seed(seed)
    supers = cols // 256
    d, sc, m = _q4k_scales(rows, supers, g, least=1)
    first = torch.randint(0, 4, (rows, supers, 8, 1), generator=g)
    q = first + torch.randint(0, 12, (rows, supers, 8, 32), generator=g)  # levels first..first + 11
    every = torch.randint(1, 4, (rows, supers, 8, 1), generator=g)
    q = torch.where(every > 1, (q // every) * every, q)  # every 2nd / 3rd level only
    two = torch.rand(rows, supers, 8, 1, generator=g) < 0.1
    q = torch.where(two, torch.where(torch.rand(rows, supers, 8, 32, generator=g) < 0.5, 0, 14), q)
    return (d * sc * q.float() - 2 * d * m).reshape(rows, cols)


def test_q4k_blocks_whose_groups_skip_levels_are_stored_exactly_and_nothing_clamps() -> None:
    weight = _q4k(128, 2048, seed=4)
    weight[:16, :512] = _q4k_sparse(16, 512, seed=4)  # 32 of the 1,024 blocks
    groups = weight.reshape(128, -1, 32)
    _, scale, low = int4_groups(groups, grid=True)
    def off(w: torch.Tensor, s: torch.Tensor, lo: torch.Tensor) -> float:  # the largest distance from a level, in steps
        return float(((torch.round((w - lo) / s).clamp(0, 15) * s + lo - w).abs() / s).amax())

    assert off(groups, scale, low) < 1e-3  # each group on its own 4-bit grid ...
    assert off(groups, *k_scales(scale, low, 8)[2:]) > 0.1  # ... which the plain codes miss
    assert off(groups, *k_codes(groups, scale, low, 8)[2:]) < 1e-3  # the block's own d c, -dmin m: exact
    assert off(groups, *q4k_codes(groups, scale, low, 8)[3:]) < 0.01  # in 6 bits under fp16 (one block: 0.003)
    noise = torch.randn(64, 32, 32, generator=torch.Generator().manual_seed(5))
    noise[:, ::8] *= 300  # one group per block far larger than the rest (on no grid)
    _, scale, low = int4_groups(noise, grid=True)
    assert off(noise, *k_codes(noise, scale, low, 8)[2:]) <= 0.5 + 1e-3  # no weight beyond level 0 or 15
    assert off(noise, *q4k_codes(noise, scale, low, 8)[3:]) <= 0.5 + 1e-3  # nor in 6 bits


def test_native_k_kernel_matches_the_reference_product(monkeypatch) -> None:
    if native.kernel() is None:
        pytest.skip("no AVX512-VNNI kernel on this machine")
    torch.manual_seed(0)
    linear = nn.Linear(768, 200, bias=True)
    with torch.no_grad():
        linear.weight.copy_(_q4k(200, 768, seed=1))
    layer = Int4KLinear.from_linear(linear, 32, grid=True)
    x = torch.randn(5, 768).bfloat16()
    got = layer(x).float()
    monkeypatch.setenv("LHAMA_INT4_KERNEL", "aten")  # PyTorch's kernel on pairs rebuilt from the codes
    want = layer(x).float()
    with torch.no_grad():
        reference = linear(x.float())
    assert float((got - want).norm() / want.norm()) < 0.02  # int8 activations in the native kernel
    assert float((want - reference).norm() / reference.norm()) < 0.006  # Q4_K weights exact: bf16 output only
    monkeypatch.delenv("LHAMA_INT4_KERNEL")
    assert torch.equal(layer(x[2:3]).float(), got[2:3])  # a row alone = the same row in a batch


def _k_model(quant: str) -> LhamaModel:
    torch.manual_seed(3)
    config = Qwen2Config(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=200, max_position_embeddings=256, tie_word_embeddings=False)
    language_model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        language_model.lm_head.weight.mul_(4)
    return LhamaModel(LhamaConfig(), quantize_linears(language_model, quant))


def test_the_lean_step_fuses_k_layers_with_the_same_bits() -> None:
    model = _k_model("int4-g32-k")
    assert isinstance(model.language_model.model.layers[0].mlp.down_proj, Int4KLinear)
    _compare(model)
    layer = lean_decoder(model.language_model).layers[0]
    assert isinstance(layer.gate_up, Fused) and layer.gate_up.kind is Int4KLinear


def _fresh_and_cached(tmp_path, monkeypatch, quant: str):
    """A tiny model quantised with ``quant`` on first load, then loaded again from its cache
    (which must not quantise again)."""
    model_dir = tmp_path / "lm"
    _k_model("none").language_model.save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    fresh = load_for_inference(model_dir, quant)
    monkeypatch.setattr(quant_cache, "quantize_from", lambda *a, **k: pytest.fail("quantised again"))
    return fresh, load_for_inference(model_dir, quant)


def test_a_k_plans_cache_reloads_the_same_logits(tmp_path, monkeypatch) -> None:
    fresh, cached = _fresh_and_cached(tmp_path, monkeypatch, "int4-g32-grid-k+head")
    assert isinstance(cached.model.language_model.model.layers[1].self_attn.q_proj, Int4KLinear)
    ids = torch.tensor([[5, 17, 33, 90, 4, 120, 7]])
    with torch.inference_mode():
        assert torch.equal(cached.model(ids).logits, fresh.model(ids).logits)


def _q6k(rows: int, cols: int, seed: int) -> torch.Tensor:
    """Weights as a Q6_K GGUF de-quantises them: w = d sc (q - 32), int8 sc per 16 (largest |sc| 128), q 6-bit."""
    g = torch.Generator().manual_seed(seed)
    d = (torch.rand(rows, cols // 256, 1, 1, generator=g) * 1e-4 + 1e-5).half().float()
    sc = torch.randint(-128, 128, (rows, cols // 256, 16, 1), generator=g).float()
    sc[:, :, 0] = -128
    q = torch.randint(0, 64, (rows, cols // 256, 16, 16), generator=g).float()
    return (d * sc * (q - 32)).reshape(rows, cols)


def test_q6k_codes_store_q6k_groups_exactly_and_cut_no_weight_off() -> None:
    groups = _q6k(64, 512, seed=2).reshape(64, -1, 16)
    codes, supers, step = q6k_codes(groups, 16)
    assert codes.dtype == torch.int8 and supers.dtype == torch.float16
    q = (torch.round(groups / step) + 32).clamp(0, 63)
    assert float((step * (q - 32) - groups).abs().max()) <= 1e-6 * float(groups.abs().max())  # exact
    noise = torch.randn(64, 32, 16, generator=torch.Generator().manual_seed(6))
    noise[:, ::16] *= 50  # one group per block far larger than the rest
    codes, supers, step = q6k_codes(noise, 16)
    q = (torch.round(noise / step) + 32).clamp(0, 63)
    assert float(((step * (q - 32) - noise).abs() / step.abs()).max()) <= 0.5 + 1e-4  # every weight within half a step


def test_six_bit_layers_store_q6k_weights_exactly_and_the_kernel_agrees(monkeypatch) -> None:
    high = torch.randint(0, 4, (128, 64), generator=torch.Generator().manual_seed(0))
    assert torch.equal(unpack_high(pack_high(high)), high.to(torch.uint8))
    linear = nn.Linear(512, 130, bias=True)
    with torch.no_grad():
        linear.weight.copy_(_q6k(130, 512, seed=1))
        layer = Int6KLinear.from_linear(linear)
        x = torch.randn(3, 512).bfloat16()
        reference = linear(x.float())
    monkeypatch.setenv("LHAMA_INT4_KERNEL", "aten")  # the reference path: de-quantised weights in fp32
    slow = layer(x).float()
    assert float((slow - reference).abs().max()) <= float(reference.abs().max()) / 128  # exact up to bf16 output
    assert float((Int8Linear.from_linear(linear)(x).float() - reference).norm()) > float((slow - reference).norm())
    if native.kernel() is None:
        pytest.skip("no AVX512-VNNI kernel on this machine")
    monkeypatch.delenv("LHAMA_INT4_KERNEL")
    fast = layer(x).float()
    assert float((fast - slow).norm() / slow.norm()) < 0.02  # int8 activations
    assert torch.equal(layer(x[1:2]).float(), fast[1:2])


def test_lossy6_makes_off_grid_layers_six_bit_and_the_cache_reloads_them(tmp_path, monkeypatch) -> None:
    if native.kernel() is None or not (native.cpu_supported() or native.has_laid6()):
        pytest.skip("6-bit layers need the AVX512-VNNI kernel or the AVX2 port's laid product (else lossy6 keeps them int8)")
    fresh, cached = _fresh_and_cached(tmp_path, monkeypatch, "int4-g32-grid-k+lossy6")
    for loaded in (fresh, cached):  # random weights are on no 4-bit grid: every layer 6-bit
        model = loaded.model.language_model
        assert isinstance(model.lm_head, Int6KLinear) and isinstance(model.model.layers[1].mlp.down_proj, Int6KLinear)
    ids = torch.tensor([[5, 17, 33, 90, 4, 120, 7]])
    with torch.inference_mode():
        assert torch.equal(cached.model(ids).logits, fresh.model(ids).logits)
    _compare(fresh.model)  # the lean step runs the 6-bit layers with the same bits


@pytest.mark.skipif(native.cpu_supported() or not native.has_laid6(), reason="the AVX2 port's laid 6-bit product only")
def test_an_avx2_cache_from_before_six_bit_lossy_layers_is_rebuilt(tmp_path, monkeypatch) -> None:
    """Before session 15 the AVX2 port built lossy6 layers int8; such a cache (no "lossy6" setting) is not current where
    they are now built 6-bit: the next load rebuilds it, with the 6-bit layers."""
    import json

    from lhama.inference.quant_cache import quant_dir

    fresh, _ = _fresh_and_cached(tmp_path, monkeypatch, "int4-g32-grid-k+lossy6")
    path = quant_dir(tmp_path / "lm", "int4-g32-grid-k+lossy6") / "quant.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    assert settings["lossy6"] == "6-bit"
    del settings["lossy6"]  # as written before session 15
    path.write_text(json.dumps(settings), encoding="utf-8")
    calls = []
    monkeypatch.setattr(quant_cache, "quantize_from", lambda *a: calls.append(a) or quantize_from(*a))
    rebuilt = load_for_inference(tmp_path / "lm", "int4-g32-grid-k+lossy6")
    assert len(calls) == 1 and json.loads(path.read_text(encoding="utf-8"))["lossy6"] == "6-bit"
    assert isinstance(rebuilt.model.language_model.lm_head, Int6KLinear)


def test_lossy6_is_six_bit_only_with_a_fast_native_six_bit_product(monkeypatch) -> None:
    """A lossy6 layer is 6-bit with the AVX512-VNNI kernel or the AVX2 port's product on laid weights, else int8 (the
    6-bit fallback is a slow reference; the AVX2 product on the stored order was slower than int8, session 10)."""
    from lhama.inference import quant

    monkeypatch.setattr(native, "usable", lambda *shape: True)
    for vnni, laid, six in ((False, False, False), (True, False, True), (False, True, True)):
        monkeypatch.setattr(native, "cpu_supported", lambda v=vnni: v)
        monkeypatch.setattr(native, "has_laid6", lambda v=laid: v)
        assert quant._int6_fits(nn.Linear(256, 64)) is six and not quant._int6_fits(nn.Linear(128, 64))
