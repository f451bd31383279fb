"""Stage 0, projector pre-alignment: which samples count as captions, that a run learns to tell
its images apart and saves a loadable model with only the projector changed, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lhama.config import load
from lhama.data.dataset import Sample
from lhama.errors import ConfigError
from lhama.model.build import load_model
from lhama.train.config import TrainConfig
from lhama.train.recipes import run
from lhama.train.prealign import caption_samples
from tests.train.conftest import overrides


def _sample(name: str, question: str, answer: str, image: bool = True) -> Sample:
    messages = ({"role": "user", "content": question}, {"role": "assistant", "content": answer})
    return Sample(name, messages, image=Path(f"{name}.png") if image else None)


def test_caption_samples_keep_image_captions_of_the_prompt_only() -> None:
    samples = [
        _sample("a", "<image>\nDescreva a imagem brevemente.", "Um sapo."),
        _sample("b", "<image>\nDe que cor é a forma?", "Azul."),
        _sample("c", "Traduza para o português: a frog.", "Um sapo.", image=False),
    ]
    kept = caption_samples(samples, "image", "<image>", "Descreva a imagem brevemente.")
    assert [(s.id, text) for s, text in kept] == [("a", "Um sapo.")]
    everything = caption_samples(samples, "image", "<image>", "")  # no prompt: every image sample, first answer
    assert [(s.id, text) for s, text in everything] == [("a", "Um sapo."), ("b", "Azul.")]
    # the pairs are of the kind asked for: a sound file's caption, not the images'
    heard = Sample("d", ({"role": "user", "content": "<audio>\nO que se ouve?"}, {"role": "assistant", "content": "Um sapo."}),
                   audio=Path("d.wav"))
    assert [s.id for s, _ in caption_samples([*samples, heard], "audio", "<audio>", "O que se ouve?")] == ["d"]


def test_a_prealign_run_learns_to_tell_its_images_apart(tiny_model_dir: Path, caption_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = load(TrainConfig, None, overrides(
        tiny_model_dir, caption_file, out, "stage=prealign", f"eval_data.path={caption_file}",
        f"eval_data.image_dir={caption_file.parent / 'images'}", "prealign.epochs=60", "prealign.batch_size=8",
        "prealign.lr=1e-2", "prealign.temperature=0.1", "prealign.eval_every=20",
        "prealign.prompt=Descreva a imagem brevemente.",
    ))
    result = run(cfg, echo=lambda _: None)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(61))
    top1 = [r["eval_top1"] for r in rows if "eval_top1" in r]
    assert len(top1) == 4  # epoch 0, 20, 40, 60
    assert top1[-1] >= 0.75 > top1[0]  # eight distinct colours and captions: the pairs are learnable
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < 0.5 * losses[0]
    assert result.final_loss == losses[-1] and result.steps == 60  # optimizer steps: 8 pairs, batch 8
    before, after = load_model(tiny_model_dir).model.state_dict(), load_model(result.model_dir).model.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith("multi_modal_projector.") for name in changed)


def test_a_prealign_run_counts_optimizer_steps_not_epochs(tiny_model_dir: Path, caption_file: Path, tmp_path: Path) -> None:
    cfg = load(TrainConfig, None, overrides(
        tiny_model_dir, caption_file, tmp_path / "run", "stage=prealign", "prealign.epochs=2", "prealign.batch_size=3",
    ))
    result = run(cfg, echo=lambda _: None)
    assert result.steps == 2 * 3  # 8 pairs in batches of 3, 3, 2: three steps an epoch


def test_prealign_without_an_image_branch_is_a_config_error(caption_file: Path, tmp_path: Path) -> None:
    from lhama.model.build import save_model
    from tests.conftest import tiny_loaded

    text_only = save_model(tiny_loaded(image=None), tmp_path / "lm")
    cfg = load(TrainConfig, None, overrides(text_only, caption_file, tmp_path / "run", "stage=prealign"))
    with pytest.raises(ConfigError, match="stage=prealign needs a model with an image branch"):
        run(cfg, echo=lambda _: None)
    assert not (tmp_path / "run" / "model").exists()


@pytest.mark.parametrize("override, message", [
    ("prealign.batch_size=0", "prealign.batch_size must be >= 1"),
    ("prealign.temperature=0", "prealign.temperature must be > 0"),
])
def test_bad_prealign_settings_are_config_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(TrainConfig, None, ["model.lm=x", override])


def test_resuming_a_prealign_run_is_a_config_error(tiny_model_dir: Path, caption_file: Path, tmp_path: Path) -> None:
    cfg = load(TrainConfig, None, overrides(tiny_model_dir, caption_file, tmp_path / "run", "stage=prealign"))
    with pytest.raises(ConfigError, match="keeps no checkpoints"):
        run(cfg, resume=True, echo=lambda _: None)


def test_prealign_with_train_modules_that_freeze_its_projector_is_a_config_error(
        tiny_model_dir: Path, caption_file: Path, tmp_path: Path) -> None:
    """Before: a RuntimeError traceback from backward ("element 0 of tensors does not require grad")."""
    cfg = load(TrainConfig, None, overrides(tiny_model_dir, caption_file, tmp_path / "run", "stage=prealign",
                                            "prealign.epochs=1", "train_modules=[language_model]"))
    with pytest.raises(ConfigError, match=r"^stage=prealign trains the image branch's projector, but train_modules "
                                          r"\['language_model'\] leaves multi_modal_projector frozen: add "
                                          r"'multi_modal_projector' or leave train_modules out$"):
        run(cfg, echo=lambda _: None)
