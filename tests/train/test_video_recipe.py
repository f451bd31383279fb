"""The video stage 1 end to end on a tiny image model (CPU): a fresh video branch is grown,
only its modules train, the rest stays bit-identical, and the result loads with the branch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lhama.config import load
from lhama.recipes.default.clips import write_video
from lhama.model.build import load_model
from lhama.train.config import TrainConfig
from lhama.train.recipes import build_for_training, find_recipe, run
from tests.train.conftest import CAPTIONS, overrides

VIDEO = [
    "train_modules=[video_temporal,video_projector]", "model.video.frames=2", "model.video.num_queries=4",
    "model.video.qformer_layers=1", "data.caption_prompt='<video>\nO que acontece?'",
]


def write_video_set(root: Path, n: int = 6) -> Path:
    """``n`` 1-second 32x32 clips (two colours each) and a captions.jsonl with a video field."""
    (root / "videos").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        colours = [(30 * i % 256, 80, 200), (200, 40 * i % 256, 60)]
        frames = [np.full((32, 32, 3), colours[k // 4], np.uint8) for k in range(8)]
        write_video(root / "videos" / f"v{i}.mp4", frames, fps=8)
        lines.append(json.dumps({"id": f"v{i}", "video": f"videos/v{i}.mp4", "pt_BR": CAPTIONS[i]}))
    path = root / "captions.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def video_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video_set(tmp_path_factory.mktemp("videos"))


def _config(model_dir: Path, data: Path, out: Path, *extra: str) -> TrainConfig:
    return load(TrainConfig, None, [*overrides(model_dir, data, out, *VIDEO, *extra), f"data.image_dir={data.parent}"])


def test_video_stage1_trains_only_the_video_branch(tiny_model_dir: Path, video_set: Path, tmp_path: Path) -> None:
    loaded = build_for_training(_config(tiny_model_dir, video_set, tmp_path))
    trainable = {n.split(".")[0] for n, p in loaded.model.named_parameters() if p.requires_grad}
    assert trainable == {"video_temporal", "video_projector"}


def test_video_stage1_run(tiny_model_dir: Path, video_set: Path, tmp_path: Path) -> None:
    result = run(_config(tiny_model_dir, video_set, tmp_path / "run", "optim.lr=1e-2", "max_steps=6"), echo=lambda _: None)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 6 and losses[-1] < losses[0]
    before = load_model(tiny_model_dir).model.state_dict()
    trained = load_model(result.model_dir)
    assert trained.config.branches["video"].frames == 2
    after = trained.model.state_dict()
    new = {k for k in after if k not in before}
    assert {k.split(".")[0] for k in new} == {"video_temporal", "video_projector"}
    assert all(torch.equal(before[k], after[k]) for k in before)  # tower, image projector, LM untouched


def test_shipped_preset_is_valid() -> None:
    cfg = load(TrainConfig, find_recipe("stage1-video"), [])
    assert cfg.trainable == ("video_temporal", "video_projector")
    video = cfg.model.branches["video"]
    assert video.num_queries == 32 and video.frames == 8
    assert "<video>" in cfg.data.caption_prompt
