"""Recipes end to end on a tiny model (CPU): what trains, what stays frozen, what is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from lhama.config import load
from lhama.model.adapters import adapter_generation_config, load_adapter
from lhama.model.build import load_model
from lhama.train.config import TrainConfig
from lhama.train.recipes import build_for_training, run
from tests.train.conftest import overrides

LORA = ["stage=finetune", "model.lora.r=4", "model.lora.alpha=8", "model.lora.target_modules=[q_proj,v_proj]"]


def _config(model_dir: Path, data: Path, out: Path, *extra: str) -> TrainConfig:
    return load(TrainConfig, None, overrides(model_dir, data, out, *extra))


@pytest.fixture(scope="module")
def stage1(tiny_model_dir: Path, caption_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stage1") / "run"
    run(_config(tiny_model_dir, caption_file, out, "data.eval_fraction=0.25", "optim.lr=1e-2"), echo=lambda _: None)
    return out


def test_stage1_trains_only_the_projector(tiny_model_dir: Path, caption_file: Path, tmp_path: Path) -> None:
    loaded = build_for_training(_config(tiny_model_dir, caption_file, tmp_path))
    trainable = {n for n, p in loaded.model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("multi_modal_projector.") for n in trainable)
    assert len(trainable) == len([n for n, _ in loaded.model.multi_modal_projector.named_parameters()])


def test_stage1_leaves_tower_and_lm_bit_identical(tiny_model_dir: Path, stage1: Path) -> None:
    before = load_model(tiny_model_dir).model.state_dict()
    after = load_model(stage1 / "model").model.state_dict()
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    projector = {k for k in before if k.startswith("multi_modal_projector.")}
    assert changed == projector  # every projector tensor moved, nothing else did


def test_stage1_outputs(stage1: Path) -> None:
    rows = [json.loads(line) for line in (stage1 / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "eval_loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4] and [r["step"] for r in evals] == [0, 4]
    assert all(r["loss"] > 0 and r["tokens_per_s"] > 0 and r["target_tokens"] > 0 for r in steps)
    assert steps[-1]["loss"] < steps[0]["loss"]  # lr 1e-2 on 6 captions: the loss must fall
    with Image.open(stage1 / "curves.png") as png:
        assert png.format == "PNG" and png.size[0] > 400
    assert (stage1 / "config.yaml").is_file() and (stage1 / "checkpoints" / "step-000004" / "state.pt").is_file()
    assert "image" in load_model(stage1 / "model").config.branches


def test_lora_stage2_trains_adapters_and_projector(tiny_model_dir: Path, caption_file: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_model_dir, caption_file, tmp_path / "s2", *LORA, "save=both", "optim.lr=1e-2", "collate.system_prompt=")
    trainable = {n for n, p in build_for_training(cfg).model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("lora_B" in n for n in trainable)
    assert all(n.startswith("multi_modal_projector.") or "lora_" in n for n in trainable)
    run(cfg, echo=lambda _: None)
    adapter = load_file(tmp_path / "s2" / "adapter" / "adapter_model.safetensors")
    assert adapter and all(k.startswith("multi_modal_projector.") or "lora_" in k for k in adapter)
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in adapter.items())  # B starts at 0: it trained
    merged = load_model(tmp_path / "s2" / "model")
    assert merged.generation.system_prompt == "" and adapter_generation_config(tmp_path / "s2" / "adapter").system_prompt == ""
    base = load_model(tiny_model_dir)
    load_adapter(base, tmp_path / "s2" / "adapter")
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        assert torch.allclose(base.model(ids).logits, merged.model(ids).logits, atol=1e-5)
        assert not torch.allclose(load_model(tiny_model_dir).model(ids).logits, merged.model(ids).logits, atol=1e-5)


def test_full_finetune_trains_lm_not_tower(tiny_model_dir: Path, caption_file: Path, tmp_path: Path) -> None:
    loaded = build_for_training(_config(tiny_model_dir, caption_file, tmp_path, "stage=finetune"))
    trainable = {n for n, p in loaded.model.named_parameters() if p.requires_grad}
    assert any(n.startswith("language_model.") for n in trainable)
    assert not any(n.startswith("vision_tower.") for n in trainable)
