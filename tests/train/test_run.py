"""train/run: ``lhama train``'s one call, a recipe plus overrides loaded and run; its checks come
before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lhama.errors import ConfigError
from lhama.train import recipes
from lhama.train.run import TrainRun, train
from tests.train.conftest import overrides


def test_a_recipe_file_with_overrides_runs_its_stage(tiny_model_dir: Path, caption_file: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "align.yaml"
    recipe.write_text("stage: align\nmax_steps: 9\n")
    said = []
    result = train(TrainRun(str(recipe), tuple(overrides(tiny_model_dir, caption_file, tmp_path / "o", "max_steps=2"))), said.append)
    assert result.steps == 2 and result.output_dir == tmp_path / "o"  # the override wins over the file
    assert (tmp_path / "o" / "model" / "config.json").is_file() and said
    rows = [json.loads(line) for line in (tmp_path / "o" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == [1, 2]


@pytest.mark.parametrize(("run", "message"), [
    (TrainRun("no-such-preset"), "config 'no-such-preset' is neither a file nor a preset; presets: "),
    (TrainRun("stage1-tuxpaint"), "stage1-tuxpaint.yaml needs data.path, data.image_dir"),
    (TrainRun("stage1-tuxpaint", ("data.path=d.tsv", "data.image_dir=i", "batch_size=4")), "unknown config key batch_size"),
])
def test_config_mistakes_fail_before_a_recipe_runs(run: TrainRun, message: str, monkeypatch) -> None:
    monkeypatch.setattr(recipes, "run", lambda *a, **kw: pytest.fail("a recipe ran"))
    with pytest.raises(ConfigError, match=message):
        train(run)
