"""The composed model's check before install (``convert._verify_composed``): its saved copy must
give the same logits for one random picture and the verify prompt."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from lhama.errors import CheckpointError
from lhama.model.build import WEIGHTS, save_model
from lhama.weights import convert
from tests.conftest import tiny_loaded


def test_the_saved_copy_of_a_composed_model_is_checked_on_a_picture(tmp_path: Path) -> None:
    loaded = tiny_loaded()
    out = save_model(loaded, tmp_path / "m")
    assert convert._verify_composed(loaded, out) < 1e-4
    weights = load_file(out / WEIGHTS)
    weights["multi_modal_projector.linear_1.weight"] += 1.0  # only a picture through the image branch sees this
    save_file(weights, out / WEIGHTS)
    with pytest.raises(CheckpointError, match="logits .* away from the composed model"):
        convert._verify_composed(loaded, out)
