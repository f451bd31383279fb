"""Tiny audio-branch fixtures shared by the data, model, serve and CLI tests: a random
2-layer Whisper encoder (width 16, a 2 s window) and a spoken-like test signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import torch
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from lhama.model.build import LoadedModel, add_branch, save_model
from lhama.model.config import AudioConfig
from tests.conftest import tiny_loaded

AUDIO = AudioConfig(encoder="in-test", tokens=4)


def tiny_whisper_config() -> WhisperConfig:
    # 200 mel frames (2 s) -> 100 encoder states of width 16.
    return WhisperConfig(
        vocab_size=128, d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
        max_source_positions=100, max_target_positions=32, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, decoder_start_token_id=1,
    )


def tiny_whisper_encoder(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return WhisperEncoder(tiny_whisper_config()).eval().requires_grad_(False)


def tiny_audio_loaded(image: bool = True, tokens: int = 4, seed: int = 0) -> LoadedModel:
    """``tiny_loaded`` (with or without the image branch) plus a tiny Whisper audio branch."""
    from lhama.model.config import ImageConfig

    loaded = tiny_loaded(image=ImageConfig() if image else None, seed=seed)
    loaded = add_branch(loaded, "audio", AudioConfig(encoder="in-test", tokens=tokens), tiny_whisper_encoder(seed))
    loaded.model.eval()
    return loaded


def tiny_audio_model_dir(path: Path, image: bool = False) -> Path:
    """A saved tiny text+audio model directory."""
    return save_model(tiny_audio_loaded(image=image), path)


def tone(seconds: float = 1.0, rate: int = 16_000, freq: float = 440.0) -> np.ndarray:
    """A 440 Hz tone with a vowel-like envelope, float32 in [-0.5, 0.5]."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t) * np.sin(np.pi * t / seconds)).astype(np.float32)


def write_wav(path: Path, seconds: float = 1.0, rate: int = 16_000, channels: int = 1) -> Path:
    signal = tone(seconds, rate)
    soundfile.write(path, np.stack([signal] * channels, axis=1) if channels > 1 else signal, rate)
    return path
