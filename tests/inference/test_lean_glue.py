"""The lean step's C glue (lhama.inference.glue) gives the PyTorch ops' bits, and the lean step uses it."""

from __future__ import annotations

import dataclasses
import sysconfig
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lhama.inference import glue
from lhama.inference.lean import _rms, _rotated, lean_decoder
from tests.inference.test_lean import _compare, _model

pytestmark = pytest.mark.skipif(glue.library() is None, reason="no C compiler for the glue library here")


def _glue() -> glue.Glue:
    built = glue.for_widths(128, 256, 32, _rms, _rotated)
    assert built is not None  # the check at load passed on this CPU
    return built


def _norm(width: int, seed: int) -> nn.Module:
    norm = nn.Module()
    norm.weight = torch.randn(width, generator=torch.Generator().manual_seed(seed)).bfloat16()
    norm.variance_epsilon = 1e-6
    return norm


@pytest.mark.parametrize("width", [7, 100, 896, 1536, 4000])
def test_mean_of_squares_adds_in_atens_order(width: int) -> None:
    g, generator = _glue(), torch.Generator().manual_seed(width)
    rows = (torch.randn(40, width, generator=generator) * torch.rand(40, 1, generator=generator) * 10).bfloat16()
    got = torch.tensor([g.lib.lhama_glue_mean_squares(row.data_ptr(), width, g.lanes) for row in rows])
    assert torch.equal(got, rows.float().pow(2).mean(-1))
    if width >= 16:  # the order matters: another vector width gives other sums on some of these rows
        other = torch.tensor([g.lib.lhama_glue_mean_squares(row.data_ptr(), width, 24 - g.lanes) for row in rows])
        assert not torch.equal(other, got)
        assert not glue.same_bits(glue.Glue(g.lib, 24 - g.lanes, g.silu), (width, 256, 32), _rms, _rotated)


def test_add_and_rms_norm_are_the_pytorch_ops() -> None:
    g, generator = _glue(), torch.Generator().manual_seed(1)
    hidden = (torch.randn(3, 3072, generator=generator) * 3).bfloat16()[:, :1536]  # rows 3072 apart
    add = (torch.randn(3, 1536, generator=generator) * 3).bfloat16()
    expected_hidden = hidden + add
    expected = _rms(_norm(1536, 2), expected_hidden)
    out = torch.empty(3, 1536, dtype=torch.bfloat16)
    g.add_rms(hidden, add, _norm(1536, 2), out)
    assert torch.equal(hidden, expected_hidden) and torch.equal(out, expected)
    g.add_rms(hidden, None, _norm(1536, 3), out)  # no add: the norm alone
    assert torch.equal(hidden, expected_hidden) and torch.equal(out, _rms(_norm(1536, 3), hidden))


