from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from transformers import LlavaForConditionalGeneration

from lhama.errors import CheckpointError
from lhama.model.build import load_model, save_model
from lhama.model.config import ImageConfig, ProjectorConfig
from tests.conftest import tiny_loaded


def _inputs(loaded) -> tuple[torch.Tensor, torch.Tensor]:
    from lhama.data.conversation import encode_prompt

    ids = encode_prompt(loaded.tokenizer, "<image>\nQual é a capital do Brasil?", loaded.expansions())
    torch.manual_seed(1)
    return torch.tensor([ids]), torch.randn(1, 3, 32, 32)


@pytest.mark.parametrize("tie", [False, True])
def test_save_then_load_gives_identical_logits(tmp_path: Path, tie: bool) -> None:
    loaded = tiny_loaded(tie=tie)
    ids, pixels = _inputs(loaded)
    with torch.no_grad():
        before = loaded.model(ids, media={"image": pixels}).logits
    save_model(loaded, tmp_path / "m")
    again = load_model(tmp_path / "m")
    with torch.no_grad():
        after = again.model(ids, media={"image": pixels}).logits
    assert torch.equal(before, after)
    assert again.model.token_ids == loaded.model.token_ids
    assert again.expansions() == loaded.expansions()
    assert not list(tmp_path.glob(".m.*")), "temporary directory left behind"


def test_llava_round_trip_gives_identical_logits(tmp_path: Path) -> None:
    loaded = tiny_loaded()
    ids, pixels = _inputs(loaded)
    save_model(loaded, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model_type"] == "llava" and config["image_token_index"] == loaded.model.token_ids["image"]
    llava = LlavaForConditionalGeneration.from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        ours = loaded.model(ids, media={"image": pixels}).logits
        theirs = llava(input_ids=ids, pixel_values=pixels).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    # ...and a LLaVA checkpoint written by transformers loads into lhama unchanged.
    llava.save_pretrained(tmp_path / "hf")
    loaded.tokenizer.save_pretrained(tmp_path / "hf")
    back = load_model(tmp_path / "hf")
    with torch.no_grad():
        torch.testing.assert_close(back.model(ids, media={"image": pixels}).logits, ours, atol=1e-5, rtol=1e-5)


def test_linear_projector_saves_as_lhama_type(tmp_path: Path) -> None:
    loaded = tiny_loaded(ImageConfig(projector=ProjectorConfig(kind="linear")))
    save_model(loaded, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "lhama"
    again = load_model(tmp_path / "m")
    assert not hasattr(again.model.multi_modal_projector, "linear_2")


def test_lhama_directory_loads_without_transformers_model_type_warning(tmp_path: Path) -> None:
    save_model(tiny_loaded(ImageConfig(projector=ProjectorConfig(norm="layernorm"))), tmp_path / "m")
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    transformers_logger = logging.getLogger("transformers")  # does not propagate: caplog cannot see it
    transformers_logger.addHandler(handler)
    try:
        load_model(tmp_path / "m")
    finally:
        transformers_logger.removeHandler(handler)
    # AutoTokenizer used to read the lhama config.json and warn "model of type `lhama`" on each load
    assert not [m for m in messages if "model of type" in m]


def test_layernorm_projector_round_trips_and_ignores_feature_scale(tmp_path: Path) -> None:
    loaded = tiny_loaded(ImageConfig(projector=ProjectorConfig(norm="layernorm")), seed=1)
    projector = loaded.model.multi_modal_projector
    with torch.no_grad():
        projector.norm.weight.uniform_(0.5, 1.5)  # not the identity init, so a lost norm shows
    save_model(loaded, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "lhama"  # HF LLaVA has no norm
    again = load_model(tmp_path / "m")
    features = torch.rand(2, 5, projector.linear_1.in_features) * 30  # post-ReLU-like: positive, large
    with torch.no_grad():
        out = again.model.multi_modal_projector(features)
        torch.testing.assert_close(out, projector(features))
        # the point of the norm: a common scale on the features does not reach the LM
        torch.testing.assert_close(again.model.multi_modal_projector(features * 7), out, atol=1e-4, rtol=1e-4)
    assert again.config.branches["image"].projector.norm == "layernorm"


def test_text_only_round_trip(tmp_path: Path) -> None:
    loaded = tiny_loaded(image=None)
    save_model(loaded, tmp_path / "t")
    again = load_model(tmp_path / "t")
    ids = torch.tensor([[4, 5, 6, 7]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, again.model(ids).logits)
    assert not again.config.branches


def test_bad_directories_are_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_model(tmp_path / "empty")
    save_model(tiny_loaded(), tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_model(tmp_path / "m")


def test_loading_prints_no_transformers_progress_bar(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    from transformers.utils import logging as hf_logging

    save_model(tiny_loaded(image=None), tmp_path / "lm")
    capfd.readouterr()
    load_model(tmp_path / "lm")
    assert "Loading weights" not in capfd.readouterr().err  # lhama's callers print their own progress
    assert hf_logging.is_progress_bar_enabled()  # and transformers' setting is left as it was
