"""Decoding settings live beside the model (lhama_generation.json), not in its config; model
directories written before that file existed still load, their settings converted."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lhama.errors import CheckpointError
from lhama.model.build import load_model, save_model
from lhama.model.generation import DEFAULT_SYSTEM_PROMPT, GENERATION_FILE, GenerationConfig, read_generation
from tests.conftest import tiny_loaded


def test_settings_round_trip_beside_the_model(tmp_path: Path) -> None:
    loaded = tiny_loaded()
    loaded.generation = replace(loaded.generation, system_prompt="", image_guidance=1.5)
    out = save_model(loaded, tmp_path / "m")
    saved = json.loads((out / GENERATION_FILE).read_text(encoding="utf-8"))
    assert saved["system_prompt"] == "" and saved["image_guidance"] == 1.5
    assert "system_prompt" not in json.loads((out / "config.json").read_text())["lhama"]
    again = load_model(out)
    assert again.generation.system_prompt == "" and again.generation.image_guidance == 1.5


def test_a_directory_saved_by_the_previous_version_loads_with_its_settings(tmp_path: Path) -> None:
    """Before lhama_generation.json, config.json's "lhama" block held the two settings."""
    out = save_model(tiny_loaded(), tmp_path / "old")
    (out / GENERATION_FILE).unlink()
    config = json.loads((out / "config.json").read_text())
    config["lhama"].update(system_prompt="", image_guidance=1.0)
    (out / "config.json").write_text(json.dumps(config))
    loaded = load_model(out)
    assert loaded.generation.system_prompt == "" and loaded.generation.image_guidance == 1.0
    assert "image" in loaded.config.branches  # the branch config itself is unchanged


def test_a_model_without_saved_settings_gets_the_portuguese_default(tmp_path: Path) -> None:
    assert read_generation(tmp_path) == GenerationConfig()
    assert GenerationConfig().system_prompt == DEFAULT_SYSTEM_PROMPT and "português do Brasil" in DEFAULT_SYSTEM_PROMPT


def test_a_bad_settings_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / GENERATION_FILE).write_text('{"image_guidance": -2}', encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"lhama_generation.json has invalid decoding settings: .*image_guidance"):
        read_generation(tmp_path)
    (tmp_path / GENERATION_FILE).write_text("{oops", encoding="utf-8")
    with pytest.raises(CheckpointError, match="is not readable JSON"):
        read_generation(tmp_path)


def test_a_model_saved_by_main_before_the_refactor_loads_to_the_same_logits() -> None:
    """tests/model/fixtures/saved_by_b558420: a tiny image+video model (system prompt "",
    image guidance 1.0 in its config) and its logits, written by lhama at commit b558420."""
    import torch

    fixtures = Path(__file__).parent / "fixtures"
    expected = torch.load(fixtures / "saved_by_b558420_expected.pt")
    loaded = load_model(fixtures / "saved_by_b558420")
    assert loaded.generation.system_prompt == "" and loaded.generation.image_guidance == 1.0
    assert list(loaded.config.branches) == ["image", "video"]
    with torch.no_grad():
        logits = loaded.model(expected["input_ids"], media=expected["media"]).logits
    assert torch.allclose(logits, expected["logits"], atol=1e-5)