def test_silu_times_up_is_the_pytorch_ops_for_every_gate_value() -> None:
    every = torch.arange(65536, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    up = torch.randn(65536, generator=torch.Generator().manual_seed(4)).bfloat16()
    gate_up = torch.cat([every, up])[None]
    expected = F.silu(every) * up
    got = _glue().silu_mul(gate_up)[0]
    finite = expected.isfinite()  # NaN bit patterns differ in payload only
    assert torch.equal(got[finite], expected[finite]) and bool(got[~finite].isnan().all() == expected[~finite].isnan().all())


@pytest.mark.parametrize("batch", [True, False])
def test_bias_rotary_and_cache_writes_are_the_pytorch_ops(batch: bool) -> None:
    g, generator, rows, heads, kv_heads, dim = _glue(), torch.Generator().manual_seed(5), 3, 4, 2, 64
    qkv = (torch.randn(rows, (heads + 2 * kv_heads) * dim + 64, generator=generator) * 4).bfloat16()[:, :-64]
    bias = torch.randn(qkv.shape[1], generator=generator).bfloat16()
    angles = torch.rand(rows, 1, dim, generator=generator) * 9
    cos, sin = angles.cos().bfloat16(), angles.sin().bfloat16()
    shape = (rows if batch else 1, kv_heads, 9, dim)
    keys, values, query = torch.zeros(shape).bfloat16(), torch.zeros(shape).bfloat16(), torch.empty(rows, heads, dim).bfloat16()
    g.rope_write(qkv, bias, (cos, sin), query, (keys, values), 4)
    full = qkv + bias
    qk = full[:, : (heads + kv_heads) * dim].view(rows, heads + kv_heads, dim)
    qk = _rotated(qk, cos, sin)
    value = full[:, (heads + kv_heads) * dim :].view(rows, kv_heads, dim)
    assert torch.equal(query, qk[:, :heads])
    if batch:  # row b at column 4 of its own cache row
        assert torch.equal(keys[:, :, 4], qk[:, heads:]) and torch.equal(values[:, :, 4], value)
    else:  # one sequence: row i at column 4 + i
        assert torch.equal(keys[0, :, 4:7], qk[:, heads:].transpose(0, 1))
        assert torch.equal(values[0, :, 4:7], value.transpose(0, 1))
    assert int((keys != 0).sum()) == int((qk[:, heads:] != 0).sum())  # nothing else written


@pytest.mark.parametrize("ext", [True, False])
@pytest.mark.parametrize(("rows", "batch"), [(1, True), (1, False), (3, True), (3, False)])
def test_a_step_of_glue_calls_is_the_explicit_calls(rows: int, batch: bool, ext: bool) -> None:
    """GlueStep (the arguments one step shares, set once in a C struct; called through the extension module or
    ctypes) writes what Glue's explicit calls write."""
    if ext and glue.extension() is None:
        pytest.skip("no Python headers here: the glue's extension module is not built")
    g, generator, heads, kv_heads, dim = _glue(), torch.Generator().manual_seed(6), 4, 2, 32
    g = g if ext else dataclasses.replace(g, ext=None)
    x = (torch.randn(rows, 128, generator=generator) * 3).bfloat16()
    add = (torch.randn(rows, 256, generator=generator) * 3).bfloat16()[:, 64:192]  # rows 256 apart
    qkv = (torch.randn(rows, (heads + 2 * kv_heads) * dim + 32, generator=generator) * 4).bfloat16()[:, :-32]
    bias = torch.randn(qkv.shape[1], generator=generator).bfloat16()
    gate_up = (torch.randn(rows, 2 * 256 + 64, generator=generator) * 4).bfloat16()[:, :-64]
    angles = torch.rand(rows, 1, dim, generator=generator) * 9
    rotary = angles.cos().bfloat16(), angles.sin().bfloat16()
    caches = [torch.zeros(rows if batch else 1, kv_heads, 8, dim, dtype=torch.bfloat16) for _ in range(4)]
    hidden, normed, query = x.clone(), torch.empty_like(x), torch.empty(rows, heads, dim, dtype=torch.bfloat16)
    g.add_rms(hidden, add, _norm(128, 7), normed)
    g.rope_write(qkv, bias, rotary, query, (caches[0], caches[1]), 5)
    step = g.step(x, rotary, heads, (caches[2], caches[3]), 5, 256)
    step.rope_write(qkv, bias, caches[2], caches[3])
    assert torch.equal(step.query, query) and torch.equal(caches[2], caches[0]) and torch.equal(caches[3], caches[1])
    assert torch.equal(step.add_rms(add, _norm(128, 7)), normed) and torch.equal(x, hidden)
    assert torch.equal(step.add_rms(None, _norm(128, 8)), _rms(_norm(128, 8), hidden))
    assert torch.equal(step.silu_mul(gate_up), g.silu_mul(gate_up))
    assert int((caches[2] != 0).sum()) > 0


def test_a_write_past_the_cache_is_an_index_error_not_a_write_out_of_bounds() -> None:
    """As PyTorch's own write (the lean step without the glue) would: the C code itself does not check."""
    g, keys, values = _glue(), torch.zeros(1, 2, 6, 32).bfloat16(), torch.zeros(1, 2, 6, 32).bfloat16()
    rotary = torch.ones(2, 1, 32).bfloat16(), torch.zeros(2, 1, 32).bfloat16()
    hidden = torch.zeros(2, 128).bfloat16()
    g.step(hidden, rotary, 4, (keys, values), 4, 256)  # one sequence: columns 4 and 5 fit
    with pytest.raises(IndexError, match="column 6 is out of bounds for a cache of 6 columns"):
        g.step(hidden, rotary, 4, (keys, values), 5, 256)
    with pytest.raises(IndexError, match="out of bounds"):
        query = torch.empty(1, 4, 32).bfloat16()
        g.rope_write(torch.zeros(1, 8 * 32).bfloat16(), None, rotary, query, (keys, values), 6)
    assert not keys.any()


def test_the_extension_module_is_built_where_pythons_headers_are_and_checks_its_arguments() -> None:
    headers = (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file()
    assert (glue.extension() is not None) == headers and (_glue().ext is glue.extension())
    if headers:
        with pytest.raises(TypeError, match="add_rms takes 5 arguments"):
            glue.extension().add_rms(0, None, 0)


@pytest.mark.parametrize("quant", ["int4", "int8"])
def test_the_lean_step_runs_the_glue_and_still_matches_the_forward(quant: str) -> None:
    model = _model("qwen2", quant)
    assert lean_decoder(model.language_model).glue is not None
    _compare(model)


def test_the_switch_leaves_the_extension_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LHAMA_GLUE_EXT", "0")
    glue.extension.cache_clear()
    glue.for_widths.cache_clear()
    try:
        assert glue.extension() is None and _glue().ext is None  # GlueStep then calls through ctypes
    finally:
        monkeypatch.undo()
        glue.extension.cache_clear()
        glue.for_widths.cache_clear()


def test_the_switch_turns_the_glue_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LHAMA_GLUE", "0")
    glue.library.cache_clear()
    glue.for_widths.cache_clear()
    try:
        assert glue.library() is None and lean_decoder(_model("qwen2", "int4").language_model).glue is None
    finally:
        monkeypatch.undo()
        glue.library.cache_clear()
        glue.for_widths.cache_clear()
