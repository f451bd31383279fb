"""A quantised model's blocked scales are built when it is loaded (``quant_cache.ready_to_run``), not by the first
product: a new process's first prefill does not pay them (#27/#26 TTFT, session 11). Same bits as the scales as stored."""

from __future__ import annotations

import pytest
import torch

from lhama.inference import native
from lhama.inference.generate import decode_step
from lhama.inference.kv import KVState, prefill
from lhama.inference.lean import _ATTR, lean_decoder
from lhama.inference.qlinear import Int4KLinear, scale_arrays, scale_kind, scales_key
from lhama.inference.quant_cache import load_for_inference
from tests.inference.test_quant_kscales import _k_model
from tests.inference.tiny import tiny_tokenizer

pytestmark = pytest.mark.skipif(not native.reads_blocked(), reason="the kernel reads no blocked scales here")
QUANT = "int4-g32-grid-k+head"
IDS = torch.tensor([[5, 17, 33, 90, 4, 120, 7]])


@pytest.fixture
def loads(tmp_path) -> list:
    """The tiny model quantised on its first load, then loaded from its cache (a new process's load)."""
    model_dir = tmp_path / "lm"
    _k_model("none").language_model.save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    return [load_for_inference(model_dir, QUANT), load_for_inference(model_dir, QUANT)]


def test_every_packed_layer_holds_its_blocked_scales_right_after_load(loads) -> None:
    for loaded in loads:
        language_model = loaded.model.language_model
        assert getattr(language_model, _ATTR, None)  # the lean decoder (fused layers) built at load too
        packed = [m for m in language_model.modules() if scale_arrays(m)]
        assert len(packed) == 14 and all(isinstance(m, Int4KLinear) for m in packed)  # 7 per layer, head int8
        for layer in packed:
            kept = layer.__dict__["_native_scales"]
            assert kept[0] == scales_key(t for t, _ in scale_arrays(layer))  # keyed on its own arrays
            laid = native.laid_out(scale_kind(type(layer)), *scale_arrays(layer))  # blocked, or k-scale records
            assert len(kept[1]) == len(laid) == (1 if native.reads_records() else 3)
            assert all(torch.equal(copy, built) for copy, built in zip(kept[1], laid))


def test_a_one_part_lean_product_shares_its_layers_copy(loads) -> None:
    language_model = loads[1].model.language_model
    lean = lean_decoder(language_model)
    for layer, kept in zip(lean.layers, language_model.model.layers):
        assert layer.down.__dict__["_native_scales"] is kept.mlp.down_proj.__dict__["_native_scales"]
        assert layer.o_proj.__dict__["_native_scales"] is kept.self_attn.o_proj.__dict__["_native_scales"]


def _greedy(model, steps: int = 10) -> tuple[list[int], torch.Tensor]:
    """Greedy tokens after IDS (prefill, then lean decode steps) and the last step's logits."""
    kv = KVState()
    logits = prefill(model, IDS[0].tolist(), None, kv, 32).logits[0, -1]
    tokens = []
    for _ in range(steps):
        tokens.append(int(logits.argmax()))
        logits = decode_step(model.language_model, kv, tokens[-1]).logits[0, -1]
    return tokens, logits


def test_the_first_products_build_nothing_and_give_the_bits_of_the_stored_scales(loads, monkeypatch) -> None:
    cached = loads[1]
    monkeypatch.setattr(native, "laid_out", lambda *a: pytest.fail("a product built blocked scales after load"))
    with torch.inference_mode():
        tokens, logits = _greedy(cached.model)  # every layer's first products: prefill, then the lean steps
        monkeypatch.setenv("LHAMA_KERNEL_SCALES", "strided")  # the scales as stored: the old reads
        assert not native.reads_blocked()
        strided_tokens, strided_logits = _greedy(cached.model)
    assert tokens == strided_tokens and torch.equal(logits, strided_logits)
