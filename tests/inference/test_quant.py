from __future__ import annotations

import pytest
import torch
from torch import nn

from lhama.errors import ConfigError
from lhama.inference import qlinear
from lhama.inference import quant as quant_module
from lhama.inference.generate import GenerationConfig, generate_ids
from lhama.inference.quant import Int4Linear, Int8Linear, available_quants, check_quant, quantize_linears
from tests.inference.tiny import prompt_ids, tiny_decoder


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.detach().float() - want.detach().float()).norm() / want.detach().float().norm())


@pytest.mark.parametrize("group_size", [32, 64, 128])
def test_int4_linear_matches_its_own_dequantised_weights(group_size: int) -> None:
    torch.manual_seed(0)
    linear = nn.Linear(256, 40, bias=True)  # 40 outputs: padded to 48 inside, sliced back
    layer = Int4Linear.from_linear(linear, group_size)
    groups = linear.weight.detach().reshape(40, -1, group_size)
    low, high = groups.amin(-1, keepdim=True), groups.amax(-1, keepdim=True)
    scale = (high - low) / 15
    dequantised = (torch.round((groups - low) / scale) * scale + low).reshape(40, 256)
    x = torch.randn(3, 5, 256)
    got = layer(x)
    assert got.shape == (3, 5, 40) and got.dtype == torch.bfloat16
    assert _relative_error(got, x @ dequantised.T + linear.bias) < 0.01  # only bf16 rounding
    assert 0.01 < _relative_error(got, linear(x)) < 0.12  # 4-bit steps are visible, but small


def test_int8_linear_is_close_to_fp32() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(64, 30, bias=False)
    layer = Int8Linear.from_linear(linear)
    x = torch.randn(4, 64)
    assert layer.weight.dtype == torch.int8
    assert _relative_error(layer(x), linear(x)) < 0.01


def _logits(loaded, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return loaded.model(torch.tensor([ids])).logits[0].float()  # (T, V)


@pytest.mark.parametrize(("quant", "max_error", "min_agreement"),
                         [("bf16", 0.02, 1.0), ("int8", 0.03, 0.97), ("int4", 0.2, 0.9)])
def test_quantised_model_stays_close_to_fp32(quant: str, max_error: float, min_agreement: float) -> None:
    reference, quantised = tiny_decoder(tie=True), tiny_decoder(tie=True)
    quantize_linears(quantised.model.language_model, quant, group_size=32)
    head = quantised.model.language_model.get_output_embeddings()
    assert quant == "bf16" or isinstance(head, Int8Linear | Int4Linear)  # tied head quantised too
    ids = [token for seed in range(4) for token in prompt_ids(seed, 32)]
    want, got = _logits(reference, ids), _logits(quantised, ids)
    assert _relative_error(got, want) < max_error
    agreement = float((got.argmax(-1) == want.argmax(-1)).float().mean())  # teacher-forced top-1
    assert agreement >= min_agreement


def test_int8_greedy_decoding_mostly_matches_fp32() -> None:
    # A random model has near-ties that one rounding flips (and the answer diverges from
    # there), so most, not all, continuations are identical; a broken kernel matches none.
    reference, quantised = tiny_decoder(seed=1), tiny_decoder(seed=1)
    quantize_linears(quantised.model.language_model, "int8")
    config = GenerationConfig(max_new_tokens=24)
    same = 0
    for seed in range(6):
        want = list(generate_ids(reference.model, prompt_ids(seed), config))
        same += list(generate_ids(quantised.model, prompt_ids(seed), config)) == want
    assert same >= 4


def test_layers_the_kernel_cannot_take_stay_float() -> None:
    model = nn.Sequential(nn.Linear(48, 32), nn.Linear(64, 32))  # 48 inputs: not a multiple of 64
    quantize_linears(model, "int4", group_size=64)
    assert type(model[0]) is nn.Linear and model[0].weight.dtype == torch.bfloat16
    assert isinstance(model[1], Int4Linear)


def test_an_unknown_or_unavailable_quant_is_a_one_line_error(monkeypatch) -> None:
    with pytest.raises(ConfigError, match="unknown --quant 'int3'; choose one of: none, bf16"):
        check_quant("int3")
    monkeypatch.setitem(quant_module._KERNELS, "int4", ("_no_such_int4_kernel",))
    assert "int4" not in available_quants()
    with pytest.raises(ConfigError, match=r"--quant int4 needs .*_no_such_int4_kernel.*available here: none, bf16, int8$"):
        check_quant("int4")
    with pytest.raises(ConfigError, match="group size"):
        check_quant("int8", group_size=100)


@pytest.mark.parametrize("layer_type", [Int8Linear, Int4Linear])
def test_quantising_in_row_blocks_gives_the_same_layer(monkeypatch, layer_type) -> None:
    torch.manual_seed(1)
    linear = nn.Linear(128, 200, bias=True)  # 200 rows: three 64-row blocks and a 16-row tail (int4 pads to 208)
    build = (lambda: Int8Linear.from_linear(linear)) if layer_type is Int8Linear else (lambda: Int4Linear.from_linear(linear, 32))
    whole = build()
    monkeypatch.setattr(qlinear, "_CHUNK", 64)  # the layer classes live in lhama.inference.qlinear
    blocks = build()
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, blocks.state_dict()[name]), name
