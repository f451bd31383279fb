"""lhama.eval.tasks: one call per eval command (data, then the model, then the keyed cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lhama.errors import ConfigError, DataError
from lhama.eval.tasks import CaptionTask, IdiomTask, RetrievalTask, VqaTask, run_captions, run_idiom, run_retrieval
from lhama.model.build import load_model, save_model
from tests.conftest import tiny_loaded
from tests.eval.helpers import write_admire
from tests.train.conftest import write_caption_set


class Loads:
    """A ``load`` that records the specs it was asked for."""

    def __init__(self) -> None:
        self.specs: list[str] = []

    def __call__(self, spec: str):
        self.specs.append(spec)
        return load_model(spec)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LHAMA_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_captions_load_the_model_once_report_progress_and_key_the_cache(tmp_path, home):
    model = str(save_model(tiny_loaded(), tmp_path / "vlm"))
    data = write_caption_set(tmp_path / "caps", n=3).parent
    load, calls = Loads(), []
    result = run_captions(CaptionTask(data, model, image_guidance=0.5), load, lambda done, total: calls.append((done, total)))
    assert load.specs == [model]
    assert result.n == 3 and set(result.predictions) == {"img0.png", "img1.png", "img2.png"}
    assert calls == [(0, 3), (1, 3), (1, 3), (1, 3)]
    [cache] = (home / "eval-cache").glob("caption-*.jsonl")
    meta = json.loads(cache.read_text().splitlines()[0])["meta"]
    assert meta["task"] == "caption" and meta["image_guidance"] == 0.5 and meta["image"] is True
    assert meta["model"].startswith(str(Path(model).resolve()))


def test_retrieval_without_images_is_its_own_cache(tmp_path, home):
    model = str(save_model(tiny_loaded(image=None), tmp_path / "lm"))
    data = write_caption_set(tmp_path / "caps", n=4).parent
    result = run_retrieval(RetrievalTask(data, model, choices=3, use_images=False), Loads())
    assert result.n == 4 and result.choices == 3
    [cache] = (home / "eval-cache").glob("retrieval-*.jsonl")
    assert json.loads(cache.read_text().splitlines()[0])["meta"]["image"] is False


def test_idiom_counts_both_runs_in_its_total(tmp_path, home):
    model = str(save_model(tiny_loaded(image=None), tmp_path / "lm"))
    data = write_admire(tmp_path / "data")
    totals = set()
    results = run_idiom(IdiomTask(data, model, lang="en", train=data, shots=2), Loads(), lambda done, total: totals.add(total))
    assert [r.system for r in results] == ["majority (idiomatic)", "lm zero-shot", "lm 2-shot"]
    assert totals == {6} and list((home / "eval-cache").glob("idiom-*.jsonl"))


@pytest.mark.parametrize("run", ["captions", "retrieval", "idiom"])
def test_bad_data_fails_before_the_model_loads(tmp_path, home, run):
    load = Loads()
    with pytest.raises(DataError):
        if run == "captions":
            run_captions(CaptionTask(tmp_path / "nowhere", "lhama-default"), load)
        elif run == "retrieval":  # 2 distinct captions cannot make 5-way trials
            run_retrieval(RetrievalTask(write_caption_set(tmp_path / "caps", n=2).parent, "lhama-default"), load)
        else:
            run_idiom(IdiomTask(tmp_path / "missing.tsv", "lhama-default"), load)
    assert load.specs == []


def test_negative_image_guidance_is_refused():
    with pytest.raises(ConfigError, match="image_guidance must be >= 0, got -1"):
        VqaTask("lhama-default", image_guidance=-1.0)
    with pytest.raises(ConfigError):
        CaptionTask(Path("caps"), "lhama-default", image_guidance=-0.5)
