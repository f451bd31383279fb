"""--resume continues exactly: weights, optimizer, schedule, RNG (LoRA dropout) and data position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lhama.config import load
from lhama.errors import CheckpointError
from lhama.train.config import TrainConfig
from lhama.train.recipes import run
from tests.train.conftest import overrides

SETTINGS = ["stage=finetune", "model.lora.r=4", "model.lora.alpha=8", "model.lora.dropout=0.2",
            "max_steps=6", "optim.lr=5e-3", "optim.warmup_ratio=0.2"]


def _losses(out: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_stop_and_resume_gives_the_same_losses(tiny_model_dir: Path, caption_file: Path, tmp_path: Path) -> None:
    quiet = lambda _: None  # noqa: E731
    run(load(TrainConfig, None, overrides(tiny_model_dir, caption_file, tmp_path / "a", *SETTINGS)), echo=quiet)
    interrupted = load(TrainConfig, None, overrides(tiny_model_dir, caption_file, tmp_path / "b", *SETTINGS, "stop_after=3"))
    first = run(interrupted, echo=quiet)
    assert first.steps == 3 and first.model_dir is None and sorted(_losses(tmp_path / "b")) == [1, 2, 3]
    resumed = load(TrainConfig, None, overrides(tiny_model_dir, caption_file, tmp_path / "b", *SETTINGS))
    second = run(resumed, resume=True, echo=quiet)
    full, split = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert second.steps == 6 and sorted(split) == [1, 2, 3, 4, 5, 6]
    for step in range(1, 7):
        assert split[step] == pytest.approx(full[step], abs=1e-6), step
    assert len({round(v, 6) for v in full.values()}) == 6  # the losses do differ step to step


def test_resume_without_checkpoint_is_an_error(tiny_model_dir: Path, caption_file: Path, tmp_path: Path) -> None:
    cfg = load(TrainConfig, None, overrides(tiny_model_dir, caption_file, tmp_path / "none"))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        run(cfg, resume=True, echo=lambda _: None)
