"""The audio stage 1 (preset stage1-audio) on a tiny image model that grows an audio branch
from a local Hugging Face Whisper directory: only the audio projector changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import WhisperModel

from lhama.config import load
from lhama.errors import ConfigError
from lhama.model.build import load_model
from lhama.train.config import TrainConfig
from lhama.train.recipes import find_recipe, run
from tests.audio_fixtures import tiny_whisper_config, write_wav
from tests.train.conftest import CAPTIONS


@pytest.fixture(scope="module")
def speech_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("speech")
    (root / "audio").mkdir()
    lines = []
    for i, text in enumerate(CAPTIONS):
        write_wav(root / "audio" / f"{i}.wav", 0.5 + 0.2 * i)
        turns = [{"from": "human", "value": "<audio>\nO que foi dito?"}, {"from": "gpt", "value": text}]
        lines.append(json.dumps({"id": f"s{i}", "audio": f"audio/{i}.wav", "conversations": turns}))
    (root / "train.jsonl").write_text("\n".join(lines) + "\n")
    return root / "train.jsonl"


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("whisper") / "tiny-whisper"
    WhisperModel(tiny_whisper_config()).save_pretrained(path)
    return path


def test_stage1_audio_trains_only_the_audio_projector(tiny_model_dir: Path, speech_file: Path,
                                                      whisper_dir: Path, tmp_path: Path) -> None:
    cfg = load(TrainConfig, find_recipe("stage1-audio"), [
        f"model.init={tiny_model_dir}", "~model.lm", f"model.audio.encoder={whisper_dir}", "model.audio.tokens=4",
        f"data.path={speech_file}", f"output_dir={tmp_path / 'run'}", "micro_batch_size=2", "max_steps=3",
        "progress=false", "optim.warmup_ratio=0.0",
    ])
    assert cfg.trainable == ("audio_projector",)
    result = run(cfg, echo=lambda _: None)
    assert result.steps == 3 and result.final_loss is not None
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(result.model_dir / "model.safetensors")
    changed = {k for k in after if k not in before or not torch.equal(before[k], after[k])}
    grown = {k for k in changed if k not in before}
    assert {k.split(".")[0] for k in grown} == {"audio_tower", "audio_projector"}
    assert changed == grown  # LM, vision tower and image projector are bit-identical
    reloaded = load_model(result.model_dir)
    assert [b.name for b in reloaded.model.branches()] == ["image", "audio"]
    trained = load_file(result.model_dir / "model.safetensors")
    fresh = load_model(result.model_dir)  # the saved projector is the trained one
    torch.testing.assert_close(fresh.model.audio_projector.linear_1.weight, trained["audio_projector.linear_1.weight"])


def test_prealign_pre_aligns_the_audio_projector_when_prealign_branch_says_so(
        tiny_model_dir: Path, speech_file: Path, whisper_dir: Path, tmp_path: Path) -> None:
    """stage=prealign on the branch ``prealign.branch`` names (here audio, grown from Whisper):
    only its projector is trained, on the audio-caption pairs; before, the stage took only the image branch."""
    lines = []
    cfg = load(TrainConfig, None, [
        f"model.init={tiny_model_dir}", f"model.audio.encoder={whisper_dir}", "model.audio.tokens=4",
        f"data.path={speech_file}", f"output_dir={tmp_path / 'run'}", "stage=prealign", "prealign.branch=audio",
        "prealign.epochs=2", "prealign.batch_size=2", "progress=false",
    ])
    result = run(cfg, echo=lines.append)  # steps need the audio projector trainable (its loss backpropagates)
    assert result.steps > 0 and any(line.startswith("pre-aligning the projector on ") and " audio-caption pairs" in line
                                    for line in lines)
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(result.model_dir / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert not changed  # LM, vision tower and image projector untouched
    grown = load_model(result.model_dir)
    assert {k.split(".")[0] for k in after if k not in before} == {"audio_tower", "audio_projector"}
    assert [b.name for b in grown.model.branches()] == ["image", "audio"]


def test_prealign_on_a_branch_the_model_lacks_is_a_config_error(tiny_model_dir: Path, speech_file: Path,
                                                                 tmp_path: Path) -> None:
    cfg = load(TrainConfig, None, [f"model.init={tiny_model_dir}", f"data.path={speech_file}",
                                   f"output_dir={tmp_path / 'run'}", "stage=prealign", "prealign.branch=video"])
    with pytest.raises(ConfigError, match="^stage=prealign needs a model with a video branch"):
        run(cfg, echo=lambda _: None)
