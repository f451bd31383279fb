"""``lhama eval admire`` on a cascade model (no image branch, a labeler): the image track runs, each
image read through the labeler's note; a model that neither sees nor labels images is refused."""

from __future__ import annotations

import pytest

from lhama.errors import ModelError
from lhama.eval.runner import AdmireConfig, evaluate_admire
from lhama.model.build import load_model
from tests.eval.helpers import write_admire
from tests.inference.tiny import tiny_decoder
from tests.weights.test_cascade import tiny_cascade


def test_the_image_track_runs_on_a_cascade_model(tmp_path):
    data = write_admire(tmp_path / "admire")
    model_dir = tiny_cascade(tmp_path / "model")
    cascade = load_model(model_dir)
    cfg = AdmireConfig(data=data, model=str(model_dir), baselines=(), cache=tmp_path / "cache.jsonl")
    result = evaluate_admire(cfg, loaded=cascade)
    assert result.primary.kind == "model" and result.primary.name.endswith("(image)")
    assert all(sorted(r.order) == sorted(i.images) for i, r in zip(result.items, result.primary.rankings.values()))


def test_a_model_without_a_tower_or_labeler_is_refused_on_the_image_track(tmp_path):
    data = write_admire(tmp_path / "admire")
    text_model = tiny_decoder(seed=0)  # a text-only LM: no image branch, no labeler
    assert "image" not in text_model.config.branches and text_model.labeler is None
    with pytest.raises(ModelError, match="no vision tower"):
        evaluate_admire(AdmireConfig(data=data, model="x", baselines=(), cache=tmp_path / "c.jsonl"), loaded=text_model)
