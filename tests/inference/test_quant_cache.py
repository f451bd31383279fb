from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from lhama.errors import CheckpointError
from lhama.inference import native, quant_cache
from lhama.inference.quant import Int4Linear, Int8Linear
from lhama.inference.quant_cache import load_for_inference, quant_dir
from lhama.inference.quant import quantize_linears
from lhama.model.build import load_model, save_model
from lhama.model.generation import GenerationConfig, write_generation
from tests.conftest import tiny_loaded
from tests.inference.tiny import prompt_ids, tiny_decoder


def _save_decoder(directory: Path, tie: bool) -> Path:
    loaded = tiny_decoder(seed=2, tie=tie)
    loaded.model.language_model.save_pretrained(directory)
    loaded.tokenizer.save_pretrained(directory)
    return directory


def _logits(loaded, media=None) -> torch.Tensor:
    ids = prompt_ids(0, 20)
    if media:  # the expanded <image> rows first
        ids = [loaded.model.token_ids["image"]] * 16 + ids
    with torch.inference_mode():
        return loaded.model(torch.tensor([ids]), media=media).logits[0]


def _no_quantising(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a cached copy was quantised again")
    monkeypatch.setattr(quant_cache, "quantize_linears", refuse)
    monkeypatch.setattr(quant_cache, "quantize_from", refuse)
    monkeypatch.setattr(quant_cache, "load_model", refuse)  # nor loaded in fp32 first


@pytest.mark.parametrize(("quant", "tie"), [("int4", True), ("int8", False), ("bf16", True)])
def test_a_cached_copy_reloads_identical_without_requantising(tmp_path, monkeypatch, quant: str, tie: bool) -> None:
    model_dir = _save_decoder(tmp_path / "lm", tie)
    fresh = load_for_inference(model_dir, quant, group_size=32)
    assert (quant_dir(model_dir, quant, 32) / "quant.json").is_file()
    _no_quantising(monkeypatch)
    cached = load_for_inference(model_dir, quant, group_size=32)
    head = cached.model.language_model.get_output_embeddings()
    assert isinstance(head, {"int4": Int4Linear, "int8": Int8Linear, "bf16": torch.nn.Linear}[quant])
    assert torch.equal(_logits(cached), _logits(fresh))
    assert cached.tokenizer.decode(prompt_ids(0)) == fresh.tokenizer.decode(prompt_ids(0))


def test_a_cached_load_keeps_the_decoding_defaults_saved_beside_the_model(tmp_path, monkeypatch) -> None:
    model_dir = _save_decoder(tmp_path / "lm", tie=False)
    write_generation(GenerationConfig(system_prompt="Fale como um pirata.", max_new_tokens=7), model_dir)
    load_for_inference(model_dir, "int8")
    _no_quantising(monkeypatch)
    cached = load_for_inference(model_dir, "int8")
    assert cached.generation.system_prompt == "Fale como um pirata." and cached.generation.max_new_tokens == 7
    assert cached.labeler is None and cached.name == "lm"


def test_a_cache_of_changed_weights_or_settings_is_rebuilt(tmp_path) -> None:
    model_dir = _save_decoder(tmp_path / "lm", tie=False)
    load_for_inference(model_dir, "int4", group_size=32)
    weights = model_dir / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    calls = []
    original = quant_cache.quantize_from
    quant_cache.quantize_from = lambda *a: calls.append(a) or original(*a)
    try:
        load_for_inference(model_dir, "int4", group_size=32)  # weights changed
        load_for_inference(model_dir, "int4", group_size=64)  # another group size: another cache
    finally:
        quant_cache.quantize_from = original
    assert len(calls) == 2
    assert quant_dir(model_dir, "int4", 64).is_dir()


def test_an_int4_cache_records_its_packing_and_one_of_another_packing_is_rebuilt(tmp_path, monkeypatch) -> None:
    """PyTorch packs int4 in blocks of 64 rows on AVX512 CPUs and of 32 without AVX512: a cache records the packing it
    was written in, and one written in the other packing (another CPU's) is rebuilt, never read as this one's."""
    model_dir = _save_decoder(tmp_path / "lm", tie=False)
    load_for_inference(model_dir, "int4", group_size=32)
    path = quant_dir(model_dir, "int4", 32) / "quant.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    assert settings["int4_rows"] == native.packed_rows() in (32, 64)
    path.write_text(json.dumps(settings | {"int4_rows": 96 - native.packed_rows()}), encoding="utf-8")  # 32 <-> 64
    calls = []
    original = quant_cache.quantize_from
    monkeypatch.setattr(quant_cache, "quantize_from", lambda *a: calls.append(a) or original(*a))
    load_for_inference(model_dir, "int4", group_size=32)
    assert len(calls) == 1 and json.loads(path.read_text(encoding="utf-8"))["int4_rows"] == native.packed_rows()
    load_for_inference(model_dir, "int8")
    assert "int4_rows" not in json.loads((quant_dir(model_dir, "int8") / "quant.json").read_text(encoding="utf-8"))


def test_an_int4_cache_written_before_the_packing_was_recorded_still_loads(tmp_path, monkeypatch) -> None:
    """Caches written before session 11 lack the field; they load as before (rebuild one to record its packing)."""
    model_dir = _save_decoder(tmp_path / "lm", tie=False)
    fresh = load_for_inference(model_dir, "int4", group_size=32)
    path = quant_dir(model_dir, "int4", 32) / "quant.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    del settings["int4_rows"]
    path.write_text(json.dumps(settings), encoding="utf-8")
    _no_quantising(monkeypatch)
    assert torch.equal(_logits(load_for_inference(model_dir, "int4", group_size=32)), _logits(fresh))


def test_a_multimodal_model_keeps_its_tower_and_reloads_from_cache(tmp_path, monkeypatch) -> None:
    model_dir = save_model(tiny_loaded(), tmp_path / "vlm")  # width 32: int4 groups of 32
    media = {"image": torch.randn(1, 3, 32, 32)}
    fresh = load_for_inference(model_dir, "int4", group_size=32)
    monkeypatch.setattr(quant_cache, "quantize_linears", lambda *a: pytest.fail("quantised again"))
    cached = load_for_inference(model_dir, "int4", group_size=32)
    assert "image" in cached.config.branches
    assert torch.equal(_logits(cached, media), _logits(fresh, media))


def test_a_corrupt_cache_is_a_one_line_error(tmp_path) -> None:
    model_dir = _save_decoder(tmp_path / "lm", tie=False)
    load_for_inference(model_dir, "int8")
    (quant_dir(model_dir, "int8") / "language_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot read .*delete .*quant-int8 to rebuild it"):
        load_for_inference(model_dir, "int8")


@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_cached_packed_weights_start_on_64_byte_boundaries(tmp_path, quant: str) -> None:
    """Weights read at a safetensors file's 8-byte offsets crashed _weight_int8pack_mm
    (segfault) on prompts of 8+ tokens: each tensor gets an allocation of its own."""
    model_dir = _save_decoder(tmp_path / "lm", tie=False)
    load_for_inference(model_dir, quant, group_size=32)
    cached = load_for_inference(model_dir, quant, group_size=32)
    packed = [m for m in cached.model.language_model.modules() if isinstance(m, (Int8Linear, Int4Linear))]
    assert packed and all(buf.data_ptr() % 64 == 0 for m in packed for buf in m.buffers())


@pytest.mark.parametrize(("quant", "tie"), [("int4", True), ("int8", False)])
def test_quantising_tensor_by_tensor_equals_quantising_the_loaded_model(tmp_path, quant: str, tie: bool) -> None:
    model_dir = _save_decoder(tmp_path / "lm", tie)
    streamed = load_for_inference(model_dir, quant, group_size=32)  # read and quantised one tensor at a time
    whole = load_model(model_dir)
    quantize_linears(whole.model.language_model, quant, group_size=32)
    want = whole.model.language_model.state_dict()
    got = streamed.model.language_model.state_dict()
    assert set(got) == set(want)
    assert all(torch.equal(got[key], want[key]) for key in want)
    assert torch.equal(_logits(streamed), _logits(whole))
