"""The image-caption contrast: its arithmetic, which tokens it reads, and that a run with it
both logs it and lowers it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from lhama.config import load
from lhama.data.conversation import IGNORE_INDEX
from lhama.errors import ConfigError
from lhama.train.config import TrainConfig
from lhama.train.contrast import answer_embeds, captured_outputs, contrastive_loss
from lhama.train.recipes import run
from tests.train.conftest import overrides


def test_matched_pairs_score_lower_than_shuffled_ones() -> None:
    torch.manual_seed(0)
    texts = torch.randn(6, 16)
    images = texts.unsqueeze(1).repeat(1, 4, 1) + 0.1 * torch.randn(6, 4, 16)  # (n, N, D), near their text
    matched = contrastive_loss(images, texts, temperature=0.1)
    shuffled = contrastive_loss(images, texts.roll(1, dims=0), temperature=0.1)
    assert matched < 0.1 < math.log(6) < shuffled


def test_indistinguishable_images_and_texts_cost_log_n() -> None:
    images = torch.randn(1, 3, 8).repeat(5, 1, 1)  # every image the same, every caption too:
    texts = torch.ones(5, 8)  # no pairing is better than chance
    assert contrastive_loss(images, texts, temperature=0.07).item() == pytest.approx(math.log(5), abs=1e-5)


def test_answer_embeds_average_supervised_tokens_without_special_ones() -> None:
    embedding = nn.Embedding(10, 2)
    with torch.no_grad():
        embedding.weight.copy_(torch.arange(20, dtype=torch.float).view(10, 2))
    labels = torch.tensor([[IGNORE_INDEX, 3, 5, 1], [IGNORE_INDEX, IGNORE_INDEX, 7, 1], [4, 4, 4, 4]])
    means = answer_embeds(embedding, labels, torch.tensor([0, 1]), skip_ids={1})  # 1: <eos>, left out
    assert means.tolist() == [[8.0, 9.0], [14.0, 15.0]]  # rows 3 and 5 -> (6,7),(10,11); row 7 -> (14,15)


def test_captured_outputs_collects_forwards_and_then_lets_go() -> None:
    layer = nn.Linear(2, 2)
    with captured_outputs(layer) as seen:
        layer(torch.zeros(1, 2))
        layer(torch.ones(3, 2))
    layer(torch.ones(1, 2))  # outside the block: not collected
    assert [tuple(t.shape) for t in seen] == [(1, 2), (3, 2)]


def test_a_stage1_run_with_contrast_logs_it_and_lowers_it(tiny_model_dir: Path, caption_file: Path, tmp_path: Path) -> None:
    cfg = load(TrainConfig, None, overrides(
        tiny_model_dir, caption_file, tmp_path / "run", "max_steps=30", "micro_batch_size=8", "optim.lr=1e-2",
        "loss.image_caption_contrast=1.0", "loss.contrast_temperature=0.1",
    ))
    run(cfg, echo=lambda _: None)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    contrast = [r["contrast"] for r in rows if "loss" in r]
    assert len(contrast) == 30
    assert contrast[0] > 1.5  # eight random-ish pairs: near log(8) = 2.08 before training
    assert sum(contrast[-5:]) / 5 < 0.5 * contrast[0]


def test_a_run_without_contrast_logs_none(tiny_model_dir: Path, caption_file: Path, tmp_path: Path) -> None:
    run(load(TrainConfig, None, overrides(tiny_model_dir, caption_file, tmp_path / "run")), echo=lambda _: None)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows and not any("contrast" in r for r in rows)


@pytest.mark.parametrize("override, message", [
    ("loss.image_caption_contrast=-0.5", "loss.image_caption_contrast must be >= 0"),
    ("loss.contrast_temperature=0", "loss.contrast_temperature must be > 0"),
])
def test_bad_contrast_settings_are_config_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(TrainConfig, None, ["model.lm=x", override])


def test_contrast_on_a_model_without_images_is_a_config_error(caption_file: Path, tmp_path: Path) -> None:
    from lhama.model.build import save_model
    from tests.conftest import tiny_loaded

    text_only = save_model(tiny_loaded(image=None), tmp_path / "lm")
    cfg = load(TrainConfig, None, overrides(text_only, caption_file, tmp_path / "run", "stage=finetune",
                                           "loss.image_caption_contrast=1.0"))
    with pytest.raises(ConfigError, match="loss.image_caption_contrast needs a model with an image branch"):
        run(cfg, echo=lambda _: None)
    assert not (tmp_path / "run" / "model").exists()


def test_a_batch_the_projector_does_not_see_gets_no_contrast(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop adds the term only when the contrast's projector ran in the batch's forward (its
    images); a text-only batch's forward leaves it unused, and its loss is the token loss alone."""
    from types import SimpleNamespace

    from lhama.train import loop
    from lhama.train.contrast import ContrastSettings

    projector = nn.Linear(2, 2)
    settings = ContrastSettings(1.0, 0.1, projector, 5, nn.Embedding(8, 2), frozenset())
    batch = SimpleNamespace(input_ids=torch.tensor([[5, 1], [5, 2]]), media={},
                            labels=torch.tensor([[IGNORE_INDEX, 3], [IGNORE_INDEX, 4]]))
    parts = SimpleNamespace(model=None, contrast=settings)
    monkeypatch.setattr(loop, "token_loss_sum", lambda *_: torch.tensor(3.0))  # a forward that never runs the projector
    summed, contrast = loop._losses(parts, batch, None, None)
    assert summed.item() == 3.0 and contrast is None

    def forward_with_images(*_):
        projector(torch.ones(2, 3, 2))  # (n, N, D): the image tokens of both rows
        return torch.tensor(3.0)

    monkeypatch.setattr(loop, "token_loss_sum", forward_with_images)
    pictured = SimpleNamespace(**{**vars(batch), "media": {"image": torch.zeros(2, 3, 4, 4)}})
    summed, contrast = loop._losses(parts, pictured, None, None)
    assert summed.item() == 3.0 and contrast is not None and torch.isfinite(contrast)
